"""Small, real components for engine tests: a job source, a parser, a file downloader, a SHA-256 verifier
and a file-backed A/B boot control. They implement the ota_core protocols without any layer-1 package.

The boot control simulates a bootloader with one trial boot (MCUboot "test" mode): ``boot()`` is the
power-on; an activated slot runs once on trial; a second boot without ``confirm()`` goes back.
Images carry their version in a first line ``VERSION=x.y.z``; an image without it does not boot.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ota_core import (
    ConfigurationError,
    DownloadError,
    DownloadRequest,
    FileLocation,
    FileTarget,
    ImageState,
    InstallError,
    Integrity,
    JobDocumentError,
    JobEvent,
    JobEventKind,
    JobStatus,
    LocationKind,
    Phase,
    ProgressEvent,
    StateStore,
    StatusReport,
    TransportError,
    UpdatePlan,
    VerificationError,
    Version,
)

# --- images ------------------------------------------------------------------------------------------


def make_image(version: str, size: int = 64 * 1024) -> bytes:
    """A test firmware image: a version line, then deterministic filler up to ``size`` bytes."""
    header = f"VERSION={version}\n".encode()
    filler = hashlib.sha256(version.encode()).digest() * (size // 32 + 1)
    return (header + filler)[:size]


def image_version(data: bytes) -> Version | None:
    """The version an image declares, or None if it has no valid header."""
    line = data[:64].split(b"\n", 1)[0]
    if not line.startswith(b"VERSION="):
        return None
    try:
        return Version.parse(line[len(b"VERSION=") :].decode())
    except (UnicodeDecodeError, ConfigurationError):
        return None


def job_document(path: Path, data: bytes, version: str) -> dict[str, Any]:
    """The test job document for one local image file."""
    return {
        "version": version,
        "files": [
            {
                "name": path.name,
                "size": len(data),
                "path": str(path),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        ],
    }


# --- Notify + Report ---------------------------------------------------------------------------------


class FakeJobSource:
    """An in-memory cloud: pending jobs, cancellations, and the status history it received.

    With ``history_file`` the history (one JSON line per accepted report) survives process restarts, and a
    job whose history ends in a terminal status is no longer offered, as a real cloud behaves.
    """

    def __init__(self, history_file: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._on_event: Callable[[JobEvent], None] | None = None
        self.jobs: dict[str, dict[str, Any]] = {}
        self.reports: list[StatusReport] = []
        self.fail_next_reports = 0
        self.fail_terminal_reports = 0
        self.refuse_reports = False
        self.requests = 0
        self.stopped = False
        self._history_file = history_file
        if history_file is not None and history_file.exists():
            for line in history_file.read_text().splitlines():
                item = json.loads(line)
                self.reports.append(StatusReport(item["job_id"], JobStatus(item["status"]), item["details"]))

    # JobSource protocol
    def start(self, on_event: Callable[[JobEvent], None]) -> None:
        self._on_event = on_event

    def request_next(self) -> None:
        with self._lock:
            self.requests += 1
            pending = [job for job in self.jobs if not self.status_of(job).is_terminal]
        if pending:
            self.emit(JobEvent(JobEventKind.NEW, pending[0], self.jobs[pending[0]]))
        else:
            self.emit(JobEvent(JobEventKind.NOTHING_PENDING))

    def report(self, report: StatusReport) -> None:
        with self._lock:
            if self.fail_next_reports > 0:
                self.fail_next_reports -= 1
                raise TransportError("cloud did not acknowledge")
            if report.status.is_terminal and self.fail_terminal_reports > 0:
                self.fail_terminal_reports -= 1
                raise TransportError("cloud did not acknowledge the final status")
            if self.refuse_reports:
                raise JobDocumentError("cloud refused the report")
            self.reports.append(report)
            if self._history_file is not None:
                with self._history_file.open("a") as stream:
                    line = {
                        "job_id": report.job_id,
                        "status": report.status.value,
                        "details": dict(report.details),
                    }
                    stream.write(json.dumps(line) + "\n")
                    stream.flush()
                    os.fsync(stream.fileno())

    def stop(self) -> None:
        self.stopped = True

    # test controls
    def status_of(self, job_id: str) -> JobStatus:
        statuses = [report.status for report in self.reports if report.job_id == job_id]
        return statuses[-1] if statuses else JobStatus.QUEUED

    def add_job(self, job_id: str, document: Mapping[str, Any], *, notify: bool = True) -> None:
        with self._lock:
            self.jobs[job_id] = dict(document)
        if notify:
            self.emit(JobEvent(JobEventKind.NEW, job_id, document))

    def cancel(self, job_id: str) -> None:
        with self._lock:
            self.jobs.pop(job_id, None)
        self.emit(JobEvent(JobEventKind.CANCELLED, job_id))

    def emit(self, event: JobEvent) -> None:
        if self._on_event is not None:
            self._on_event(event)

    def steps(self, job_id: str) -> list[str]:
        """The ``step`` details of the reports for ``job_id``, progress reports left out."""
        return [
            report.details.get("step", "")
            for report in self.reports
            if report.job_id == job_id and report.details.get("step") != "progress"
        ]


# --- Parse -------------------------------------------------------------------------------------------


class JsonPlanParser:
    """Parses the test document: ``{"version": ..., "files": [{"name","size","path","sha256"}]}``."""

    name = "test-json"

    def parse(self, event: JobEvent) -> UpdatePlan | None:
        document = event.document
        if "files" not in document:
            return None
        try:
            files = tuple(
                FileTarget(
                    name=str(item["name"]),
                    size=int(item["size"]),
                    locations=(FileLocation(LocationKind.LOCAL, str(item["path"])),),
                    integrity=Integrity(digests={"sha256": bytes.fromhex(str(item["sha256"]))}),
                )
                for item in document["files"]
            )
            version = Version.parse(str(document["version"])) if "version" in document else None
        except (KeyError, TypeError, ValueError, ConfigurationError) as error:
            raise JobDocumentError(f"bad test document: {error}") from error
        if event.job_id is None:
            raise JobDocumentError("no job id")
        return UpdatePlan(
            job_id=event.job_id,
            origin=self.name,
            files=files,
            version=version,
            attributes={"update_kind": document.get("kind", "application")},
        )


# --- Download ----------------------------------------------------------------------------------------


class FileDownloader:
    """Copies a local file into the sink in chunks, persisting the offset after each flushed chunk.

    On resume it re-feeds the verifier with the bytes already fetched (re-read from the source), so the
    incremental verifier always sees every byte in order.
    """

    def __init__(
        self,
        store: StateStore,
        *,
        chunk_size: int = 8192,
        on_chunk: Callable[[int], None] | None = None,
        fail_times: int = 0,
    ) -> None:
        self._store = store
        self._chunk = chunk_size
        self._on_chunk = on_chunk
        self.fail_times = fail_times
        self.started = 0

    def supports(self, location: FileLocation) -> bool:
        return location.kind is LocationKind.LOCAL

    def download(self, request: DownloadRequest) -> None:
        self.started += 1
        if self.fail_times > 0:
            self.fail_times -= 1
            raise DownloadError("simulated transient failure")
        try:
            data = Path(request.location.uri).read_bytes()
        except OSError as error:
            raise DownloadError(f"cannot read {request.location.uri}: {error}") from error
        if len(data) != request.target.size:
            raise DownloadError("source size differs from the plan")
        saved = self._store.load(request.progress_key)
        offset = int(saved.data.get("offset", 0)) if saved is not None else 0
        if request.verifier is not None and offset:
            request.verifier.update(data[:offset])
        while offset < len(data):
            chunk = data[offset : offset + self._chunk]
            request.sink.write_at(offset, chunk)
            if request.verifier is not None:
                request.verifier.update(chunk)
            request.sink.flush()
            offset += len(chunk)
            self._store.save(request.progress_key, {"offset": offset})
            if request.on_progress is not None:
                request.on_progress(
                    ProgressEvent(request.job_id, Phase.DOWNLOAD, bytes_done=offset, bytes_total=len(data))
                )
            if self._on_chunk is not None:
                self._on_chunk(offset)


# --- Verify ------------------------------------------------------------------------------------------


class _Sha256Check:
    def __init__(self, expected: bytes, size: int) -> None:
        self._hash = hashlib.sha256()
        self._expected = expected
        self._size = size
        self._seen = 0

    def update(self, data: bytes) -> None:
        self._hash.update(data)
        self._seen += len(data)

    def finish(self) -> None:
        if self._seen != self._size or self._hash.digest() != self._expected:
            raise VerificationError("SHA-256 mismatch")


class Sha256Verifier:
    """Requires a SHA-256 digest for every file and checks it while the file streams."""

    def __init__(self, refuse_plan: bool = False) -> None:
        self.refuse_plan = refuse_plan
        self.checked = 0

    def check_plan(self, plan: UpdatePlan) -> None:
        self.checked += 1
        if self.refuse_plan:
            raise VerificationError("plan refused")
        for target in plan.files:
            if "sha256" not in target.integrity.digests:
                raise VerificationError(f"{target.name} has no SHA-256")

    def begin(self, plan: UpdatePlan, target: FileTarget) -> _Sha256Check:
        return _Sha256Check(target.integrity.digests["sha256"], target.size)


# --- Install + hand-off ------------------------------------------------------------------------------


class _SlotSink:
    def __init__(self, path: Path) -> None:
        self._path = path

    def write_at(self, offset: int, data: bytes) -> None:
        descriptor = os.open(self._path, os.O_WRONLY)
        try:
            os.pwrite(descriptor, data, offset)
        finally:
            os.close(descriptor)

    def flush(self) -> None:
        descriptor = os.open(self._path, os.O_WRONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


class FileBootControl:
    """Two slot files and a boot record; ``boot()`` simulates power-on and the bootloader's decision."""

    def __init__(self, directory: Path, initial: bytes | None = None) -> None:
        self._dir = directory
        self._dir.mkdir(parents=True, exist_ok=True)
        self._record = self._dir / "boot.json"
        if not self._record.exists():
            (self._dir / "slot-a.bin").write_bytes(initial if initial is not None else make_image("1.0.0"))
            self._save({"active": "a", "pending": None, "trial_next": False, "in_trial": False})
        self.activations = 0
        self.handoff_checks = 0
        self.fail_activate = False

    def _load(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self._record.read_text())
        return data

    def _save(self, data: Mapping[str, Any]) -> None:
        temporary = self._record.with_suffix(".tmp")
        with temporary.open("w") as stream:
            json.dump(dict(data), stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, self._record)

    @staticmethod
    def _other(slot: str) -> str:
        return "b" if slot == "a" else "a"

    def _version(self, slot: str) -> Version | None:
        path = self._dir / f"slot-{slot}.bin"
        if not path.exists():
            return None
        with path.open("rb") as stream:
            return image_version(stream.read(64))

    # the simulated bootloader
    def boot(self) -> None:
        """Power-on: switch to a pending slot (on trial), or abandon an unconfirmed trial."""
        data = self._load()
        if data["pending"] is not None:
            target = data["pending"]
            if self._version(target) is None:  # the bootloader's image check fails: stay put
                data["pending"] = None
            else:
                data["active"] = target
                data["in_trial"] = bool(data["trial_next"])
                data["pending"] = None
        elif data["in_trial"]:
            data["active"] = self._other(data["active"])
            data["in_trial"] = False
        self._save(data)

    # BootControl protocol
    def inactive_slot_path(self) -> Path:
        """The file of the slot that is not running (where the next image is written)."""
        return self._dir / f"slot-{self._other(self._load()['active'])}.bin"

    def open_inactive_slot(self, size: int) -> _SlotSink:
        data = self._load()
        if data["pending"] is not None:
            data["pending"] = None
            self._save(data)
        path = self._dir / f"slot-{self._other(data['active'])}.bin"
        if not path.exists() or path.stat().st_size != size:
            with path.open("wb") as stream:
                stream.truncate(size)
        return _SlotSink(path)

    def activate(
        self, *, permanent: bool = False, expected_sha256: bytes | None = None, image_size: int | None = None
    ) -> None:
        if self.fail_activate:
            raise InstallError("simulated activation failure")
        data = self._load()
        if expected_sha256 is not None:
            slot = (self._dir / f"slot-{self._other(data['active'])}.bin").read_bytes()
            if hashlib.sha256(slot[:image_size]).digest() != expected_sha256:
                raise InstallError("slot read-back does not match the verified image")
        self.handoff_checks += expected_sha256 is not None
        data["pending"] = self._other(data["active"])
        data["trial_next"] = not permanent
        self.activations += 1
        self._save(data)

    def state(self) -> ImageState:
        data = self._load()
        pending = data["pending"]
        return ImageState(
            running_version=self._version(data["active"]),
            in_trial=bool(data["in_trial"]),
            pending_version=self._version(pending) if pending else None,
            slot=str(data["active"]),
        )

    def confirm(self) -> None:
        data = self._load()
        data["in_trial"] = False
        self._save(data)

    def revert(self) -> None:
        data = self._load()
        if data["in_trial"]:
            data["pending"] = self._other(data["active"])
            data["trial_next"] = False
            self._save(data)

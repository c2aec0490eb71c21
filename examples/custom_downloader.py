"""Your own downloader: updates from a local file or a USB stick, through the same engine as cloud updates.

A device without a network connection, or a service technician with a USB stick: the stick holds
``update.json`` (version, file name, SHA-256) and the file. This example writes the three small parts
that differ from a cloud update and reuses everything else (engine, verifier, directory slots):

- ``UsbStickSource``: a ``JobSource`` that offers ``update.json`` as a job and writes the reports back to
  the stick (``status.json``), so the technician sees the outcome;
- ``UsbManifestParser``: a ``JobParser`` for ``update.json``, giving ``LocationKind.LOCAL`` locations;
- ``LocalFileDownloader``: a ``Downloader`` that copies the file in chunks into the slot, feeds the
  verifier, reports progress and saves its offset so that a power cut resumes the copy.

    python examples/custom_downloader.py              # makes a stick in a temporary directory and installs 1.0.1
    python examples/custom_downloader.py --stick /media/usb --root /var/lib/my-app
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ota_boot import DirectorySlots
from ota_core import (
    DownloadError,
    FileLocation,
    FileStateStore,
    FileTarget,
    ImageInfo,
    Integrity,
    JobDocumentError,
    JobEvent,
    JobEventKind,
    LocationKind,
    ProgressEvent,
    StatusReport,
    UpdatePlan,
    VerificationError,
    Version,
)
from ota_core.engine import EngineEvent, EngineEventKind, UpdateEngine
from ota_core.models import Phase
from ota_core.protocols import DownloadRequest, SlotReader
from ota_verify import PlanVerifier

CHUNK = 64 * 1024
_VERSION = re.compile(rb'^VERSION = "([0-9]+\.[0-9]+\.[0-9]+)"$', re.MULTILINE)


class LocalFileDownloader:
    """Copies a local file (a USB stick, a mounted share) into the sink; resumable; implements ``Downloader``."""

    def __init__(self, store: FileStateStore, *, root: Path | None = None) -> None:
        self._store = store
        self._root = root

    def supports(self, location: FileLocation) -> bool:
        return location.kind is LocationKind.LOCAL

    def download(self, request: DownloadRequest) -> None:
        path = Path(request.location.uri)
        if self._root is not None:
            path = self._root / path
        size = request.target.size
        saved = self._store.load(request.progress_key)
        offset = int(saved.data.get("offset", 0)) if saved is not None else 0
        started = time.monotonic()
        try:
            with path.open("rb") as source:
                if offset and request.verifier is not None:  # re-feed the verifier with what is already there
                    remaining = offset
                    while remaining:
                        chunk = source.read(min(CHUNK, remaining))
                        request.verifier.update(chunk)
                        remaining -= len(chunk)
                source.seek(offset)
                while offset < size:
                    chunk = source.read(min(CHUNK, size - offset))
                    if not chunk:
                        raise DownloadError(f"{path} is shorter than {size} bytes (was the stick pulled out?)")
                    request.sink.write_at(offset, chunk)
                    if request.verifier is not None:
                        request.verifier.update(chunk)
                    offset += len(chunk)
                    request.sink.flush()  # durable before the offset is recorded
                    self._store.save(request.progress_key, {"offset": offset})
                    if request.on_progress is not None:
                        elapsed = max(time.monotonic() - started, 1e-6)
                        request.on_progress(
                            ProgressEvent(request.job_id, Phase.DOWNLOAD, offset, size, offset / elapsed)
                        )
        except OSError as error:
            raise DownloadError(f"cannot read {path}: {error.strerror}") from None


class UsbManifestParser:
    """Reads ``{"usb_update": {"version", "file", "size", "sha256"}}`` into a plan with a LOCAL location."""

    name = "usb-update"

    def parse(self, event: JobEvent) -> UpdatePlan | None:
        body = event.document.get("usb_update")
        if body is None:
            return None  # not ours: the next parser is tried
        try:
            version = Version.parse(str(body["version"]))
            digest = bytes.fromhex(str(body["sha256"]))
            target = FileTarget(
                str(body["file"]),
                int(body["size"]),
                (FileLocation(LocationKind.LOCAL, str(body["file"])),),
                Integrity(digests={"sha256": digest}),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise JobDocumentError(f"update.json is invalid: {error}") from None
        assert event.job_id is not None
        return UpdatePlan(event.job_id, "usb-stick", (target,), version)


class UsbStickSource:
    """Offers the stick's ``update.json`` as a job once; writes reports to ``status.json`` on the stick."""

    def __init__(self, stick: Path) -> None:
        self._stick = stick
        self._on_event: Callable[[JobEvent], None] | None = None

    def start(self, on_event: Callable[[JobEvent], None]) -> None:
        self._on_event = on_event

    def request_next(self) -> None:
        if self._on_event is None:
            return
        manifest = self._stick / "update.json"
        try:
            document: dict[str, Any] = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            self._on_event(JobEvent(JobEventKind.NOTHING_PENDING))
            return
        job_id = "usb-" + hashlib.sha256(manifest.read_bytes()).hexdigest()[:16]
        self._on_event(JobEvent(JobEventKind.NEW, job_id, document))

    def report(self, report: StatusReport) -> None:
        line = {"job": report.job_id, "status": report.status.value, **report.details}
        with (self._stick / "status.json").open("a", encoding="utf-8") as status:
            status.write(json.dumps(line) + "\n")

    def stop(self) -> None:
        self._on_event = None


class ScriptBundleValidator:
    """Reads ``VERSION = "x.y.z"`` from the application script (see examples/linux_directory_slots.py)."""

    def validate(self, slot: SlotReader) -> ImageInfo:
        data = slot.read(0, slot.size)
        match = _VERSION.search(data[:4096])
        if match is None:
            raise VerificationError("the bundle has no VERSION line")
        return ImageInfo(Version.parse(match.group(1).decode()), hashlib.sha256(data).digest())


def bundle(version: str) -> bytes:
    return f'#!/usr/bin/env python3\nVERSION = "{version}"\nprint("application", VERSION)\n'.encode() * 2000


def run(stick: Path, root: Path) -> str:
    """Run the engine until the stick's update ends (restarting once when asked); returns the final status."""
    finished = threading.Event()
    restart = threading.Event()
    outcome: list[str] = []

    def on_event(event: EngineEvent) -> None:
        if event.kind is EngineEventKind.PROGRESS and event.progress is not None:
            print(f"  copied {event.progress.bytes_done:,}/{event.progress.bytes_total:,} bytes")
        elif event.kind is EngineEventKind.PHASE:
            print(f"  {event.phase}")
        elif event.kind is EngineEventKind.FINISHED:
            outcome.append(str(event.status))
            finished.set()

    for _start in range(3):  # each pass is one start of the application
        slots = DirectorySlots(root / "app", validator=ScriptBundleValidator())
        slots.boot()
        print(f"running {slots.state().running_version}")
        store = FileStateStore(root / "state")
        restart.clear()
        engine = UpdateEngine(
            job_source=UsbStickSource(stick),
            parsers=[UsbManifestParser()],
            downloaders=[LocalFileDownloader(store, root=stick)],
            verifier=PlanVerifier(),
            boot_control=slots,
            state_store=store,
            restart=restart.set,
        )
        engine.add_listener(on_event)
        engine.start()
        deadline = time.monotonic() + 30
        while not (finished.is_set() or restart.is_set()) and time.monotonic() < deadline:
            time.sleep(0.05)
        engine.stop()
        if finished.is_set():
            return outcome[0]
    return "unfinished"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stick", type=Path, default=None, help="the mounted stick (default: make one)")
    parser.add_argument("--root", type=Path, default=None, help="the device's slots and state")
    arguments = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ota-usb-"))
    stick = arguments.stick or work / "stick"
    root = arguments.root or work / "device"
    if arguments.stick is None:
        stick.mkdir(parents=True)
        data = bundle("1.0.1")
        (stick / "app-1.0.1.bin").write_bytes(data)
        manifest = {"version": "1.0.1", "file": "app-1.0.1.bin", "size": len(data)}
        manifest["sha256"] = hashlib.sha256(data).hexdigest()
        (stick / "update.json").write_text(json.dumps({"usb_update": manifest}), encoding="utf-8")
    if not (root / "app" / "current").exists():
        DirectorySlots.initialise(root / "app", bundle("1.0.0"), validator=ScriptBundleValidator())
    status = run(stick, root)
    print(f"update from {stick}: {status}; the stick's status.json says:")
    print((stick / "status.json").read_text(encoding="utf-8").strip())
    return 0 if status == "SUCCEEDED" else 1


if __name__ == "__main__":
    sys.exit(main())

"""Resume records in the state store, and progress telemetry.

A resume record holds the identity of the file it belongs to (job, file name, size, source and the
first declared digest) next to the progress itself (a bitmap or an offset, the ETag or stream version).
A record whose identity differs from the download at hand is discarded, never mixed in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ota_core.clock import Clock
from ota_core.errors import StateStoreError
from ota_core.models import Phase, ProgressEvent
from ota_core.protocols import DownloadRequest, StateStore

__all__ = ["DownloadIdentity", "ProgressMeter", "ResumeStore"]

_log = logging.getLogger(__name__)

_SCHEMA = 1


@attrs.frozen
class DownloadIdentity:
    """What makes saved progress belong to one download: same job, file, size, source and digest."""

    job_id: str
    file_name: str
    file_size: int
    source: str
    digest: str = ""

    @classmethod
    def of(cls, request: DownloadRequest, source: str) -> DownloadIdentity:
        """The identity of ``request`` fetched from ``source`` (stream + file id, or URL without query)."""
        digests = request.target.integrity.digests
        digest = ""
        if digests:
            name = sorted(digests)[0]
            digest = f"{name}:{digests[name].hex()}"
        return cls(request.job_id, request.target.name, request.target.size, source, digest)

    def as_dict(self) -> dict[str, Any]:
        """The identity as a JSON-able mapping."""
        return attrs.asdict(self)


class ResumeStore:
    """Reads and writes one download's resume record under ``key`` in a state store."""

    def __init__(self, store: StateStore, key: str, identity: DownloadIdentity) -> None:
        self._store = store
        self._key = key
        self._identity = identity

    def load(self) -> Mapping[str, Any] | None:
        """The saved progress of this very download, or None (other downloads' records are deleted)."""
        try:
            document = self._store.load(self._key)
        except StateStoreError as exc:
            _log.warning("resume record %s unreadable (%s); starting from zero", self._key, exc.code)
            self.clear()
            return None
        if document is None:
            return None
        data = document.data
        identity = data.get("identity")
        progress = data.get("progress")
        if (
            document.schema_version != _SCHEMA
            or identity != self._identity.as_dict()
            or not isinstance(progress, Mapping)
        ):
            _log.info("discarding resume record %s: it belongs to another file or job", self._key)
            self.clear()
            return None
        return progress

    def save(self, progress: Mapping[str, Any]) -> None:
        """Replace the record (call only after the sink has made the counted bytes durable)."""
        self._store.save(
            self._key,
            {"identity": self._identity.as_dict(), "progress": dict(progress)},
            schema_version=_SCHEMA,
        )

    def clear(self) -> None:
        """Forget the record."""
        try:
            self._store.delete(self._key)
        except StateStoreError as exc:
            _log.warning("could not delete resume record %s: %s", self._key, exc.code)


class ProgressMeter:
    """Turns byte counts into progress events (rate and ETA) at most every ``interval`` seconds."""

    def __init__(
        self,
        job_id: str,
        total: int,
        clock: Clock,
        sink: Callable[[ProgressEvent], None] | None,
        *,
        interval: float = 0.5,
        start_bytes: int = 0,
    ) -> None:
        self._job_id = job_id
        self._total = total
        self._clock = clock
        self._sink = sink
        self._interval = interval
        self._start = clock.monotonic()
        self._start_bytes = start_bytes
        self._last_emit = float("-inf")
        self.last: ProgressEvent | None = None

    def update(self, done: int, *, force: bool = False, message: str = "") -> None:
        """Report ``done`` bytes so far (emitted if the interval passed, or when ``force``)."""
        if self._sink is None:
            return
        now = self._clock.monotonic()
        if not force and now - self._last_emit < self._interval:
            return
        self._last_emit = now
        elapsed = now - self._start
        rate = (done - self._start_bytes) / elapsed if elapsed > 0 else 0.0
        eta = (self._total - done) / rate if rate > 0 else None
        event = ProgressEvent(
            job_id=self._job_id,
            phase=Phase.DOWNLOAD,
            bytes_done=done,
            bytes_total=self._total,
            rate_bytes_per_second=max(rate, 0.0),
            eta_seconds=eta,
            message=message,
        )
        self.last = event
        self._sink(event)

"""Unit tests of resume records, progress events and backoff."""

from __future__ import annotations

import random
from pathlib import Path

from ota_core.clock import ManualClock
from ota_core.models import FileLocation, FileTarget, Integrity, LocationKind, ProgressEvent
from ota_core.protocols import DownloadRequest
from ota_core.state_store import FileStateStore
from ota_stream import Backoff, DownloadIdentity, ProgressMeter, ResumeStore


class NullSink:
    def write_at(self, offset: int, data: bytes) -> None:
        return None

    def flush(self) -> None:
        return None


def request(tmp_path: Path, job: str = "j1", digest: bytes = b"\x01") -> DownloadRequest:
    location = FileLocation(LocationKind.HTTP, "https://x/y")
    target = FileTarget("fw", 10, (location,), Integrity(digests={"sha256": digest}))
    return DownloadRequest(job, target, location, NullSink(), "dl")


def test_identity_includes_first_digest(tmp_path: Path) -> None:
    identity = DownloadIdentity.of(request(tmp_path), "https://x/y")
    assert identity.digest == "sha256:01"
    location = FileLocation(LocationKind.HTTP, "https://x/y")
    bare = DownloadRequest("j", FileTarget("fw", 1, (location,)), location, NullSink(), "k")
    assert DownloadIdentity.of(bare, "s").digest == ""


def test_resume_store_round_trip_and_discard(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path / "state")
    mine = ResumeStore(store, "dl", DownloadIdentity.of(request(tmp_path), "src"))
    assert mine.load() is None
    mine.save({"offset": 5})
    assert mine.load() == {"offset": 5}
    other_job = ResumeStore(store, "dl", DownloadIdentity.of(request(tmp_path, job="j2"), "src"))
    assert other_job.load() is None
    assert store.load("dl") is None  # discarded, never mixed in
    mine.save({"offset": 5})
    other_digest = ResumeStore(store, "dl", DownloadIdentity.of(request(tmp_path, digest=b"\x02"), "src"))
    assert other_digest.load() is None
    store.save("dl", {"identity": DownloadIdentity.of(request(tmp_path), "src").as_dict(), "progress": 5})
    assert mine.load() is None
    mine.clear()


def test_resume_store_survives_a_corrupt_record(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path / "state")
    mine = ResumeStore(store, "dl", DownloadIdentity.of(request(tmp_path), "src"))
    mine.save({"offset": 5})
    for path in (tmp_path / "state").iterdir():
        path.write_bytes(b"garbage")
    assert mine.load() is None


def test_progress_meter_rate_eta_and_throttling() -> None:
    clock = ManualClock()
    events: list[ProgressEvent] = []
    meter = ProgressMeter("j", 1000, clock, events.append, interval=1.0, start_bytes=100)
    meter.update(100)
    first = events[0]
    assert first.eta_seconds is None
    clock.advance(0.5)
    meter.update(200)
    assert len(events) == 1  # throttled
    clock.advance(0.5)
    meter.update(300)
    latest = events[-1]
    assert latest.rate_bytes_per_second == 200.0
    assert latest.eta_seconds == 3.5
    meter.update(1000, force=True, message="complete")
    assert events[-1].message == "complete"
    assert meter.last is events[-1]
    ProgressMeter("j", 10, clock, None).update(5)


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    backoff = Backoff(0.5, 4.0)
    rng = random.Random(1)
    delays = [backoff.delay(n, rng) for n in range(1, 8)]
    assert all(0.25 <= d <= 4.0 for d in delays)
    assert delays[0] <= 0.5
    assert delays[-1] >= 2.0
    assert 0.25 <= backoff.delay(0) <= 0.5

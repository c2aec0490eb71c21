"""HTTP range downloads against a real loopback server with injected faults (no mocks)."""

from __future__ import annotations

import hashlib
import ssl
from pathlib import Path

import pytest

from ota_cloud.http_faults import FaultyFileServer
from ota_cloud.pki import LocalPki
from ota_core.errors import ConfigurationError, DownloadError, OtaError
from ota_core.models import LocationKind, ProgressEvent
from ota_core.state_store import FileStateStore
from ota_stream import FileSink, HttpDownloadConfig, HttpRangeDownloader
from ota_stream.errors import (
    BodyTooLargeError,
    HttpStatusError,
    InsecureUrlError,
    LowSpeedError,
    RetryBudgetExhaustedError,
    SourceChangedError,
    UrlExpiredError,
)
from tests.download_fixtures import Sha256Verifier, faulty_server, make_request, pattern

__all__ = ["faulty_server"]

SIZE = 3 * 1024 * 1024 + 123


def config(**overrides: object) -> HttpDownloadConfig:
    options: dict[str, object] = {
        "allow_insecure_http": True,
        "read_timeout": 5.0,
        "connect_timeout": 5.0,
        "chunk_size": 64 * 1024,
        "save_interval_bytes": 256 * 1024,
    }
    options.update(overrides)
    return HttpDownloadConfig(**options)  # type: ignore[arg-type]


class Harness:
    def __init__(self, tmp_path: Path, server: FaultyFileServer, data: bytes) -> None:
        self.tmp_path = tmp_path
        self.server = server
        self.data = data
        self.url = server.add_file("fw.bin", data)
        self.store = FileStateStore(tmp_path / "state")
        self.delays: list[float] = []
        self.events: list[ProgressEvent] = []

    def downloader(self, **overrides: object) -> HttpRangeDownloader:
        refresher = overrides.pop("url_refresher", None)
        return HttpRangeDownloader(
            self.store,
            config(**overrides),
            url_refresher=refresher,  # type: ignore[arg-type]
            sleep=self.delays.append,
        )

    def run(self, downloader: HttpRangeDownloader, url: str | None = None, job_id: str = "job-1") -> Sha256Verifier:
        verifier = Sha256Verifier(hashlib.sha256(self.data).digest())
        with FileSink(self.tmp_path / "fw.bin", len(self.data)) as sink:
            try:
                downloader.download(
                    make_request(
                        self.data, sink, uri=url or self.url, verifier=verifier, events=self.events, job_id=job_id
                    )
                )
            finally:
                downloader.close()  # release pooled connections (the downloader stays usable)
        return verifier

    def image(self) -> bytes:
        return (self.tmp_path / "fw.bin").read_bytes()


@pytest.fixture
def harness(tmp_path: Path, faulty_server: FaultyFileServer) -> Harness:
    return Harness(tmp_path, faulty_server, pattern(SIZE))


def test_full_download_is_byte_identical_and_verified_in_order(harness: Harness) -> None:
    downloader = harness.downloader()
    verifier = harness.run(downloader)
    verifier.finish()
    assert harness.image() == harness.data
    assert verifier.fed == SIZE
    assert downloader.last_stats.bytes_from_network == SIZE
    assert downloader.last_stats.attempts == 1
    assert harness.server.ranges_requested == [None]
    assert harness.events[-1].bytes_done == SIZE
    assert harness.events[-1].message == "complete"


def test_body_cut_halfway_is_resumed_with_range(harness: Harness) -> None:
    harness.server.faults.cut_after = SIZE // 2
    harness.server.faults.cut_requests = 1
    downloader = harness.downloader()
    harness.run(downloader).finish()
    assert harness.image() == harness.data
    assert len(harness.server.ranges_requested) == 2
    second = harness.server.ranges_requested[1]
    assert second is not None
    assert second.startswith("bytes=") and not second.startswith("bytes=0-")
    assert downloader.last_stats.bytes_from_network == SIZE
    assert harness.delays  # backed off once


def test_resume_in_a_new_call_after_giving_up(harness: Harness) -> None:
    harness.server.faults.cut_after = SIZE // 3
    harness.server.faults.cut_requests = 1
    with pytest.raises(RetryBudgetExhaustedError) as info:
        harness.run(harness.downloader(max_attempts=1))
    assert info.value.retryable
    second = harness.downloader()
    harness.run(second).finish()
    assert harness.image() == harness.data
    assert second.last_stats.resumed_from == SIZE // 3
    assert second.last_stats.bytes_from_network == SIZE - SIZE // 3


def test_server_ignoring_range_is_handled_without_corruption(harness: Harness) -> None:
    harness.server.faults.cut_after = SIZE // 2
    harness.server.faults.cut_requests = 1
    harness.server.faults.ignore_range = True
    downloader = harness.downloader()
    harness.run(downloader).finish()
    assert harness.image() == harness.data
    assert downloader.last_stats.bytes_skipped == SIZE // 2
    assert downloader.last_stats.bytes_written == SIZE


def test_throttled_server_triggers_the_low_speed_abort(harness: Harness) -> None:
    harness.server.faults.throttle = 20_000
    downloader = harness.downloader(low_speed_limit=200_000, low_speed_time=0.5, max_attempts=2)
    with pytest.raises(LowSpeedError) as info:
        harness.run(downloader)
    assert info.value.code == "DOWNLOAD_TOO_SLOW"
    assert downloader.last_stats.attempts == 2


def test_expired_url_asks_for_a_fresh_one_and_resumes(tmp_path: Path) -> None:
    data = pattern(SIZE)
    with FaultyFileServer(require_signature=True) as server:
        harness = Harness(tmp_path, server, data)
        stale = server.presign("fw.bin", expires_in=-10)
        asked: list[str] = []

        def refresher(request: object) -> str:
            asked.append("fresh")
            return server.presign("fw.bin", expires_in=600)

        downloader = harness.downloader(url_refresher=refresher)
        harness.run(downloader, url=stale).finish()
        assert harness.image() == data
        assert asked == ["fresh"]
        assert downloader.last_stats.url_refreshes == 1
        assert server.statuses_sent[0] == 403


def test_expired_url_without_refresher_is_a_typed_error(tmp_path: Path) -> None:
    with FaultyFileServer(require_signature=True) as server:
        harness = Harness(tmp_path, server, pattern(1000))
        with pytest.raises(UrlExpiredError):
            harness.run(harness.downloader(), url=server.url + "fw.bin")
        with pytest.raises(UrlExpiredError):
            harness.run(harness.downloader(url_refresher=lambda request: None), url=server.url + "fw.bin")


def test_refresher_returning_refused_urls_is_bounded(tmp_path: Path) -> None:
    with FaultyFileServer(require_signature=True) as server:
        harness = Harness(tmp_path, server, pattern(1000))
        stale = server.presign("fw.bin", expires_in=-10)
        with pytest.raises(UrlExpiredError):
            harness.run(harness.downloader(url_refresher=lambda request: stale, max_url_refreshes=2), url=stale)
        assert server.statuses_sent == [403, 403, 403]  # first try + two refreshes


def test_5xx_storm_ends_in_a_typed_failure_after_the_budget(harness: Harness) -> None:
    harness.server.faults.statuses = [503, 500, 502, 503, 500, 504, 503]
    downloader = harness.downloader(max_attempts=5)
    with pytest.raises(RetryBudgetExhaustedError) as info:
        harness.run(downloader)
    assert "HTTP" in info.value.details["last_error"]
    assert downloader.last_stats.attempts == 5
    assert len(harness.delays) == 4
    assert harness.delays == sorted(harness.delays) or max(harness.delays) <= 30.0


def test_a_few_5xx_then_success(harness: Harness) -> None:
    harness.server.faults.statuses = [503, 429]
    harness.run(harness.downloader()).finish()
    assert harness.image() == harness.data


def test_oversized_body_is_cut_off_and_reported(harness: Harness) -> None:
    harness.server.faults.extra_bytes = 10 * 1024 * 1024
    with pytest.raises(BodyTooLargeError):
        harness.run(harness.downloader())
    assert harness.image() == harness.data  # nothing beyond the declared size was written


def test_http_scheme_refused_by_default(harness: Harness) -> None:
    downloader = HttpRangeDownloader(harness.store)
    with pytest.raises(InsecureUrlError) as info:
        harness.run(downloader)
    assert isinstance(info.value, DownloadError)
    with pytest.raises(InsecureUrlError):
        harness.run(downloader, url="ftp://127.0.0.1/x")


def test_missing_file_is_not_retried(harness: Harness) -> None:
    downloader = harness.downloader()
    with pytest.raises(HttpStatusError) as info:
        harness.run(downloader, url=harness.server.url + "missing.bin")
    assert info.value.status == 404
    assert downloader.last_stats.attempts == 1


def test_changed_file_discards_progress(harness: Harness) -> None:
    harness.server.faults.cut_after = SIZE // 2
    harness.server.faults.cut_requests = 1
    with pytest.raises(RetryBudgetExhaustedError):
        harness.run(harness.downloader(max_attempts=1))
    harness.server.add_file("fw.bin", pattern(SIZE, seed=2))
    with pytest.raises(SourceChangedError):
        harness.run(harness.downloader())
    assert harness.store.load("download-job-1") is None


def test_progress_of_another_job_is_discarded(harness: Harness) -> None:
    harness.server.faults.cut_after = SIZE // 2
    harness.server.faults.cut_requests = 1
    with pytest.raises(RetryBudgetExhaustedError):
        harness.run(harness.downloader(max_attempts=1), job_id="job-1")
    document = harness.store.load("download-job-1")
    assert document is not None
    harness.store.save("download-job-2", document.data)  # same key layout, wrong identity
    downloader = harness.downloader()
    harness.run(downloader, job_id="job-2").finish()
    assert downloader.last_stats.resumed_from == 0


def test_stalled_body_hits_the_read_timeout_and_resumes(harness: Harness) -> None:
    harness.server.faults.stall_after = SIZE // 4
    harness.server.faults.stall_seconds = 3.0
    harness.server.faults.stall_requests = 1
    downloader = harness.downloader(read_timeout=0.5)
    harness.run(downloader).finish()
    assert harness.image() == harness.data
    assert downloader.last_stats.attempts == 2


def test_https_verifies_against_the_given_ca_and_refuses_unknown(tmp_path: Path, test_pki: LocalPki) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(test_pki.server.cert_file, test_pki.server.key_file)
    data = pattern(300_000)
    with FaultyFileServer(tls_context=context) as server:
        harness = Harness(tmp_path, server, data)
        assert harness.url.startswith("https://")
        with pytest.raises(OtaError) as info:
            harness.run(HttpRangeDownloader(harness.store, HttpDownloadConfig(max_attempts=1)))
        assert isinstance(info.value, DownloadError)
        downloader = HttpRangeDownloader(harness.store, HttpDownloadConfig(verify=str(test_pki.ca_file)))
        harness.run(downloader).finish()
        assert harness.image() == data


def test_empty_file(harness: Harness) -> None:
    harness.data = b""
    harness.url = harness.server.add_file("empty.bin", b"")
    harness.run(harness.downloader()).finish()
    assert harness.image() == b""


def test_not_an_http_location(harness: Harness) -> None:
    with FileSink(harness.tmp_path / "x", 10) as sink, pytest.raises(ConfigurationError):
        harness.downloader().download(make_request(b"x" * 10, sink, kind=LocationKind.MQTT_STREAM, uri="s"))


def test_unexpected_status_is_not_retried(harness: Harness) -> None:
    harness.server.faults.statuses = [400]
    downloader = harness.downloader()
    with pytest.raises(HttpStatusError) as info:
        harness.run(downloader)
    assert info.value.status == 400
    assert downloader.last_stats.attempts == 1


def test_unreachable_server_exhausts_the_budget(harness: Harness) -> None:
    url = harness.url
    harness.server.stop()
    downloader = harness.downloader(max_attempts=3, connect_timeout=1.0)
    with pytest.raises(RetryBudgetExhaustedError):
        harness.run(downloader, url=url)
    assert len(harness.delays) == 2


def test_saved_offset_out_of_range_is_ignored(harness: Harness) -> None:
    harness.server.faults.cut_after = SIZE // 2
    harness.server.faults.cut_requests = 1
    with pytest.raises(RetryBudgetExhaustedError):
        harness.run(harness.downloader(max_attempts=1))
    document = harness.store.load("download-job-1")
    assert document is not None
    harness.store.save("download-job-1", {**document.data, "progress": {"offset": SIZE + 1}})
    downloader = harness.downloader()
    harness.run(downloader).finish()
    assert downloader.last_stats.resumed_from == 0


class WriteOnlySink:
    def __init__(self, path: Path, size: int) -> None:
        self.inner = FileSink(path, size)

    def write_at(self, offset: int, data: bytes) -> None:
        self.inner.write_at(offset, data)

    def flush(self) -> None:
        self.inner.flush()


def test_unreadable_sink_with_a_verifier_restarts_from_zero(harness: Harness) -> None:
    harness.server.faults.cut_after = SIZE // 2
    harness.server.faults.cut_requests = 1
    with pytest.raises(RetryBudgetExhaustedError):
        harness.run(harness.downloader(max_attempts=1))
    sink = WriteOnlySink(harness.tmp_path / "fw.bin", SIZE)
    verifier = Sha256Verifier(hashlib.sha256(harness.data).digest())
    downloader = harness.downloader()
    try:
        downloader.download(make_request(harness.data, sink, uri=harness.url, verifier=verifier))
    finally:
        sink.inner.close()
        downloader.close()
    verifier.finish()
    assert downloader.last_stats.resumed_from == 0

"""MQTT stream downloads through a real mosquitto against the stream service stand-in (no mocks)."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import cbor2
import pytest

from ota_cloud.aws_streams import StreamDataPlane, StreamStore
from ota_cloud.broker import MosquittoBroker
from ota_core.errors import ConfigurationError, TransportError
from ota_core.models import LocationKind, ProgressEvent
from ota_core.mqtt import MqttConnection
from ota_core.state_store import FileStateStore
from ota_stream import (
    BlockBitmap,
    DownloadIdentity,
    Encoding,
    FileSink,
    MqttStreamConfig,
    MqttStreamDownloader,
    ResumeStore,
)
from ota_stream.errors import (
    BlockInvalidError,
    DownloadStalledError,
    SourceChangedError,
    StreamBlockSizeError,
    StreamResourceNotFoundError,
)
from tests.conftest import ConnectionFactory
from tests.download_fixtures import Sha256Verifier, make_request, pattern

pytestmark = pytest.mark.broker

SIZE = 700_000 + 77
THING = "dev1"
STREAM = "AFR_OTA-test-stream"


class Rig:
    def __init__(self, tmp_path: Path, broker: MosquittoBroker, factory: ConnectionFactory) -> None:
        self.tmp_path = tmp_path
        self.broker = broker
        self.data = pattern(SIZE)
        self.store = StreamStore()
        self.store.create_stream(STREAM, [{"fileId": 3, "data": self.data}], description="test")
        self.service = StreamDataPlane(factory("stream-service", reconnect_max_delay=0.5), self.store)
        self.service.start()
        self.device: MqttConnection = factory("device", reconnect_max_delay=0.5)
        self.state = FileStateStore(tmp_path / "state")
        self.events: list[ProgressEvent] = []

    def downloader(self, **overrides: object) -> MqttStreamDownloader:
        options: dict[str, object] = {"block_size": 4096, "request_timeout": 1.0, "progress_interval": 0.0}
        options.update(overrides)
        return MqttStreamDownloader(self.device, THING, self.state, MqttStreamConfig(**options))  # type: ignore[arg-type]

    def run(self, downloader: MqttStreamDownloader, *, stream: str = STREAM, file_id: int = 3) -> Sha256Verifier:
        verifier = Sha256Verifier(hashlib.sha256(self.data).digest())
        with FileSink(self.tmp_path / "image.bin", SIZE) as sink:
            request = make_request(
                self.data,
                sink,
                kind=LocationKind.MQTT_STREAM,
                uri=stream,
                file_id=file_id,
                verifier=verifier,
                events=self.events,
            )
            downloader.download(request)
        return verifier

    def image(self) -> bytes:
        return (self.tmp_path / "image.bin").read_bytes()


@pytest.fixture
def rig(tmp_path: Path, mosquitto: MosquittoBroker, mqtt_connection_factory: ConnectionFactory) -> Iterator[Rig]:
    made = Rig(tmp_path, mosquitto, mqtt_connection_factory)
    yield made
    made.service.stop()


@pytest.mark.parametrize("encoding", [Encoding.CBOR, Encoding.JSON])
def test_full_download_byte_identical(rig: Rig, encoding: Encoding) -> None:
    downloader = rig.downloader(encoding=encoding)
    rig.run(downloader).finish()
    assert rig.image() == rig.data
    assert downloader.last_stats.invalid_messages == 0
    assert rig.events[-1].bytes_done == SIZE


def test_large_blocks_many_in_flight(rig: Rig) -> None:
    downloader = rig.downloader(block_size=32768, requests_in_flight=3)
    rig.run(downloader).finish()
    assert rig.image() == rig.data


def test_dropped_duplicated_and_reordered_blocks(rig: Rig) -> None:
    rig.service.faults.drop_every = 7
    rig.service.faults.duplicate_every = 5
    rig.service.faults.reorder = True
    downloader = rig.downloader(request_timeout=0.3)
    rig.run(downloader).finish()
    assert rig.image() == rig.data
    assert downloader.last_stats.duplicates > 0
    assert downloader.last_stats.requests_expired > 0


def test_json_with_drops(rig: Rig) -> None:
    rig.service.faults.drop_every = 9
    downloader = rig.downloader(encoding=Encoding.JSON, request_timeout=0.3)
    rig.run(downloader).finish()
    assert rig.image() == rig.data


def test_broker_restart_mid_download(rig: Rig) -> None:
    third = (SIZE // 3) // 4096
    rig.service.faults.stall_after = third  # hold the stream a third of the way
    downloader = rig.downloader(request_timeout=0.5, max_requests_without_progress=60)
    errors: list[BaseException] = []
    verifier = Sha256Verifier(hashlib.sha256(rig.data).digest())

    def run() -> None:
        try:
            with FileSink(rig.tmp_path / "image.bin", SIZE) as sink:
                downloader.download(
                    make_request(
                        rig.data, sink, kind=LocationKind.MQTT_STREAM, uri=STREAM, file_id=3, verifier=verifier
                    )
                )
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    for _ in range(500):
        if rig.service.blocks_sent >= third:
            break
        time.sleep(0.01)
    assert worker.is_alive()
    rig.broker.restart()  # the download is in the middle: the stream is held
    rig.service.faults.stall_after = None
    worker.join(60)
    assert not worker.is_alive()
    assert not errors, errors
    verifier.finish()
    assert rig.image() == rig.data
    assert downloader.last_stats.reconnects >= 1


def test_stall_ends_in_a_typed_failure(rig: Rig) -> None:
    rig.service.faults.stall = True
    with pytest.raises(DownloadStalledError) as info:
        rig.run(rig.downloader(request_timeout=0.2, max_requests_without_progress=3))
    assert info.value.retryable


def test_resume_after_stall_fetches_only_the_rest(rig: Rig) -> None:
    half = (SIZE // 2) // 4096
    rig.service.faults.stall_after = half
    first = rig.downloader(request_timeout=1.0, max_requests_without_progress=2, save_interval_seconds=0.0)
    with pytest.raises(DownloadStalledError):
        rig.run(first)
    assert first.last_stats.blocks_written >= half
    rig.service.faults.stall_after = None
    second = rig.downloader()
    rig.run(second).finish()
    assert rig.image() == rig.data
    assert second.last_stats.resumed_blocks == first.last_stats.blocks_written  # every block was saved
    assert second.last_stats.blocks_written + second.last_stats.resumed_blocks == -(-SIZE // 4096)


def test_progress_with_another_block_size_is_discarded(rig: Rig) -> None:
    rig.run(rig.downloader(block_size=4096))
    second = rig.downloader(block_size=8192)
    rig.run(second).finish()
    assert second.last_stats.resumed_blocks == 0
    third = rig.downloader(block_size=8192)
    rig.run(third).finish()
    assert third.last_stats.blocks_written == 0  # everything was already there


def test_retryable_service_errors_are_survived(rig: Rig) -> None:
    rig.service.faults.reject_next = ["InternalError", "InternalError"]
    rig.run(rig.downloader(requests_in_flight=1)).finish()
    assert rig.image() == rig.data


def test_missing_stream_is_a_typed_non_retryable_error(rig: Rig) -> None:
    with pytest.raises(StreamResourceNotFoundError) as info:
        rig.run(rig.downloader(), stream="no-such-stream")
    assert not info.value.retryable


def test_missing_file_id(rig: Rig) -> None:
    with pytest.raises(StreamResourceNotFoundError):
        rig.run(rig.downloader(), file_id=9)


def test_service_refusal_of_block_size(rig: Rig) -> None:
    rig.service.faults.reject_next = ["BlockSizeOutOfBounds"]
    with pytest.raises(StreamBlockSizeError):
        rig.run(rig.downloader())


def test_describe_first_checks_size_and_version(rig: Rig) -> None:
    downloader = rig.downloader(describe_first=True)
    rig.run(downloader).finish()
    assert rig.image() == rig.data
    rig.store.update_stream(STREAM, files=[{"fileId": 3, "data": rig.data + b"x"}])
    with pytest.raises(BlockInvalidError):
        rig.run(rig.downloader(describe_first=True))


def test_stream_changed_mid_download(rig: Rig) -> None:
    def update_half_way(event: ProgressEvent) -> None:
        if event.bytes_done > SIZE // 2 and rig.store.get(STREAM).version == 1:  # type: ignore[union-attr]
            rig.store.update_stream(STREAM, description="new")

    downloader = rig.downloader(describe_first=True, requests_in_flight=1)
    with FileSink(rig.tmp_path / "image.bin", SIZE) as sink:
        request = make_request(rig.data, sink, kind=LocationKind.MQTT_STREAM, uri=STREAM, file_id=3)
        with pytest.raises(SourceChangedError):
            downloader.download(attrs.evolve(request, on_progress=update_half_way))
    assert rig.state.load("download-job-1") is None


def test_garbage_and_foreign_messages_are_dropped(rig: Rig, mqtt_connection_factory: ConnectionFactory) -> None:
    intruder = mqtt_connection_factory("intruder")
    data_topic = f"$aws/things/{THING}/streams/{STREAM}/data/cbor"
    rejected_topic = f"$aws/things/{THING}/streams/{STREAM}/rejected/cbor"
    sent: list[bool] = []

    def inject(event: ProgressEvent) -> None:
        if sent:
            return
        sent.append(True)
        for payload in (
            b"\x00garbage",
            cbor2.dumps({"f": 9, "i": 0, "l": 4, "p": b"evil"}),  # another file
            cbor2.dumps({"f": 3, "i": 999, "l": 4, "p": b"evil"}),  # beyond the file
            cbor2.dumps({"f": 3, "i": 0, "l": 4, "p": b"evil"}),  # wrong size
            cbor2.dumps({"c": "someone-else", "f": 3, "i": 0, "l": 4096, "p": bytes(4096)}),
        ):
            intruder.publish(data_topic, payload, qos=1)
        intruder.publish(rejected_topic, b"\x00not cbor", qos=1)
        intruder.publish(rejected_topic, cbor2.dumps({"c": "someone-else", "o": "Unauthorized"}), qos=1)

    rig.service.faults.delay = 0.05
    downloader = rig.downloader()
    with FileSink(rig.tmp_path / "image.bin", SIZE) as sink:
        verifier = Sha256Verifier(hashlib.sha256(rig.data).digest())
        request = make_request(rig.data, sink, kind=LocationKind.MQTT_STREAM, uri=STREAM, file_id=3, verifier=verifier)
        downloader.download(attrs.evolve(request, on_progress=inject))
    verifier.finish()
    assert rig.image() == rig.data
    assert downloader.last_stats.invalid_messages >= 5


def test_not_an_mqtt_location(rig: Rig) -> None:
    with FileSink(rig.tmp_path / "image.bin", SIZE) as sink, pytest.raises(ConfigurationError):
        rig.downloader().download(make_request(rig.data, sink, uri="https://example.invalid/x"))


class WriteOnlySink:
    def __init__(self, path: Path) -> None:
        self.inner = FileSink(path, SIZE)

    def write_at(self, offset: int, data: bytes) -> None:
        self.inner.write_at(offset, data)

    def flush(self) -> None:
        self.inner.flush()


def test_resume_with_holes_refeeds_the_verifier(rig: Rig) -> None:
    request_for_identity = make_request(
        rig.data, WriteOnlySink(rig.tmp_path / "scratch"), kind=LocationKind.MQTT_STREAM, uri=STREAM, file_id=3
    )
    request_for_identity.sink.inner.close()  # type: ignore[attr-defined]
    total = -(-SIZE // 4096)
    bitmap = BlockBitmap(total)
    with FileSink(rig.tmp_path / "image.bin", SIZE) as sink:
        for block in [*range(0, 10), *range(20, total, 3)]:
            bitmap.add(block)
            sink.write_at(block * 4096, rig.data[block * 4096 : (block + 1) * 4096])
    identity = DownloadIdentity.of(request_for_identity, f"mqtt:{STREAM}/3")
    ResumeStore(rig.state, "download-job-1", identity).save({"block_size": 4096, "bitmap": bitmap.to_text()})
    downloader = rig.downloader()
    rig.run(downloader).finish()
    assert rig.image() == rig.data
    assert downloader.last_stats.resumed_blocks == bitmap.received
    assert downloader.last_stats.blocks_written == total - bitmap.received


def test_unreadable_sink_with_a_verifier_restarts_from_zero(rig: Rig) -> None:
    rig.run(rig.downloader())
    downloader = rig.downloader()
    sink = WriteOnlySink(rig.tmp_path / "image.bin")
    verifier = Sha256Verifier(hashlib.sha256(rig.data).digest())
    try:
        downloader.download(
            make_request(rig.data, sink, kind=LocationKind.MQTT_STREAM, uri=STREAM, file_id=3, verifier=verifier)
        )
    finally:
        sink.inner.close()
    verifier.finish()
    assert downloader.last_stats.resumed_blocks == 0


def test_corrupt_saved_bitmap_starts_over(rig: Rig) -> None:
    rig.run(rig.downloader())
    document = rig.state.load("download-job-1")
    assert document is not None
    data = dict(document.data)
    data["progress"] = {"block_size": 4096, "bitmap": "not base64!"}
    rig.state.save("download-job-1", data)
    downloader = rig.downloader()
    rig.run(downloader).finish()
    assert downloader.last_stats.resumed_blocks == 0


def test_describe_errors(rig: Rig) -> None:
    with pytest.raises(StreamResourceNotFoundError):
        rig.run(rig.downloader(describe_first=True), stream="no-such-stream")
    with pytest.raises(BlockInvalidError):
        rig.run(rig.downloader(describe_first=True), file_id=8)
    rig.service.faults.stall = True
    with pytest.raises(TransportError):
        rig.run(rig.downloader(describe_first=True, describe_timeout=0.3))

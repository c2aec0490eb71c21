"""MQTT stream downloader: drives the sans-I/O scheduler and codec over ``ota_core``'s MQTT connection.

It subscribes to the stream's data and rejected topics, keeps the scheduler's window of requests
published, writes every new block at its offset, feeds the verifier in order, and saves the bitmap in
the state store at an interval (after making the sink durable), so a restart re-fetches at most what
arrived after the last save. Progress saved for another job, file, stream or block size is discarded.
"""

from __future__ import annotations

import logging
import queue
import secrets
import threading
from collections.abc import Callable
from typing import Any

import attrs

from ota_core.clock import Clock, SystemClock
from ota_core.errors import ConfigurationError, OtaError, TransportError
from ota_core.models import FileLocation, LocationKind
from ota_core.mqtt import MqttConnection, MqttMessage
from ota_core.protocols import DownloadRequest, StateStore
from ota_stream._bitmap import BlockBitmap, block_count, block_length
from ota_stream._codec import (
    MAX_BLOCK_SIZE,
    Encoding,
    StreamTopics,
    decode_data_block,
    decode_description,
    decode_rejection,
    encode_describe_request,
    encode_get_request,
)
from ota_stream._progress import DownloadIdentity, ProgressMeter, ResumeStore
from ota_stream._scheduler import StreamScheduler
from ota_stream.errors import (
    BlockInvalidError,
    SourceChangedError,
    StreamEtagMismatchError,
    StreamMessageError,
    StreamVersionMismatchError,
)
from ota_stream.sinks import InOrderFeeder, ReadableSink

__all__ = ["MqttStreamConfig", "MqttStreamDownloader", "StreamStats"]

_log = logging.getLogger(__name__)

_MAX_DRAIN = 256  # messages handled between two scheduler polls


@attrs.frozen
class MqttStreamConfig:
    """Knobs of the MQTT stream downloader (defaults chosen by measurement, see docs/download.md).

    ``blocks_per_request`` defaults to as many blocks as fit the service's 128 KiB per request.
    """

    encoding: Encoding = Encoding.CBOR
    block_size: int = 64 * 1024
    blocks_per_request: int | None = None
    requests_in_flight: int = 4
    request_timeout: float = 3.0
    max_requests_without_progress: int = 16
    describe_first: bool = False
    subscribe_qos: int = 0
    save_interval_seconds: float = 1.0
    save_interval_bytes: int = 32 * 1024 * 1024
    progress_interval: float = 0.5
    describe_timeout: float = 10.0

    @property
    def per_request(self) -> int:
        """Blocks per request, explicit or derived from the 128 KiB service limit."""
        return self.blocks_per_request or max(1, MAX_BLOCK_SIZE // self.block_size)


@attrs.define
class StreamStats:
    """What one ``download`` call did."""

    resumed_blocks: int = 0
    blocks_written: int = 0
    bytes_written: int = 0
    duplicates: int = 0
    invalid_messages: int = 0
    requests_sent: int = 0
    requests_expired: int = 0
    reconnects: int = 0


class MqttStreamDownloader:
    """A ``Downloader`` for ``LocationKind.MQTT_STREAM`` locations (AWS IoT MQTT-based file delivery)."""

    def __init__(
        self,
        connection: MqttConnection,
        thing_name: str,
        state_store: StateStore,
        config: MqttStreamConfig | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        self._connection = connection
        self._thing = thing_name
        self._store = state_store
        self.config = config or MqttStreamConfig()
        self._clock = clock or SystemClock()
        self._inbox: queue.SimpleQueue[MqttMessage | bool | None] = queue.SimpleQueue()
        self._active = threading.Event()
        # Data blocks are handled on the connection's dispatcher thread (one thread hop fewer per block);
        # the lock keeps the scheduler, feeder and sink to one thread at a time.
        self._lock = threading.Lock()
        self._fast: Callable[[MqttMessage], bool] | None = None
        self.last_stats = StreamStats()
        connection.add_connection_listener(self._on_connection)

    def supports(self, location: FileLocation) -> bool:
        """True for MQTT stream locations."""
        return location.kind is LocationKind.MQTT_STREAM

    def _on_connection(self, connected: bool) -> None:
        if self._active.is_set():
            self._inbox.put(connected)

    def _on_message(self, message: MqttMessage) -> None:
        if not self._active.is_set():
            return
        fast = self._fast
        if fast is not None and fast(message):
            return
        self._inbox.put(message)

    def download(self, request: DownloadRequest) -> None:
        """Fetch the whole file into ``request.sink`` or raise a ``DownloadError`` subclass."""
        if not self.supports(request.location):
            raise ConfigurationError(f"not an MQTT stream location: {request.location.kind}")
        cfg = self.config
        stream_id = request.location.uri
        file_id = request.location.file_id or 0
        topics = StreamTopics(self._thing, stream_id, cfg.encoding)
        token = secrets.token_hex(4)
        while not self._inbox.empty():
            self._inbox.get_nowait()
        self._active.set()
        subscriptions = []
        try:
            subscriptions.append(self._connection.subscribe(topics.data, self._on_message, qos=cfg.subscribe_qos))
            subscriptions.append(self._connection.subscribe(topics.rejected, self._on_message, qos=cfg.subscribe_qos))
            if cfg.describe_first:
                subscriptions.append(
                    self._connection.subscribe(topics.description, self._on_message, qos=cfg.subscribe_qos)
                )
            self._run(request, topics, file_id, token)
        finally:
            self._active.clear()
            self._fast = None
            for subscription in subscriptions:
                try:
                    self._connection.unsubscribe(subscription)
                except TransportError as exc:
                    _log.debug("unsubscribe failed: %s", exc.code)

    # --- the loop --------------------------------------------------------------------------------

    def _run(self, request: DownloadRequest, topics: StreamTopics, file_id: int, token: str) -> None:
        cfg = self.config
        size = request.target.size
        stats = self.last_stats = StreamStats()
        version = self._describe(topics, file_id, size, token) if cfg.describe_first else None
        identity = DownloadIdentity.of(request, f"mqtt:{topics.stream_id}/{file_id}")
        resume = ResumeStore(self._store, request.progress_key, identity)
        bitmap = self._restore(resume, size, version)
        reader = request.sink if isinstance(request.sink, ReadableSink) else None
        if bitmap.received and request.verifier is not None and reader is None:
            _log.info("sink cannot be read back for the verifier; restarting %s", request.target.name)
            bitmap = BlockBitmap(bitmap.total)
        stats.resumed_blocks = bitmap.received
        scheduler = StreamScheduler(
            file_id=file_id,
            file_size=size,
            block_size=cfg.block_size,
            blocks_per_request=cfg.per_request,
            requests_in_flight=cfg.requests_in_flight,
            request_timeout=cfg.request_timeout,
            max_requests_without_progress=cfg.max_requests_without_progress,
            use_bitmap=cfg.encoding is Encoding.CBOR,
            bitmap=bitmap,
        )
        feeder = self._feeder(request, scheduler, reader)
        meter = ProgressMeter(
            request.job_id,
            size,
            self._clock,
            request.on_progress,
            interval=cfg.progress_interval,
            start_bytes=scheduler.bytes_received,
        )
        saver = _Saver(request, resume, scheduler, version=version, clock=self._clock, config=cfg)
        context = {
            "request": request,
            "topics": topics,
            "token": token,
            "scheduler": scheduler,
            "feeder": feeder,
            "stats": stats,
            "saver": saver,
        }
        failure: list[BaseException] = []
        last_wake = [float("-inf")]

        def send_requests() -> None:
            for get in scheduler.poll(self._clock.monotonic()):
                payload = encode_get_request(
                    cfg.encoding,
                    file_id=file_id,
                    block_size=cfg.block_size,
                    offset=get.offset,
                    count=get.count,
                    bitmap=get.bitmap,
                    client_token=token,
                    stream_version=version,
                )
                self._connection.publish(topics.get, payload, qos=0, wait=False)

        def fast(message: MqttMessage) -> bool:
            if message.topic != topics.data:
                return False
            with self._lock:
                if failure or scheduler.complete:
                    return True
                try:
                    self._handle(message, **context)  # type: ignore[arg-type]
                    if not scheduler.complete:
                        send_requests()
                except TransportError:
                    scheduler.release_all()  # the link dropped: the download thread asks again once it is back
                except (OtaError, OSError) as exc:
                    failure.append(exc)
                done = scheduler.complete or bool(failure)
            now = self._clock.monotonic()
            if done or now - last_wake[0] >= cfg.progress_interval:
                last_wake[0] = now
                self._inbox.put(None)  # wake the download thread: progress, completion or failure
            return True

        self._fast = fast
        while True:
            with self._lock:
                if failure:
                    raise failure[0]
                if scheduler.complete:
                    break
                try:
                    send_requests()
                except TransportError as exc:
                    _log.info("GetStream not sent (%s); waiting for the connection", exc.code)
                    scheduler.release_all()
                    sent = False
                else:
                    sent = True
                deadline = scheduler.next_deadline()
            if not sent:
                self._connection.wait_connected(cfg.request_timeout)
                continue
            wait = cfg.request_timeout if deadline is None else max(0.0, deadline - self._clock.monotonic())
            try:
                item = self._inbox.get(timeout=min(wait, cfg.request_timeout))
            except queue.Empty:
                continue
            with self._lock:
                for _ in range(_MAX_DRAIN):
                    if item is not None:
                        self._handle(item, **context)  # type: ignore[arg-type]
                    try:
                        item = self._inbox.get_nowait()
                    except queue.Empty:
                        break
                received = scheduler.bytes_received
            meter.update(received)
        stats.duplicates = scheduler.duplicates
        stats.requests_sent = scheduler.requests_sent
        stats.requests_expired = scheduler.requests_expired
        saver.save(force=True)
        meter.update(size, force=True, message="complete")

    def _handle(
        self,
        item: MqttMessage | bool,
        *,
        request: DownloadRequest,
        topics: StreamTopics,
        token: str,
        scheduler: StreamScheduler,
        feeder: InOrderFeeder,
        stats: StreamStats,
        saver: _Saver,
    ) -> None:
        if isinstance(item, bool):
            if item:
                stats.reconnects += 1
                scheduler.release_all()  # whatever was in flight is lost with the old session
            return
        now = self._clock.monotonic()
        if item.topic == topics.data:
            try:
                block = decode_data_block(topics.encoding, item.payload)
                if block.client_token not in (None, token):
                    return  # another client's answer on a shared topic
                accepted = scheduler.on_data(block, now)
            except (StreamMessageError, BlockInvalidError) as exc:
                stats.invalid_messages += 1
                _log.warning("dropped a data message: %s", exc)
                return
            if accepted is None:
                return
            request.sink.write_at(accepted.offset, accepted.data)
            feeder.written(accepted.offset, accepted.data)
            stats.blocks_written += 1
            stats.bytes_written += len(accepted.data)
            saver.save()
        elif item.topic == topics.rejected:
            try:
                rejection = decode_rejection(topics.encoding, item.payload)
            except StreamMessageError as exc:
                stats.invalid_messages += 1
                _log.warning("dropped a rejected message: %s", exc)
                return
            if rejection.client_token not in (None, token):
                return
            error = rejection.to_error()
            if isinstance(error, StreamVersionMismatchError | StreamEtagMismatchError):
                saver.resume.clear()
                raise SourceChangedError(f"the stream changed: {error.message}") from error
            if not error.retryable:
                raise error
            _log.info("stream service error %s; backing off", rejection.service_code)
            scheduler.on_retryable_rejection(now)

    # --- helpers ---------------------------------------------------------------------------------

    def _describe(self, topics: StreamTopics, file_id: int, size: int, token: str) -> int | None:
        """DescribeStream: learn the stream version and check the file's size against the job."""
        cfg = self.config
        self._connection.publish(topics.describe, encode_describe_request(cfg.encoding, token), qos=0, wait=False)
        deadline = self._clock.monotonic() + cfg.describe_timeout
        while True:
            left = deadline - self._clock.monotonic()
            try:
                item = self._inbox.get(timeout=max(0.0, left))
            except queue.Empty:
                raise TransportError(f"no DescribeStream answer within {cfg.describe_timeout} s") from None
            if item is None or isinstance(item, bool):
                continue
            if item.topic == topics.rejected:
                raise decode_rejection(cfg.encoding, item.payload).to_error()
            if item.topic != topics.description:
                continue
            description = decode_description(cfg.encoding, item.payload)
            if file_id not in description.file_sizes:
                raise BlockInvalidError(f"stream {topics.stream_id} has no file {file_id}")
            if description.file_sizes[file_id] != size:
                raise BlockInvalidError(
                    f"stream file {file_id} has {description.file_sizes[file_id]} bytes, the job declares {size}"
                )
            return description.version

    def _restore(self, resume: ResumeStore, size: int, version: int | None) -> BlockBitmap:
        total = block_count(size, self.config.block_size)
        saved = resume.load()
        if saved is None:
            return BlockBitmap(total)
        same = saved.get("block_size") == self.config.block_size and (
            version is None or saved.get("stream_version") in (None, version)
        )
        text = saved.get("bitmap")
        if same and isinstance(text, str):
            try:
                return BlockBitmap.from_text(total, text)
            except StreamMessageError as exc:
                _log.warning("saved bitmap unusable (%s); starting from zero", exc.message)
        resume.clear()
        return BlockBitmap(total)

    def _feeder(
        self, request: DownloadRequest, scheduler: StreamScheduler, reader: ReadableSink | None
    ) -> InOrderFeeder:
        size = request.target.size
        cfg = self.config
        feeder = InOrderFeeder(
            request.verifier, size, reader=reader, max_buffered=cfg.requests_in_flight * MAX_BLOCK_SIZE * 2
        )
        bitmap = scheduler.bitmap
        prefix_blocks = bitmap.contiguous_prefix()
        feeder.catch_up(min(size, prefix_blocks * cfg.block_size))
        block = bitmap.first_missing(prefix_blocks)
        while block is not None and block < bitmap.total:
            nxt = block + 1
            while nxt < bitmap.total and nxt not in bitmap:
                nxt += 1
            if nxt >= bitmap.total:
                break
            # nxt is a received block after a gap: tell the feeder it is in the sink.
            feeder.present(nxt * cfg.block_size, block_length(size, cfg.block_size, nxt))
            block = nxt + 1
            while block < bitmap.total and block in bitmap:
                feeder.present(block * cfg.block_size, block_length(size, cfg.block_size, block))
                block += 1
        return feeder


class _Saver:
    """Saves the bitmap at an interval: sink durable first, then the record."""

    def __init__(
        self,
        request: DownloadRequest,
        resume: ResumeStore,
        scheduler: StreamScheduler,
        *,
        version: int | None,
        clock: Clock,
        config: MqttStreamConfig,
    ) -> None:
        self.resume = resume
        self._request = request
        self._scheduler = scheduler
        self._version = version
        self._clock = clock
        self._config = config
        self._saved_blocks = scheduler.bitmap.received
        self._saved_at = clock.monotonic()

    def save(self, *, force: bool = False) -> None:
        received = self._scheduler.bitmap.received
        if received == self._saved_blocks and not force:
            return
        now = self._clock.monotonic()
        new_bytes = (received - self._saved_blocks) * self._config.block_size
        if (
            not force
            and now - self._saved_at < self._config.save_interval_seconds
            and (new_bytes < self._config.save_interval_bytes)
        ):
            return
        self._request.sink.flush()
        progress: dict[str, Any] = {"block_size": self._config.block_size, "bitmap": self._scheduler.bitmap.to_text()}
        if self._version is not None:
            progress["stream_version"] = self._version
        self.resume.save(progress)
        self._saved_blocks = received
        self._saved_at = now

"""The MQTT data plane of the stream service stand-in, over a real broker.

It answers ``$aws/things/<thing>/streams/<stream>/get/<fmt>`` with one data message per block on
``.../data/<fmt>``, ``.../describe/<fmt>`` with ``.../description/<fmt>``, and refuses bad requests on
``.../rejected/<fmt>`` with the service's error codes and both key styles (short and long), as the real
service does. CBOR answers are indefinite-length maps, like the service's. Limits: block size
256..131072, offset and count 0..98304, bitmap under 12,288 bytes, client token up to 64 bytes, and
about 128 KiB delivered per request. Fault switches drop, duplicate, reorder or delay blocks, stall, or
reject requests. Written from the protocol description, independently of the device side.
"""

from __future__ import annotations

import base64
import json
import logging
import queue
import threading
from typing import Any, TypeGuard

import attrs
import cbor2

from ota_cloud.aws_streams._store import StreamRecord, StreamStore
from ota_core.errors import OtaError
from ota_core.mqtt import MqttConnection, MqttMessage, Subscription

__all__ = ["StreamDataPlane", "StreamFaults"]

_log = logging.getLogger(__name__)

_PER_REQUEST_BYTES = 131072
_MIN_BLOCK, _MAX_BLOCK = 256, 131072
_MAX_OFFSET = 98304
_MAX_BITMAP = 12288
_MAX_TOKEN = 64
_STOP = object()


@attrs.define
class StreamFaults:
    """Switches for tests; change them at any time.

    ``drop_every``/``duplicate_every``: drop or send twice every Nth block sent (0: never).
    ``drop_blocks``: block ids to drop, each once. ``reorder``: send each answer's blocks in reverse.
    ``delay``: seconds to wait before answering a request. ``stall``: ignore every request.
    ``reject_next``: answer the next requests with these error codes instead of data.
    ``stall_after``: stall (as ``stall``) once this many blocks have been sent in total.
    """

    drop_every: int = 0
    duplicate_every: int = 0
    drop_blocks: set[int] = attrs.field(factory=set)
    reorder: bool = False
    delay: float = 0.0
    stall: bool = False
    reject_next: list[str] = attrs.field(factory=list)
    stall_after: int | None = None


class _Refusal(Exception):  # noqa: N818 - internal control flow, carries a service error code
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class StreamDataPlane:
    """Serves the streams of a ``StreamStore`` to devices through an MQTT connection."""

    def __init__(self, connection: MqttConnection, store: StreamStore) -> None:
        self._connection = connection
        self._store = store
        self.faults = StreamFaults()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._subscriptions: list[Subscription] = []
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._sent = 0
        self.requests_received = 0
        self.blocks_sent = 0
        self.block_bytes_sent = 0
        self.rejections_sent = 0

    def start(self) -> None:
        """Subscribe to the request topics and start answering."""
        self._worker = threading.Thread(target=self._work, name="stream-data-plane", daemon=True)
        self._worker.start()
        for operation in ("get", "describe"):
            self._subscriptions.append(
                self._connection.subscribe(f"$aws/things/+/streams/+/{operation}/+", self._queue.put, qos=0)
            )

    def stop(self) -> None:
        """Stop answering."""
        self._stopping.set()
        for subscription in self._subscriptions:
            try:
                self._connection.unsubscribe(subscription)
            except OtaError:
                _log.debug("unsubscribe failed while stopping")
        self._subscriptions.clear()
        self._queue.put(_STOP)
        if self._worker is not None:
            self._worker.join(5.0)

    def __enter__(self) -> StreamDataPlane:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # --- worker ----------------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            try:
                self._serve(item)
            except OtaError as exc:
                _log.warning("could not answer a stream request: %s", exc)

    def _serve(self, message: MqttMessage) -> None:
        parts = message.topic.split("/")
        # $aws / things / <thing> / streams / <stream> / <op> / <fmt>
        if len(parts) != 7 or parts[0] != "$aws" or parts[1] != "things" or parts[3] != "streams":
            return
        base = "/".join(parts[:5])
        operation, fmt = parts[5], parts[6]
        self.requests_received += 1
        if self.faults.stall or (self.faults.stall_after is not None and self.blocks_sent >= self.faults.stall_after):
            return
        if self.faults.delay and self._stopping.wait(self.faults.delay):
            return
        answer_fmt = fmt if fmt in ("json", "cbor") else "json"
        token: str | None = None
        try:
            if fmt not in ("json", "cbor"):
                raise _Refusal("InvalidTopic", f"unknown format {fmt!r}")
            request = self._decode(fmt, message.payload)
            raw_token = request.get("c")
            if raw_token is not None:
                if not isinstance(raw_token, str) or len(raw_token.encode()) > _MAX_TOKEN:
                    raise _Refusal("InvalidRequest", "client token must be a string of at most 64 bytes")
                token = raw_token
            with self._lock:
                if self.faults.reject_next:
                    raise _Refusal(self.faults.reject_next.pop(0), "injected fault")
            record = self._store.get(parts[4])
            if record is None:
                raise _Refusal("ResourceNotFound", f"stream {parts[4]} not found")
            if operation == "describe":
                self._describe(base, fmt, record, token)
            else:
                self._get(base, fmt, record, request, token)
        except _Refusal as refusal:
            self._reject(base, answer_fmt, refusal, token)

    @staticmethod
    def _decode(fmt: str, payload: bytes) -> dict[str, Any]:
        if fmt == "cbor":
            try:
                value = cbor2.loads(payload) if payload else {}
            except (cbor2.CBORDecodeError, ValueError, TypeError, EOFError, RecursionError) as exc:
                raise _Refusal("InvalidCbor", "Invalid CBOR message") from exc
            if not isinstance(value, dict):
                raise _Refusal("InvalidCbor", "request is not a map")
            return value
        try:
            value = json.loads(payload.decode("utf-8")) if payload else {}
        except (ValueError, RecursionError) as exc:
            raise _Refusal("InvalidJson", "Invalid JSON message") from exc
        if not isinstance(value, dict):
            raise _Refusal("InvalidJson", "request is not an object")
        return value

    def _get(self, base: str, fmt: str, record: StreamRecord, request: dict[str, Any], token: str | None) -> None:
        version = request.get("s")
        if version is not None and version != record.version:
            raise _Refusal("VersionMismatch", f"stream version is {record.version}")
        file_id = request.get("f")
        if not _is_int(file_id) or file_id not in record.files:
            raise _Refusal("ResourceNotFound", "file not found in stream")
        size = request.get("l")
        if not _is_int(size) or not _MIN_BLOCK <= size <= _MAX_BLOCK:
            raise _Refusal("BlockSizeOutOfBounds", f"block size must be {_MIN_BLOCK}..{_MAX_BLOCK}")
        offset = request.get("o", 0)
        if not _is_int(offset) or not 0 <= offset <= _MAX_OFFSET:
            raise _Refusal("OffsetOutOfBounds", f"offset must be 0..{_MAX_OFFSET}")
        count = request.get("n")
        if count is not None and (not _is_int(count) or not 0 <= count <= _MAX_OFFSET):
            raise _Refusal("BlockCountLimitExceeded", f"block count must be 0..{_MAX_OFFSET}")
        bitmap = self._bitmap(fmt, request.get("b"))
        stream_file = record.files[file_id]
        total_blocks = -(-stream_file.size // size)
        if offset >= total_blocks:
            raise _Refusal("InvalidRequest", "The data requested is out of the range of data available.")
        if bitmap is not None:
            wanted = [offset + k for k in range(len(bitmap) * 8) if bitmap[k >> 3] & (1 << (k & 7))]
            if count is not None:
                wanted = wanted[:count]
        else:
            wanted = list(range(offset, offset + (count if count is not None else _PER_REQUEST_BYTES // size)))
        wanted = [block for block in wanted if block < total_blocks][: max(1, _PER_REQUEST_BYTES // size)]
        if self.faults.reorder:
            wanted.reverse()
        for block in wanted:
            data = stream_file.read(block * size, size)
            payload = self._encode_block(fmt, {"c": token, "f": file_id, "l": len(data), "i": block, "p": data})
            self._send_block(f"{base}/data/{fmt}", block, payload, len(data))

    @staticmethod
    def _bitmap(fmt: str, raw: Any) -> bytes | None:
        if raw is None:
            return None
        if fmt == "cbor":
            if not isinstance(raw, bytes):
                raise _Refusal("InvalidCbor", "bitmap must be a byte string")
            bitmap = raw
        else:
            if not isinstance(raw, str):
                raise _Refusal("InvalidRequest", "bitmap must be a hex string")
            text = raw[2:] if raw.lower().startswith("0x") else raw
            try:
                bitmap = bytes.fromhex(text)
            except ValueError as exc:
                raise _Refusal("InvalidRequest", "bitmap is not hex") from exc
        if len(bitmap) >= _MAX_BITMAP:
            raise _Refusal("BlockBitmapLimitExceeded", f"bitmap must be under {_MAX_BITMAP} bytes")
        return bitmap

    def _send_block(self, topic: str, block: int, payload: bytes, size: int) -> None:
        with self._lock:
            self._sent += 1
            number = self._sent
            faults = self.faults
            drop = (faults.drop_every and number % faults.drop_every == 0) or block in faults.drop_blocks
            faults.drop_blocks.discard(block)
            duplicate = bool(faults.duplicate_every and number % faults.duplicate_every == 0)
        if drop:
            _log.debug("fault: dropping block %d", block)
            return
        for _ in range(2 if duplicate else 1):
            self._connection.publish(topic, payload, qos=0, wait=False)
            self.blocks_sent += 1
            self.block_bytes_sent += size

    def _describe(self, base: str, fmt: str, record: StreamRecord, token: str | None) -> None:
        fields = {
            "c": token,
            "s": record.version,
            "d": record.description,
            "r": [{"f": f.file_id, "z": f.size} for f in record.files.values()],
        }
        self._connection.publish(f"{base}/description/{fmt}", self._encode(fmt, fields), qos=0, wait=False)

    def _reject(self, base: str, fmt: str, refusal: _Refusal, token: str | None) -> None:
        fields = {
            "o": refusal.code,
            "code": refusal.code,
            "m": refusal.message,
            "message": refusal.message,
            "c": token,
            "clientToken": token,
        }
        self.rejections_sent += 1
        self._connection.publish(f"{base}/rejected/{fmt}", self._encode(fmt, fields), qos=0, wait=False)

    @classmethod
    def _encode_block(cls, fmt: str, fields: dict[str, Any]) -> bytes:
        if fmt == "json":
            fields = dict(fields, p=base64.b64encode(fields["p"]).decode("ascii"))
        return cls._encode(fmt, fields)

    @staticmethod
    def _encode(fmt: str, fields: dict[str, Any]) -> bytes:
        present = {key: value for key, value in fields.items() if value is not None}
        if fmt == "json":
            return json.dumps(present, separators=(",", ":")).encode("utf-8")
        # The service sends indefinite-length maps: 0xBF, key/value pairs, 0xFF.
        body = b"".join(cbor2.dumps(key) + cbor2.dumps(value) for key, value in present.items())
        return b"\xbf" + body + b"\xff"


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)

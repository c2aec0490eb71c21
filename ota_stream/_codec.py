"""Sans-I/O codec of the AWS IoT MQTT file-stream protocol (GetStream, DescribeStream, rejections).

It builds request payloads and decodes the service's data, description and rejected messages in both
encodings. CBOR requests are definite-length maps with one-letter keys and the bitmap ``b`` as a byte
string (LSB first, relative to ``o``); CBOR responses may be indefinite-length maps. JSON data blocks
carry the payload in base64. Numbers in JSON may arrive as numeric strings, as some encoders send them.
Nothing here opens a socket or reads a clock.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
from collections.abc import Mapping
from typing import Any

import attrs
import cbor2

from ota_core.errors import ConfigurationError
from ota_stream.errors import StreamMessageError, StreamRejectedError, rejection_error

__all__ = [
    "MAX_BITMAP_BYTES",
    "MAX_BLOCK_OFFSET",
    "MAX_BLOCK_SIZE",
    "MAX_CLIENT_TOKEN_BYTES",
    "MIN_BLOCK_SIZE",
    "DataBlock",
    "Encoding",
    "StreamDescription",
    "StreamRejection",
    "StreamTopics",
    "decode_data_block",
    "decode_description",
    "decode_rejection",
    "encode_describe_request",
    "encode_get_request",
]

MIN_BLOCK_SIZE = 256
MAX_BLOCK_SIZE = 131072
MAX_BLOCK_OFFSET = 98304
MAX_BITMAP_BYTES = 12287  # the service wants fewer than 12,288 bytes
MAX_CLIENT_TOKEN_BYTES = 64
# A data message carries at most one 128 KiB block (base64 in JSON adds a third); anything much larger is
# refused before it is decoded, so a hostile message cannot make the decoder allocate without bound.
MAX_MESSAGE_BYTES = 256 * 1024
_MAX_FILE_ID = 255
_MAX_STREAM_VERSION = 65535


class Encoding(enum.StrEnum):
    """The two payload encodings of the stream service; the value is the topic suffix."""

    CBOR = "cbor"
    JSON = "json"


@attrs.frozen
class StreamTopics:
    """The MQTT topics of one stream for one thing, in one encoding."""

    thing_name: str
    stream_id: str
    encoding: Encoding = Encoding.CBOR

    @property
    def base(self) -> str:
        """``$aws/things/<thing>/streams/<stream>``."""
        return f"$aws/things/{self.thing_name}/streams/{self.stream_id}"

    @property
    def get(self) -> str:
        """Where GetStream requests are published."""
        return f"{self.base}/get/{self.encoding}"

    @property
    def data(self) -> str:
        """Where data blocks arrive (one message per block)."""
        return f"{self.base}/data/{self.encoding}"

    @property
    def describe(self) -> str:
        """Where DescribeStream requests are published."""
        return f"{self.base}/describe/{self.encoding}"

    @property
    def description(self) -> str:
        """Where DescribeStream answers arrive."""
        return f"{self.base}/description/{self.encoding}"

    @property
    def rejected(self) -> str:
        """Where rejections of either request arrive."""
        return f"{self.base}/rejected/{self.encoding}"


@attrs.frozen
class DataBlock:
    """One block of a stream file as the service sent it (not yet checked against the file)."""

    file_id: int
    block_id: int
    size: int
    payload: bytes
    client_token: str | None = None


@attrs.frozen
class StreamDescription:
    """A DescribeStream answer: stream version, description and the size of every file by id."""

    version: int | None
    description: str
    file_sizes: Mapping[int, int]
    client_token: str | None = None


@attrs.frozen
class StreamRejection:
    """A rejected-topic message: the service's error code, its message and the echoed client token."""

    service_code: str
    message: str
    client_token: str | None = None

    def to_error(self) -> StreamRejectedError:
        """The typed error for this rejection (it says whether a retry can help)."""
        return rejection_error(self.service_code, self.message, self.client_token)


# --- requests ------------------------------------------------------------------------------------


def _check_request(  # noqa: PLR0917
    file_id: int,
    block_size: int,
    offset: int,
    count: int | None,
    bitmap: bytes | None,
    client_token: str | None,
    stream_version: int | None,
) -> None:
    """Refuse a request the service would reject, before it is sent."""
    problems: list[str] = []
    if not 0 <= file_id <= _MAX_FILE_ID:
        problems.append(f"file id {file_id} outside 0..{_MAX_FILE_ID}")
    if not MIN_BLOCK_SIZE <= block_size <= MAX_BLOCK_SIZE:
        problems.append(f"block size {block_size} outside {MIN_BLOCK_SIZE}..{MAX_BLOCK_SIZE}")
    if not 0 <= offset <= MAX_BLOCK_OFFSET:
        problems.append(f"block offset {offset} outside 0..{MAX_BLOCK_OFFSET}")
    if count is not None and not 0 <= count <= MAX_BLOCK_OFFSET:
        problems.append(f"block count {count} outside 0..{MAX_BLOCK_OFFSET}")
    if bitmap is not None and not 0 < len(bitmap) <= MAX_BITMAP_BYTES:
        problems.append(f"bitmap of {len(bitmap)} bytes outside 1..{MAX_BITMAP_BYTES}")
    if client_token is not None and len(client_token.encode("utf-8")) > MAX_CLIENT_TOKEN_BYTES:
        problems.append(f"client token longer than {MAX_CLIENT_TOKEN_BYTES} bytes")
    if stream_version is not None and not 0 <= stream_version <= _MAX_STREAM_VERSION:
        problems.append(f"stream version {stream_version} outside 0..{_MAX_STREAM_VERSION}")
    if count is None and bitmap is None:
        problems.append("a request needs a block count, a bitmap or both")
    if problems:
        raise ConfigurationError("invalid GetStream request: " + "; ".join(problems))


def encode_get_request(
    encoding: Encoding,
    *,
    file_id: int,
    block_size: int,
    offset: int = 0,
    count: int | None = None,
    bitmap: bytes | None = None,
    client_token: str | None = None,
    stream_version: int | None = None,
) -> bytes:
    """Encode a GetStream request; raises ``ConfigurationError`` for values the service would refuse.

    Keys go out in the order ``c, s, f, l, o, b, n`` (only those given). In CBOR the bitmap is a byte
    string; in JSON it is the hex text ``0x...`` of the same bytes (prefer ``count`` there).
    """
    _check_request(file_id, block_size, offset, count, bitmap, client_token, stream_version)
    fields: dict[str, Any] = {}
    if client_token is not None:
        fields["c"] = client_token
    if stream_version is not None:
        fields["s"] = stream_version
    fields["f"] = file_id
    fields["l"] = block_size
    fields["o"] = offset
    if bitmap is not None:
        fields["b"] = bytes(bitmap) if encoding is Encoding.CBOR else "0x" + bitmap.hex()
    if count is not None:
        fields["n"] = count
    return _dump(encoding, fields)


def encode_describe_request(encoding: Encoding, client_token: str | None = None) -> bytes:
    """Encode a DescribeStream request (an empty map unless a client token is given)."""
    if client_token is not None and len(client_token.encode("utf-8")) > MAX_CLIENT_TOKEN_BYTES:
        raise ConfigurationError(f"client token longer than {MAX_CLIENT_TOKEN_BYTES} bytes")
    fields: dict[str, Any] = {} if client_token is None else {"c": client_token}
    return _dump(encoding, fields)


def _dump(encoding: Encoding, fields: Mapping[str, Any]) -> bytes:
    if encoding is Encoding.CBOR:
        return bytes(cbor2.dumps(dict(fields)))
    return json.dumps(dict(fields), separators=(",", ":")).encode("utf-8")


# --- responses -----------------------------------------------------------------------------------


def _load(encoding: Encoding, payload: bytes, what: str) -> Mapping[Any, Any]:
    """Decode one message into a mapping or raise ``StreamMessageError``."""
    if len(payload) > MAX_MESSAGE_BYTES:
        raise StreamMessageError(f"{what} of {len(payload)} bytes is larger than any valid message")
    try:
        value = cbor2.loads(payload) if encoding is Encoding.CBOR else json.loads(payload.decode("utf-8"))
    except (
        cbor2.CBORDecodeError,
        ValueError,
        TypeError,
        EOFError,
        OverflowError,
        RecursionError,
        LookupError,
        AttributeError,
    ) as exc:
        # cbor2's decode errors derive from ValueError; json's too; UnicodeDecodeError is a ValueError.
        raise StreamMessageError(f"{what} is not valid {encoding.value}: {type(exc).__name__}") from exc
    if not isinstance(value, Mapping):
        raise StreamMessageError(f"{what} is not a map but {type(value).__name__}")
    return value


def _int_field(fields: Mapping[Any, Any], key: str, what: str, *, low: int, high: int) -> int:
    """Read an integer field (JSON may carry it as a string of digits) and check its range."""
    if key not in fields:
        raise StreamMessageError(f"{what} lacks key {key!r}")
    value = fields[key]
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise StreamMessageError(f"{what} key {key!r} is not an integer")
    if not low <= value <= high:
        raise StreamMessageError(f"{what} key {key!r} = {value} outside {low}..{high}")
    return value


def _optional_text(fields: Mapping[Any, Any], *keys: str) -> str | None:
    for key in keys:
        value = fields.get(key)
        if isinstance(value, str):
            return value
    return None


def decode_data_block(encoding: Encoding, payload: bytes) -> DataBlock:
    """Decode one data message (``f``, ``i``, ``l``, ``p``, optional ``c``); ``StreamMessageError`` if bad.

    Only the message's own consistency is checked here (``l`` equals the payload length); whether the
    block fits the file being fetched is the scheduler's job.
    """
    what = "data block"
    fields = _load(encoding, payload, what)
    file_id = _int_field(fields, "f", what, low=0, high=_MAX_FILE_ID)
    block_id = _int_field(fields, "i", what, low=0, high=MAX_BLOCK_OFFSET * (MAX_BLOCK_SIZE // MIN_BLOCK_SIZE))
    size = _int_field(fields, "l", what, low=0, high=MAX_BLOCK_SIZE)
    if "p" not in fields:
        raise StreamMessageError(f"{what} lacks key 'p'")
    raw = fields["p"]
    if encoding is Encoding.CBOR:
        if not isinstance(raw, bytes):
            raise StreamMessageError(f"{what} payload is not a byte string")
        data = raw
    else:
        if not isinstance(raw, str):
            raise StreamMessageError(f"{what} payload is not base64 text")
        try:
            data = base64.b64decode(raw.encode("ascii"), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise StreamMessageError(f"{what} payload is not valid base64") from exc
    if len(data) != size:
        raise StreamMessageError(f"{what} says {size} bytes but carries {len(data)}")
    return DataBlock(file_id, block_id, size, bytes(data), _optional_text(fields, "c", "clientToken"))


def decode_rejection(encoding: Encoding, payload: bytes) -> StreamRejection:
    """Decode a rejected-topic message, with short (``o``/``m``/``c``) or long key names, or both."""
    what = "rejection"
    fields = _load(encoding, payload, what)
    service_code = _optional_text(fields, "o", "code")
    if service_code is None:
        raise StreamMessageError(f"{what} has no error code")
    message = _optional_text(fields, "m", "message") or ""
    return StreamRejection(service_code, message, _optional_text(fields, "c", "clientToken"))


def decode_description(encoding: Encoding, payload: bytes) -> StreamDescription:
    """Decode a DescribeStream answer: ``s`` (version), ``d`` (description), ``r`` (files: ``f``, ``z``)."""
    what = "stream description"
    fields = _load(encoding, payload, what)
    version = _int_field(fields, "s", what, low=0, high=_MAX_STREAM_VERSION) if "s" in fields else None
    description = _optional_text(fields, "d") or ""
    files = fields.get("r", [])
    if not isinstance(files, list):
        raise StreamMessageError(f"{what} key 'r' is not a list")
    sizes: dict[int, int] = {}
    for entry in files:
        if not isinstance(entry, Mapping):
            raise StreamMessageError(f"{what} file entry is not a map")
        file_id = _int_field(entry, "f", what, low=0, high=_MAX_FILE_ID)
        sizes[file_id] = _int_field(entry, "z", what, low=0, high=2**53)
    return StreamDescription(version, description, sizes, _optional_text(fields, "c", "clientToken"))

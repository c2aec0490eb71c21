"""Typed errors of the download phase.

Every failure a downloader can meet has its own stable ``code`` and says whether trying again can help
(``retryable``). The 13 error codes of the AWS IoT MQTT stream service each map to their own class, so a
caller can tell a bad request of ours (never retryable) from a passing service problem (retryable).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ota_core.errors import ConfigurationError, DownloadError

__all__ = [
    "BlockInvalidError",
    "BodyTooLargeError",
    "DownloadStalledError",
    "HttpStatusError",
    "InsecureUrlError",
    "LowSpeedError",
    "RetryBudgetExhaustedError",
    "SinkBoundsError",
    "SourceChangedError",
    "StreamBitmapLimitError",
    "StreamBlockCountLimitError",
    "StreamBlockSizeError",
    "StreamEtagMismatchError",
    "StreamInternalError",
    "StreamInvalidCborError",
    "StreamInvalidJsonError",
    "StreamInvalidRequestError",
    "StreamInvalidTopicError",
    "StreamMessageError",
    "StreamOffsetError",
    "StreamRejectedError",
    "StreamResourceNotFoundError",
    "StreamUnauthorizedError",
    "StreamVersionMismatchError",
    "UrlExpiredError",
    "rejection_error",
]


class StreamMessageError(DownloadError):
    """A message from the stream service could not be decoded (bad CBOR/JSON, missing or mistyped key)."""

    code = "DOWNLOAD_STREAM_MESSAGE_INVALID"
    retryable = True


class BlockInvalidError(DownloadError):
    """A decoded data block does not belong to the file being fetched (file id, block id or size)."""

    code = "DOWNLOAD_BLOCK_INVALID"
    retryable = True


class DownloadStalledError(DownloadError):
    """Too many requests in a row brought no new data; the download gives up."""

    code = "DOWNLOAD_STALLED"
    retryable = True


class StreamRejectedError(DownloadError):
    """The stream service rejected a request; ``service_code`` is the code it sent.

    Subclasses exist for every documented code; this base class is used for unknown codes.
    """

    code = "DOWNLOAD_STREAM_REJECTED"
    retryable = False

    def __init__(
        self,
        message: str,
        *,
        service_code: str = "",
        details: Mapping[str, Any] | None = None,
    ) -> None:
        merged = dict(details or {})
        merged.setdefault("service_code", service_code)
        super().__init__(message, details=merged)
        self.service_code = service_code


class StreamInvalidTopicError(StreamRejectedError):
    """``InvalidTopic``: the request topic maps to no stream API (our topic is wrong)."""

    code = "DOWNLOAD_STREAM_INVALID_TOPIC"


class StreamInvalidJsonError(StreamRejectedError):
    """``InvalidJson``: the service could not parse our JSON request."""

    code = "DOWNLOAD_STREAM_INVALID_JSON"


class StreamInvalidCborError(StreamRejectedError):
    """``InvalidCbor``: the service could not parse our CBOR request."""

    code = "DOWNLOAD_STREAM_INVALID_CBOR"


class StreamInvalidRequestError(StreamRejectedError):
    """``InvalidRequest``: the request is well formed but asks for something impossible (out of range)."""

    code = "DOWNLOAD_STREAM_INVALID_REQUEST"


class StreamUnauthorizedError(StreamRejectedError):
    """``Unauthorized``: the device's policy does not allow reading this stream."""

    code = "DOWNLOAD_STREAM_UNAUTHORIZED"


class StreamBlockSizeError(StreamRejectedError):
    """``BlockSizeOutOfBounds``: the block size is outside 256..131072."""

    code = "DOWNLOAD_STREAM_BLOCK_SIZE_OUT_OF_BOUNDS"


class StreamOffsetError(StreamRejectedError):
    """``OffsetOutOfBounds``: the block offset is outside what the service accepts."""

    code = "DOWNLOAD_STREAM_OFFSET_OUT_OF_BOUNDS"


class StreamBlockCountLimitError(StreamRejectedError):
    """``BlockCountLimitExceeded``: too many blocks asked for in one request."""

    code = "DOWNLOAD_STREAM_BLOCK_COUNT_LIMIT"


class StreamBitmapLimitError(StreamRejectedError):
    """``BlockBitmapLimitExceeded``: the request bitmap is too large."""

    code = "DOWNLOAD_STREAM_BITMAP_LIMIT"


class StreamResourceNotFoundError(StreamRejectedError):
    """``ResourceNotFound``: the stream or the file in it does not exist."""

    code = "DOWNLOAD_STREAM_NOT_FOUND"


class StreamVersionMismatchError(StreamRejectedError):
    """``VersionMismatch``: the stream changed since the download began; start again from zero."""

    code = "DOWNLOAD_STREAM_VERSION_MISMATCH"
    retryable = True


class StreamEtagMismatchError(StreamRejectedError):
    """``ETagMismatch``: the file behind the stream changed; start again from zero."""

    code = "DOWNLOAD_STREAM_ETAG_MISMATCH"
    retryable = True


class StreamInternalError(StreamRejectedError):
    """``InternalError``: a passing service failure; the same request may succeed later."""

    code = "DOWNLOAD_STREAM_INTERNAL_ERROR"
    retryable = True


_REJECTION_CLASSES: dict[str, type[StreamRejectedError]] = {
    "InvalidTopic": StreamInvalidTopicError,
    "InvalidJson": StreamInvalidJsonError,
    "InvalidCbor": StreamInvalidCborError,
    "InvalidRequest": StreamInvalidRequestError,
    "Unauthorized": StreamUnauthorizedError,
    "BlockSizeOutOfBounds": StreamBlockSizeError,
    "OffsetOutOfBounds": StreamOffsetError,
    "BlockCountLimitExceeded": StreamBlockCountLimitError,
    "BlockBitmapLimitExceeded": StreamBitmapLimitError,
    "ResourceNotFound": StreamResourceNotFoundError,
    "VersionMismatch": StreamVersionMismatchError,
    "ETagMismatch": StreamEtagMismatchError,
    "InternalError": StreamInternalError,
}


def rejection_error(service_code: str, message: str = "", client_token: str | None = None) -> StreamRejectedError:
    """Build the typed error for a rejected-topic message with the service's ``service_code``."""
    cls = _REJECTION_CLASSES.get(service_code, StreamRejectedError)
    text = f"stream service rejected the request: {service_code or 'unknown code'}"
    if message:
        text = f"{text} ({message[:200]})"
    details: dict[str, Any] = {}
    if client_token is not None:
        details["client_token"] = client_token
    return cls(text, service_code=service_code, details=details)


class SinkBoundsError(DownloadError):
    """A write would land outside the file; the sink refuses it and nothing is written."""

    code = "DOWNLOAD_WRITE_OUT_OF_BOUNDS"
    retryable = False


class HttpStatusError(DownloadError):
    """The HTTP server answered with a status the downloader cannot use."""

    code = "DOWNLOAD_HTTP_STATUS"
    retryable = False

    def __init__(self, message: str, *, status: int, details: Mapping[str, Any] | None = None) -> None:
        merged = dict(details or {})
        merged["status"] = status
        super().__init__(message, details=merged)
        self.status = status


class UrlExpiredError(DownloadError):
    """The URL was refused (401/403, expired presigned URL) and no fresh URL could be obtained."""

    code = "DOWNLOAD_URL_EXPIRED"
    retryable = True


class BodyTooLargeError(DownloadError):
    """The server sent more bytes than the file's declared size; the excess was cut off, not written."""

    code = "DOWNLOAD_BODY_TOO_LARGE"
    retryable = False


class LowSpeedError(DownloadError):
    """The transfer stayed below the configured minimum speed for too long (slow-retrieval defence)."""

    code = "DOWNLOAD_TOO_SLOW"
    retryable = True


class SourceChangedError(DownloadError):
    """The file changed on the server (ETag or stream version); the saved progress was discarded."""

    code = "DOWNLOAD_SOURCE_CHANGED"
    retryable = True


class RetryBudgetExhaustedError(DownloadError):
    """Every allowed attempt failed; ``details['last_error']`` names the last failure."""

    code = "DOWNLOAD_RETRIES_EXHAUSTED"
    retryable = True


class InsecureUrlError(ConfigurationError, DownloadError):
    """The URL's scheme is not https (plain http must be allowed explicitly)."""

    code = "DOWNLOAD_URL_INSECURE"
    retryable = False

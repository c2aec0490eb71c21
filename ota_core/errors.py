"""The project's error hierarchy: one base class, one branch per update phase.

Every error carries a stable machine-readable ``code`` (it ends up in status reports sent to the
cloud, so it never changes once released) and says whether retrying the same operation can help.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = [
    "BrokerRefusedError",
    "ConfigurationError",
    "ConnectionLostError",
    "DownloadError",
    "InstallError",
    "InvalidBrokerUrlError",
    "InvalidTopicError",
    "JobDocumentError",
    "NotConnectedError",
    "OtaError",
    "PolicyError",
    "PublishTimeoutError",
    "RequestTimeoutError",
    "StateCorruptedError",
    "StateStoreError",
    "TlsConfigurationError",
    "TransportError",
    "VerificationError",
]


class OtaError(Exception):
    """Base of every error raised by modular-ota.

    ``code`` is stable and machine-readable; ``retryable`` tells a caller whether the same operation may
    succeed later; ``details`` holds extra facts (never secrets) for logs and status reports.
    """

    code: ClassVar[str] = "OTA_ERROR"
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"

    def as_report(self) -> dict[str, str]:
        """Return the error as a flat string mapping, fit for a cloud status report."""
        return {"code": self.code, "reason": self.message[:1024]}


class ConfigurationError(OtaError):
    """A setting given to the library is invalid (bad value, missing file, contradictory options)."""

    code = "CONFIGURATION_INVALID"


# --- transport -----------------------------------------------------------------------------------


class TransportError(OtaError):
    """Talking to the broker or a server failed."""

    code = "TRANSPORT_FAILED"
    retryable = True


class InvalidBrokerUrlError(TransportError, ConfigurationError):
    """A broker URL that cannot be used (unknown scheme, no host, bad port)."""

    code = "TRANSPORT_BROKER_URL_INVALID"
    retryable = False


class TlsConfigurationError(TransportError, ConfigurationError):
    """A CA file, client certificate or key that cannot be read or does not fit together."""

    code = "TRANSPORT_TLS_CONFIGURATION_INVALID"
    retryable = False


class InvalidTopicError(TransportError, ConfigurationError):
    """A topic name or topic filter that is not valid MQTT."""

    code = "TRANSPORT_TOPIC_INVALID"
    retryable = False


class BrokerRefusedError(TransportError):
    """The broker refused the connection (CONNACK failure, TLS handshake failure, connection refused)."""

    code = "TRANSPORT_BROKER_REFUSED"


class NotConnectedError(TransportError):
    """An operation needed a live connection and there was none within the allowed time."""

    code = "TRANSPORT_NOT_CONNECTED"


class ConnectionLostError(TransportError):
    """The connection dropped while an operation was waiting for the broker."""

    code = "TRANSPORT_CONNECTION_LOST"


class PublishTimeoutError(TransportError):
    """A QoS 1 publish was not acknowledged by the broker in time; the message may not have arrived."""

    code = "TRANSPORT_PUBLISH_TIMEOUT"


class RequestTimeoutError(TransportError):
    """A request published over MQTT got no correlated reply in time."""

    code = "TRANSPORT_REQUEST_TIMEOUT"


# --- phases --------------------------------------------------------------------------------------


class JobDocumentError(OtaError):
    """A job document (or twin property set) that belongs to a parser but is invalid."""

    code = "JOB_DOCUMENT_INVALID"


class DownloadError(OtaError):
    """Fetching an update file failed."""

    code = "DOWNLOAD_FAILED"
    retryable = True


class VerificationError(OtaError):
    """An image, signature, certificate or manifest failed verification. Never retryable as is."""

    code = "VERIFICATION_FAILED"


class InstallError(OtaError):
    """Writing, activating, confirming or reverting a slot failed."""

    code = "INSTALL_FAILED"


class PolicyError(OtaError):
    """The update-control policy refuses the update (disabled, deferred, outside the window, downgrade)."""

    code = "POLICY_REFUSED"


# --- persistence ---------------------------------------------------------------------------------


class StateStoreError(OtaError):
    """The crash-safe state store could not read or write a document."""

    code = "STATE_STORE_FAILED"


class StateCorruptedError(StateStoreError):
    """Both the current and the previous copy of a stored document are unreadable."""

    code = "STATE_CORRUPTED"

"""Typed errors of the Azure IoT Hub and Device Update device side.

Each error has its own stable ``code`` so that status reports and logs can tell them apart.
"""

from __future__ import annotations

from ota_core.errors import ConfigurationError, JobDocumentError, TransportError

__all__ = [
    "AduDocumentError",
    "AduManifestError",
    "AzureConfigurationError",
    "MxchipDocumentError",
    "TwinDocumentError",
    "TwinRequestError",
]


class AzureConfigurationError(ConfigurationError):
    """An IoT Hub connection setting (connection string, key, certificate, model id) is invalid."""

    code = "AZURE_CONFIGURATION_INVALID"


class TwinDocumentError(JobDocumentError):
    """A twin message (topic or JSON body) that breaks the IoT Hub twin protocol or its limits."""

    code = "AZURE_TWIN_INVALID"


class TwinRequestError(TransportError):
    """The hub answered a twin request with an error status, or retries for 429/5xx ran out."""

    code = "AZURE_TWIN_REQUEST_FAILED"

    def __init__(self, message: str, *, status: int, retryable: bool = False) -> None:
        super().__init__(message, details={"status": status})
        self.status = status
        self._retryable = retryable

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        """True when the failure was a throttle or server error (429/5xx) and may pass later."""
        return self._retryable


class MxchipDocumentError(JobDocumentError):
    """A desired ``firmware`` property (MXChip DevKit schema) that cannot be used."""

    code = "AZURE_MXCHIP_INVALID"


class AduDocumentError(JobDocumentError):
    """A ``deviceUpdate`` component property (service request, workflow) that cannot be used."""

    code = "AZURE_ADU_INVALID"


class AduManifestError(AduDocumentError):
    """A Device Update update manifest (v4/v5) that is malformed or inconsistent with the request."""

    code = "AZURE_ADU_MANIFEST_INVALID"

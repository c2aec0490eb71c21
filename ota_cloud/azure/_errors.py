"""Typed errors of the Azure stand-in."""

from __future__ import annotations

from ota_core.errors import ConfigurationError, OtaError, RequestTimeoutError

__all__ = ["DeviceNotFoundError", "MethodTimeoutError", "StandInError", "StandInRequestError"]


class StandInError(OtaError):
    """Base of the Azure stand-in's errors."""

    code = "AZURE_STANDIN_FAILED"


class StandInRequestError(StandInError, ConfigurationError):
    """An operator request the stand-in cannot carry out (bad manifest, unknown update, bad input)."""

    code = "AZURE_STANDIN_REQUEST_INVALID"


class DeviceNotFoundError(StandInRequestError):
    """The device is not registered with the stand-in hub."""

    code = "AZURE_STANDIN_DEVICE_NOT_FOUND"


class MethodTimeoutError(RequestTimeoutError):
    """A direct method got no answer from the device in time (the hub answers 504)."""

    code = "AZURE_STANDIN_METHOD_TIMEOUT"

"""Errors of the AWS stand-in's control plane, shaped like AWS's REST-JSON error responses."""

from __future__ import annotations

from ota_core.errors import OtaError

__all__ = ["ServiceError"]


class ServiceError(OtaError):
    """An AWS service error: ``error_type`` (e.g. ``ResourceNotFoundException``) and an HTTP status.

    The control plane turns it into the status code, the ``x-amzn-ErrorType`` header and a
    ``{"message": ...}`` body, which is what botocore reads to raise its ``ClientError``.
    """

    code = "CLOUD_AWS_SERVICE_ERROR"

    def __init__(self, error_type: str, message: str, *, status: int = 400) -> None:
        super().__init__(message, details={"error_type": error_type, "status": status})
        self.error_type = error_type
        self.status = status

    @classmethod
    def not_found(cls, message: str) -> ServiceError:
        """A 404 ``ResourceNotFoundException``."""
        return cls("ResourceNotFoundException", message, status=404)

    @classmethod
    def invalid(cls, message: str) -> ServiceError:
        """A 400 ``InvalidRequestException``."""
        return cls("InvalidRequestException", message, status=400)

    @classmethod
    def exists(cls, message: str) -> ServiceError:
        """A 409 ``ResourceAlreadyExistsException``."""
        return cls("ResourceAlreadyExistsException", message, status=409)

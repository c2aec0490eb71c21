"""Typed errors of the AWS IoT Jobs protocol: bad identifiers, malformed messages, rejected requests.

Every one of the nine error codes that AWS IoT Jobs puts on a ``.../rejected`` topic has its own class
with its own stable ``code``, so that a caller can react to ``VersionMismatch`` differently from
``RequestThrottled`` without string comparisons.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from ota_core.errors import ConfigurationError, OtaError

__all__ = [
    "InvalidJobIdError",
    "InvalidStatusDetailsError",
    "InvalidThingNameError",
    "JobsInternalError",
    "JobsInvalidJsonError",
    "JobsInvalidRequestError",
    "JobsInvalidStateTransitionError",
    "JobsInvalidTopicError",
    "JobsMessageError",
    "JobsRejectedError",
    "JobsRequestError",
    "JobsRequestThrottledError",
    "JobsResourceNotFoundError",
    "JobsTerminalStateReachedError",
    "JobsVersionMismatchError",
    "rejected_error_class",
]


class InvalidThingNameError(ConfigurationError):
    """A thing name outside 1..128 characters of ``[A-Za-z0-9:_-]``."""

    code = "JOBS_THING_NAME_INVALID"


class InvalidJobIdError(ConfigurationError):
    """A job id outside 1..64 characters of ``[A-Za-z0-9_-]`` (``$next`` only where AWS allows it)."""

    code = "JOBS_JOB_ID_INVALID"


class JobsRequestError(ConfigurationError):
    """A request the device was about to send is invalid (bad field value); nothing was sent."""

    code = "JOBS_REQUEST_INVALID"


class InvalidStatusDetailsError(JobsRequestError):
    """statusDetails that AWS would refuse: not string to string, bad key, value too long or empty."""

    code = "JOBS_STATUS_DETAILS_INVALID"


class JobsMessageError(OtaError):
    """An incoming Jobs message that is not what the protocol says (bad JSON, wrong types, wrong thing)."""

    code = "JOBS_MESSAGE_INVALID"


class JobsRejectedError(OtaError):
    """AWS IoT Jobs rejected a request; ``rejection_code`` is the service's code as sent.

    ``execution_state`` carries the execution's current ``status``, ``statusDetails`` and
    ``versionNumber`` when the service includes them (InvalidStateTransition and VersionMismatch), so a
    caller can resynchronise.
    """

    code = "JOBS_REJECTED"
    rejection_code: ClassVar[str] = ""

    def __init__(
        self,
        message: str,
        *,
        rejection_code: str | None = None,
        client_token: str | None = None,
        execution_state: Any = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message, details=details)
        self.service_code = rejection_code or self.rejection_code
        self.client_token = client_token
        self.execution_state = execution_state


class JobsInvalidTopicError(JobsRejectedError):
    """The request went to a topic in the jobs namespace that maps to no API."""

    code = "JOBS_REJECTED_INVALID_TOPIC"
    rejection_code = "InvalidTopic"


class JobsInvalidJsonError(JobsRejectedError):
    """The service could not read the request as UTF-8 JSON."""

    code = "JOBS_REJECTED_INVALID_JSON"
    rejection_code = "InvalidJson"


class JobsInvalidRequestError(JobsRejectedError):
    """The request was well-formed JSON but invalid (for example bad statusDetails)."""

    code = "JOBS_REJECTED_INVALID_REQUEST"
    rejection_code = "InvalidRequest"


class JobsInvalidStateTransitionError(JobsRejectedError):
    """The requested status change is not allowed from the execution's current status."""

    code = "JOBS_REJECTED_INVALID_STATE_TRANSITION"
    rejection_code = "InvalidStateTransition"


class JobsResourceNotFoundError(JobsRejectedError):
    """The job execution named in the topic does not exist."""

    code = "JOBS_REJECTED_RESOURCE_NOT_FOUND"
    rejection_code = "ResourceNotFound"


class JobsVersionMismatchError(JobsRejectedError):
    """``expectedVersion`` did not match the stored version; ``execution_state`` has the current one."""

    code = "JOBS_REJECTED_VERSION_MISMATCH"
    rejection_code = "VersionMismatch"


class JobsInternalError(JobsRejectedError):
    """The service failed internally; retrying later may help."""

    code = "JOBS_REJECTED_INTERNAL_ERROR"
    rejection_code = "InternalError"
    retryable = True


class JobsRequestThrottledError(JobsRejectedError):
    """The service throttled the request; retry after a pause."""

    code = "JOBS_REJECTED_THROTTLED"
    rejection_code = "RequestThrottled"
    retryable = True


class JobsTerminalStateReachedError(JobsRejectedError):
    """The job execution is already in a terminal state."""

    code = "JOBS_REJECTED_TERMINAL_STATE"
    rejection_code = "TerminalStateReached"


_BY_CODE: dict[str, type[JobsRejectedError]] = {
    cls.rejection_code: cls
    for cls in (
        JobsInvalidTopicError,
        JobsInvalidJsonError,
        JobsInvalidRequestError,
        JobsInvalidStateTransitionError,
        JobsResourceNotFoundError,
        JobsVersionMismatchError,
        JobsInternalError,
        JobsRequestThrottledError,
        JobsTerminalStateReachedError,
    )
}


def rejected_error_class(service_code: str) -> type[JobsRejectedError]:
    """The error class for a rejected code; unknown codes map to the generic ``JobsRejectedError``."""
    return _BY_CODE.get(service_code, JobsRejectedError)

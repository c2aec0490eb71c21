"""Encoders of the four Jobs request payloads: get pending, start next, describe, update.

Each encoder validates its inputs first (statusDetails, step timeout, client token, expected version)
and returns compact UTF-8 JSON bytes; invalid input raises a ``JobsRequestError`` subclass and nothing is
produced. ``expectedVersion`` is an integer and is omitted unless the caller asks for it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ota_core.models import JobStatus
from ota_jobs.aws._errors import JobsRequestError
from ota_jobs.aws._identifiers import validate_client_token, validate_status_details, validate_step_timeout

__all__ = [
    "DEVICE_SETTABLE_STATUSES",
    "encode_describe",
    "encode_get_pending",
    "encode_start_next",
    "encode_update",
]

DEVICE_SETTABLE_STATUSES = frozenset({JobStatus.IN_PROGRESS, JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.REJECTED})


def _dump(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _non_negative_long(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise JobsRequestError(f"{name} is a non-negative 64-bit integer", details={name: repr(value)[:50]})
    return value


def _with_token(body: dict[str, Any], client_token: str | None) -> dict[str, Any]:
    if client_token is not None:
        body["clientToken"] = validate_client_token(client_token)
    return body


def encode_get_pending(client_token: str | None = None) -> bytes:
    """The GetPendingJobExecutions payload: ``{"clientToken": ...}`` or ``{}``."""
    return _dump(_with_token({}, client_token))


def encode_start_next(
    client_token: str | None = None,
    *,
    status_details: Mapping[str, str] | None = None,
    step_timeout_in_minutes: int | None = None,
) -> bytes:
    """The StartNextPendingJobExecution payload."""
    body: dict[str, Any] = {}
    if status_details is not None:
        body["statusDetails"] = validate_status_details(status_details)
    if step_timeout_in_minutes is not None:
        body["stepTimeoutInMinutes"] = validate_step_timeout(step_timeout_in_minutes)
    return _dump(_with_token(body, client_token))


def encode_describe(
    client_token: str | None = None,
    *,
    execution_number: int | None = None,
    include_job_document: bool = True,
) -> bytes:
    """The DescribeJobExecution payload (``includeJobDocument`` defaults to true, as the service's)."""
    body: dict[str, Any] = {}
    if execution_number is not None:
        body["executionNumber"] = _non_negative_long("executionNumber", execution_number)
    body["includeJobDocument"] = bool(include_job_document)
    return _dump(_with_token(body, client_token))


def encode_update(
    status: JobStatus | str,
    client_token: str | None = None,
    *,
    status_details: Mapping[str, str] | None = None,
    expected_version: int | None = None,
    execution_number: int | None = None,
    step_timeout_in_minutes: int | None = None,
    include_job_execution_state: bool = False,
    include_job_document: bool = False,
) -> bytes:
    """The UpdateJobExecution payload.

    ``status`` must be one a device may set (IN_PROGRESS, SUCCEEDED, FAILED, REJECTED).
    ``expected_version`` is sent only when given, as an integer (the optimistic lock is off by default).
    """
    try:
        parsed = JobStatus(status)
    except ValueError:
        raise JobsRequestError("unknown job status", details={"status": repr(status)[:50]}) from None
    if parsed not in DEVICE_SETTABLE_STATUSES:
        raise JobsRequestError(
            "a device may only set IN_PROGRESS, SUCCEEDED, FAILED or REJECTED",
            details={"status": parsed.value},
        )
    body: dict[str, Any] = {"status": parsed.value}
    if status_details is not None:
        body["statusDetails"] = validate_status_details(status_details)
    if expected_version is not None:
        body["expectedVersion"] = _non_negative_long("expectedVersion", expected_version)
    if execution_number is not None:
        body["executionNumber"] = _non_negative_long("executionNumber", execution_number)
    if step_timeout_in_minutes is not None:
        body["stepTimeoutInMinutes"] = validate_step_timeout(step_timeout_in_minutes)
    if include_job_execution_state:
        body["includeJobExecutionState"] = True
    if include_job_document:
        body["includeJobDocument"] = True
    return _dump(_with_token(body, client_token))

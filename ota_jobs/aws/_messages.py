"""Decoders of everything AWS IoT Jobs sends a device: accepted replies, events and rejections.

Decoders take the raw payload bytes and return frozen models, or raise ``JobsMessageError`` for a payload
that is not what the protocol says (never a raw ``ValueError``/``KeyError``). Unknown fields are ignored,
as newer service versions add fields. Timestamps are epoch seconds on the wire; values that can only be
milliseconds (beyond the year 5000 as seconds) are read as milliseconds.
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Mapping
from typing import Any

import attrs

from ota_core.models import JobStatus
from ota_jobs.aws._errors import JobsMessageError, JobsRejectedError, rejected_error_class

__all__ = [
    "MAX_MESSAGE_BYTES",
    "ExecutionReply",
    "JobExecution",
    "JobExecutionState",
    "JobExecutionSummary",
    "JobExecutionsChanged",
    "NextJobExecutionChanged",
    "PendingJobsReply",
    "UpdateReply",
    "decode_execution_reply",
    "decode_notify",
    "decode_notify_next",
    "decode_pending_reply",
    "decode_rejected",
    "decode_update_reply",
    "parse_timestamp",
]

MAX_MESSAGE_BYTES = 128 * 1024
_MILLISECONDS_THRESHOLD = 100_000_000_000  # seconds after the year 5138: surely milliseconds
_MAX_EPOCH_MS = 253_402_300_799_000  # 9999-12-31


# --- models --------------------------------------------------------------------------------------


@attrs.frozen
class JobExecutionSummary:
    """One entry of a pending list: which job, when, and at which version."""

    job_id: str
    queued_at: datetime.datetime | None = None
    started_at: datetime.datetime | None = None
    last_updated_at: datetime.datetime | None = None
    version_number: int | None = None
    execution_number: int | None = None


@attrs.frozen
class JobExecutionState:
    """The part of an execution an update reply or a rejection carries."""

    status: JobStatus | None
    status_details: Mapping[str, str] = attrs.field(factory=dict)
    version_number: int | None = None


@attrs.frozen
class JobExecution:
    """A job execution as the device sees it, with its job document (a JSON object over MQTT)."""

    job_id: str
    status: JobStatus
    job_document: Mapping[str, Any] | None = None
    thing_name: str | None = None
    status_details: Mapping[str, str] = attrs.field(factory=dict)
    queued_at: datetime.datetime | None = None
    started_at: datetime.datetime | None = None
    last_updated_at: datetime.datetime | None = None
    version_number: int | None = None
    execution_number: int | None = None
    approximate_seconds_before_timed_out: int | None = None


@attrs.frozen
class PendingJobsReply:
    """The accepted reply of GetPendingJobExecutions."""

    in_progress: tuple[JobExecutionSummary, ...]
    queued: tuple[JobExecutionSummary, ...]
    timestamp: datetime.datetime | None = None
    client_token: str | None = None


@attrs.frozen
class ExecutionReply:
    """The accepted reply of StartNext or Describe; ``execution`` is ``None`` when nothing is pending."""

    execution: JobExecution | None
    timestamp: datetime.datetime | None = None
    client_token: str | None = None


@attrs.frozen
class UpdateReply:
    """The accepted reply of UpdateJobExecution."""

    execution_state: JobExecutionState | None = None
    job_document: Mapping[str, Any] | None = None
    timestamp: datetime.datetime | None = None
    client_token: str | None = None


@attrs.frozen
class JobExecutionsChanged:
    """A ``notify`` event: the pending executions of the thing, by status."""

    jobs: Mapping[JobStatus, tuple[JobExecutionSummary, ...]]
    timestamp: datetime.datetime | None = None


@attrs.frozen
class NextJobExecutionChanged:
    """A ``notify-next`` event; ``execution`` is ``None`` when nothing is pending any more."""

    execution: JobExecution | None
    timestamp: datetime.datetime | None = None


# --- field readers -------------------------------------------------------------------------------


def _fail(message: str, **details: Any) -> JobsMessageError:
    return JobsMessageError(message, details=details)


def _load(payload: bytes) -> dict[str, Any]:
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise _fail("a Jobs payload must be bytes")
    if len(payload) > MAX_MESSAGE_BYTES:
        raise _fail("a Jobs payload is larger than 128 KB", size=len(payload))
    try:
        body = json.loads(bytes(payload).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise _fail("a Jobs payload is not UTF-8 JSON", error=str(exc)[:200]) from None
    if not isinstance(body, dict):
        raise _fail("a Jobs payload must be a JSON object", type=type(body).__name__)
    return body


def parse_timestamp(value: object) -> datetime.datetime | None:
    """An aware UTC datetime from epoch seconds (or milliseconds); ``None`` for a missing value."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail("a timestamp must be a number", value=repr(value)[:50])
    if math.isnan(value) or value < 0:
        raise _fail("a timestamp must be a non-negative number", value=repr(value)[:50])
    seconds = value / 1000 if value >= _MILLISECONDS_THRESHOLD else value
    if seconds * 1000 > _MAX_EPOCH_MS:
        raise _fail("a timestamp is out of range", value=repr(value)[:50])
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)


def _opt_str(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _fail(f"{key} must be a string", field=key)
    return value


def _req_str(body: Mapping[str, Any], key: str) -> str:
    value = _opt_str(body, key)
    if value is None:
        raise _fail(f"{key} is missing", field=key)
    return value


def _opt_int(body: Mapping[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(f"{key} must be an integer", field=key)
    return value


def _status(value: object, *, required: bool = True) -> JobStatus | None:
    if value is None and not required:
        return None
    try:
        return JobStatus(value)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        raise _fail("unknown job execution status", status=repr(value)[:50]) from None


def _status_details(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise _fail("statusDetails must be a map of strings to strings")
    return dict(value)


def _document(value: object) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, str):  # the HTTP data plane returns it as a string; tolerate it
        try:
            value = json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            raise _fail("jobDocument is a string that is not JSON") from None
    if not isinstance(value, dict):
        raise _fail("jobDocument must be a JSON object")
    return value


def _object(body: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _fail(f"{key} must be a JSON object", field=key)
    return value


def _summary(value: object) -> JobExecutionSummary:
    if not isinstance(value, dict):
        raise _fail("a job execution summary must be a JSON object")
    return JobExecutionSummary(
        job_id=_req_str(value, "jobId"),
        queued_at=parse_timestamp(value.get("queuedAt")),
        started_at=parse_timestamp(value.get("startedAt")),
        last_updated_at=parse_timestamp(value.get("lastUpdatedAt")),
        version_number=_opt_int(value, "versionNumber"),
        execution_number=_opt_int(value, "executionNumber"),
    )


def _summaries(value: object, key: str) -> tuple[JobExecutionSummary, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _fail(f"{key} must be a list", field=key)
    return tuple(_summary(item) for item in value)


def _execution(value: dict[str, Any]) -> JobExecution:
    status = _status(value.get("status"))
    assert status is not None
    return JobExecution(
        job_id=_req_str(value, "jobId"),
        status=status,
        job_document=_document(value.get("jobDocument")),
        thing_name=_opt_str(value, "thingName"),
        status_details=_status_details(value.get("statusDetails")),
        queued_at=parse_timestamp(value.get("queuedAt")),
        started_at=parse_timestamp(value.get("startedAt")),
        last_updated_at=parse_timestamp(value.get("lastUpdatedAt")),
        version_number=_opt_int(value, "versionNumber"),
        execution_number=_opt_int(value, "executionNumber"),
        approximate_seconds_before_timed_out=_opt_int(value, "approximateSecondsBeforeTimedOut"),
    )


def _execution_state(value: dict[str, Any] | None) -> JobExecutionState | None:
    if value is None:
        return None
    return JobExecutionState(
        status=_status(value.get("status"), required=False),
        status_details=_status_details(value.get("statusDetails")),
        version_number=_opt_int(value, "versionNumber"),
    )


# --- decoders ------------------------------------------------------------------------------------


def decode_pending_reply(payload: bytes) -> PendingJobsReply:
    """Decode a ``get/accepted`` payload."""
    body = _load(payload)
    return PendingJobsReply(
        in_progress=_summaries(body.get("inProgressJobs"), "inProgressJobs"),
        queued=_summaries(body.get("queuedJobs"), "queuedJobs"),
        timestamp=parse_timestamp(body.get("timestamp")),
        client_token=_opt_str(body, "clientToken"),
    )


def decode_execution_reply(payload: bytes) -> ExecutionReply:
    """Decode a ``start-next/accepted`` or ``{jobId}/get/accepted`` payload (no execution = nothing)."""
    body = _load(payload)
    execution = _object(body, "execution")
    return ExecutionReply(
        execution=_execution(execution) if execution is not None else None,
        timestamp=parse_timestamp(body.get("timestamp")),
        client_token=_opt_str(body, "clientToken"),
    )


def decode_update_reply(payload: bytes) -> UpdateReply:
    """Decode a ``{jobId}/update/accepted`` payload."""
    body = _load(payload)
    return UpdateReply(
        execution_state=_execution_state(_object(body, "executionState")),
        job_document=_document(body.get("jobDocument")),
        timestamp=parse_timestamp(body.get("timestamp")),
        client_token=_opt_str(body, "clientToken"),
    )


def decode_notify(payload: bytes) -> JobExecutionsChanged:
    """Decode a ``notify`` payload: ``{"jobs": {"QUEUED": [...], "IN_PROGRESS": [...]}}``."""
    body = _load(payload)
    jobs = _object(body, "jobs") or {}
    result: dict[JobStatus, tuple[JobExecutionSummary, ...]] = {}
    for status_name, items in jobs.items():
        status = _status(status_name)
        assert status is not None
        result[status] = _summaries(items, status_name)
    return JobExecutionsChanged(jobs=result, timestamp=parse_timestamp(body.get("timestamp")))


def decode_notify_next(payload: bytes) -> NextJobExecutionChanged:
    """Decode a ``notify-next`` payload; a missing ``execution`` means nothing is pending."""
    body = _load(payload)
    execution = _object(body, "execution")
    return NextJobExecutionChanged(
        execution=_execution(execution) if execution is not None else None,
        timestamp=parse_timestamp(body.get("timestamp")),
    )


def decode_rejected(payload: bytes) -> JobsRejectedError:
    """Decode a ``.../rejected`` payload into the matching typed error (returned, not raised)."""
    body = _load(payload)
    code = _req_str(body, "code")
    message = _opt_str(body, "message") or code
    state = _execution_state(_object(body, "executionState"))
    cls = rejected_error_class(code)
    return cls(
        f"AWS IoT Jobs rejected the request: {code}: {message}"[:2000],
        rejection_code=code,
        client_token=_opt_str(body, "clientToken"),
        execution_state=state,
        details={"service_code": code, "service_message": message[:1024]},
    )

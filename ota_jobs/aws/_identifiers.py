"""Validation of the identifiers and maps AWS IoT Jobs constrains: thing names, job ids, statusDetails.

The limits are those of the service model: thing names 1..128 of ``[A-Za-z0-9:_-]``, job ids 1..64 of
``[A-Za-z0-9_-]`` (``$next`` only as the id of a describe request), statusDetails keys 1..128 of
``[A-Za-z0-9:_-]`` and values of 1..1024 characters without control characters.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from ota_jobs.aws._errors import (
    InvalidJobIdError,
    InvalidStatusDetailsError,
    InvalidThingNameError,
    JobsRequestError,
)

__all__ = [
    "MAX_CLIENT_TOKEN_LENGTH",
    "MAX_STATUS_DETAIL_VALUE_LENGTH",
    "MAX_STEP_TIMEOUT_MINUTES",
    "NEXT_JOB_ID",
    "validate_client_token",
    "validate_job_id",
    "validate_status_details",
    "validate_step_timeout",
    "validate_thing_name",
]

NEXT_JOB_ID = "$next"
MAX_STATUS_DETAIL_VALUE_LENGTH = 1024
MAX_STEP_TIMEOUT_MINUTES = 10080
MAX_CLIENT_TOKEN_LENGTH = 64

_THING_NAME = re.compile(r"[A-Za-z0-9:_-]{1,128}")
_JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_DETAILS_KEY = re.compile(r"[A-Za-z0-9:_-]{1,128}")
_CLIENT_TOKEN = re.compile(r"[\x21-\x7e]{1,64}")


def validate_thing_name(name: object) -> str:
    """Return ``name`` if it is a valid thing name, else raise ``InvalidThingNameError``."""
    if not isinstance(name, str) or _THING_NAME.fullmatch(name) is None:
        raise InvalidThingNameError(
            "a thing name is 1..128 characters of A-Z a-z 0-9 : _ -", details={"thing_name": repr(name)[:200]}
        )
    return name


def validate_job_id(job_id: object, *, allow_next: bool = False) -> str:
    """Return ``job_id`` if valid; ``$next`` is accepted only with ``allow_next``."""
    if allow_next and job_id == NEXT_JOB_ID:
        return NEXT_JOB_ID
    if not isinstance(job_id, str) or _JOB_ID.fullmatch(job_id) is None:
        raise InvalidJobIdError(
            "a job id is 1..64 characters of A-Z a-z 0-9 _ -", details={"job_id": repr(job_id)[:200]}
        )
    return job_id


def _has_control_characters(value: str) -> bool:
    return any(unicodedata.category(ch).startswith("C") for ch in value)


def validate_status_details(details: Mapping[Any, Any]) -> dict[str, str]:
    """Return a plain ``dict[str, str]`` copy of ``details`` if AWS would accept it, else raise."""
    if not isinstance(details, Mapping):
        raise InvalidStatusDetailsError("statusDetails must be a mapping of strings to strings")
    result: dict[str, str] = {}
    for key, value in details.items():
        if not isinstance(key, str) or _DETAILS_KEY.fullmatch(key) is None:
            raise InvalidStatusDetailsError(
                "a statusDetails key is 1..128 characters of A-Z a-z 0-9 : _ -",
                details={"key": repr(key)[:200]},
            )
        if not isinstance(value, str):
            raise InvalidStatusDetailsError("statusDetails values must be strings", details={"key": key})
        if not value or len(value) > MAX_STATUS_DETAIL_VALUE_LENGTH:
            raise InvalidStatusDetailsError(
                f"a statusDetails value is 1..{MAX_STATUS_DETAIL_VALUE_LENGTH} characters",
                details={"key": key, "length": len(value)},
            )
        if _has_control_characters(value):
            raise InvalidStatusDetailsError(
                "statusDetails values must not hold control characters", details={"key": key}
            )
        result[key] = value
    return result


def validate_step_timeout(minutes: object) -> int:
    """Return ``minutes`` if it is an integer in 1..10080, else raise ``JobsRequestError``."""
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= MAX_STEP_TIMEOUT_MINUTES:
        raise JobsRequestError(
            f"stepTimeoutInMinutes is an integer in 1..{MAX_STEP_TIMEOUT_MINUTES}",
            details={"value": repr(minutes)[:50]},
        )
    return minutes


def validate_client_token(token: object) -> str:
    """Return ``token`` if it is 1..64 printable ASCII characters without spaces."""
    if not isinstance(token, str) or _CLIENT_TOKEN.fullmatch(token) is None:
        raise JobsRequestError(
            "a client token is 1..64 printable ASCII characters", details={"token": repr(token)[:100]}
        )
    return token

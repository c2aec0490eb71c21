"""What the engine puts in status reports, and the hook an orchestrator uses to change it.

The engine knows *when* to report (the report points below); the cloud protocol decides *what* the
status details say (FreeRTOS ``self_test``/``updatedBy`` strings, Azure twin states, ADU result codes).
An orchestrator passes its own formatter; the default one is protocol-neutral.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping

import attrs

from ota_core.errors import OtaError
from ota_core.models import UpdatePlan
from ota_core.versions import Version

__all__ = ["ReportContext", "ReportFormatter", "ReportPoint", "default_report_details"]


class ReportPoint(enum.StrEnum):
    """The moments at which the engine sends a status report.

    ``ACCEPTED``, ``PROGRESS``, ``VERIFYING``, ``READY`` and ``SELF_TEST`` are IN_PROGRESS reports sent once
    (best effort; a formatter may skip them by returning ``None``); ``SUCCEEDED``, ``FAILED`` and ``REJECTED``
    are final and retried until the job source acknowledges them.
    """

    ACCEPTED = "accepted"
    PROGRESS = "progress"
    VERIFYING = "verifying"
    READY = "ready"
    SELF_TEST = "self-test"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"


@attrs.frozen
class ReportContext:
    """Facts a formatter may use: the point, the plan, the error, bytes so far, the running version and the
    version that ran when the job arrived (``previous_version``, FreeRTOS' ``updatedBy``)."""

    point: ReportPoint
    job_id: str
    plan: UpdatePlan | None = None
    error: OtaError | None = None
    bytes_done: int = 0
    bytes_total: int = 0
    running_version: Version | None = None
    rolled_back: bool = False
    previous_version: Version | None = None


ReportFormatter = Callable[[ReportContext], Mapping[str, str] | None]
"""Turns a report context into the status details sent with the report.

Returning ``None`` skips an IN_PROGRESS report (a protocol that has no such step); for a final report it
means "no details".
"""


def default_report_details(context: ReportContext) -> dict[str, str] | None:
    """Protocol-neutral details: the point, progress as ``done/total``, the error code and reason.

    The ``VERIFYING`` point is skipped (the job sources of AWS do not need it); others are sent.
    """
    if context.point is ReportPoint.VERIFYING:
        return None
    details: dict[str, str] = {"step": context.point.value}
    if context.point is ReportPoint.PROGRESS:
        details["progress"] = f"{context.bytes_done}/{context.bytes_total}"
    if context.plan is not None and context.plan.version is not None:
        details["version"] = str(context.plan.version)
    if context.error is not None:
        details.update(context.error.as_report())
    if context.rolled_back:
        details["rolled_back"] = "true"
    return details

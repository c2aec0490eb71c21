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

    ``ACCEPTED``, ``PROGRESS``, ``READY`` and ``SELF_TEST`` are IN_PROGRESS reports sent once (best effort);
    ``SUCCEEDED``, ``FAILED`` and ``REJECTED`` are final and retried until the job source acknowledges them.
    """

    ACCEPTED = "accepted"
    PROGRESS = "progress"
    READY = "ready"
    SELF_TEST = "self-test"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"


@attrs.frozen
class ReportContext:
    """Facts a formatter may use: the point, the plan, the error, bytes so far, the running version."""

    point: ReportPoint
    job_id: str
    plan: UpdatePlan | None = None
    error: OtaError | None = None
    bytes_done: int = 0
    bytes_total: int = 0
    running_version: Version | None = None
    rolled_back: bool = False


ReportFormatter = Callable[[ReportContext], Mapping[str, str]]
"""Turns a report context into the status details sent with the report."""


def default_report_details(context: ReportContext) -> dict[str, str]:
    """Protocol-neutral details: the point, progress as ``done/total``, the error code and reason."""
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

"""What the engine tells its listeners: phase changes, progress, persisted states and outcomes."""

from __future__ import annotations

import enum

import attrs

from ota_core.errors import OtaError
from ota_core.models import JobStatus, Phase, ProgressEvent

__all__ = ["EngineEvent", "EngineEventKind", "EngineState"]


class EngineState(enum.StrEnum):
    """The persisted states of one update; the progress record holds one of these.

    ``IDLE`` is never persisted: it is the absence of a record.
    """

    IDLE = "idle"
    RECEIVED = "received"
    DOWNLOADING = "downloading"
    DOWNLOADED = "downloaded"
    ACTIVATING = "activating"
    RESTARTING = "restarting"
    SELF_TESTING = "self-testing"
    CONFIRMING = "confirming"
    REVERTING = "reverting"
    REPORTING = "reporting"

    @property
    def activated(self) -> bool:
        """True once the new image may have been switched to: cancellation no longer applies."""
        return self in _ACTIVATED

    @property
    def cancellable(self) -> bool:
        """True while a cancellation from the cloud can still stop the update and clean up."""
        return self in (EngineState.RECEIVED, EngineState.DOWNLOADING, EngineState.DOWNLOADED)


_ACTIVATED = frozenset(
    {EngineState.ACTIVATING, EngineState.RESTARTING, EngineState.SELF_TESTING, EngineState.CONFIRMING}
)


class EngineEventKind(enum.StrEnum):
    """The kinds of engine events."""

    STATE = "state"
    """A new state was persisted (``state``)."""
    PHASE = "phase"
    """A phase started (``phase``)."""
    PROGRESS = "progress"
    """Download progress (``progress``)."""
    WAITING = "waiting"
    """The policy holds the update (``message`` says why)."""
    RESTART_REQUESTED = "restart-requested"
    """The engine asked the application to restart the device."""
    CANCELLED = "cancelled"
    """The cloud cancelled the update before activation; it was cleaned up."""
    SUPERSEDED = "superseded"
    """A newer job replaced the update before activation; it was cleaned up."""
    IGNORED = "ignored"
    """A job event was ignored (already done, or arrived after activation)."""
    REPORT_RETRY = "report-retry"
    """A status report was not acknowledged; it will be sent again."""
    FINISHED = "finished"
    """The update ended and its final status was acknowledged (``status``)."""


@attrs.frozen
class EngineEvent:
    """One piece of engine telemetry, delivered to listeners on the engine's worker thread."""

    kind: EngineEventKind
    job_id: str | None = None
    state: EngineState | None = None
    phase: Phase | None = None
    progress: ProgressEvent | None = None
    status: JobStatus | None = None
    error: OtaError | None = None
    message: str = ""

"""Turns Jobs replies and notifications into the engine's job events, without I/O.

The tracker remembers the job the device is working on, its latest ``versionNumber`` and the newest
notification timestamp. From that it decides what a ``notify-next``, a ``notify`` or a reply to an
explicit request means: a new job, a change to the current one, the current one cancelled (it left the
pending list without the device finishing it), or nothing pending. Replayed notifications (same job, no
newer version) and notifications older than one already seen are ignored with a log line.
"""

from __future__ import annotations

import collections
import datetime
import logging
from typing import Any

import attrs

from ota_core.models import JobEvent, JobEventKind, JobStatus
from ota_jobs.aws._messages import JobExecution, JobExecutionsChanged, JobExecutionState

__all__ = ["ActiveJob", "JobTracker"]

_log = logging.getLogger(__name__)
_FINISHED_MEMORY = 64


@attrs.frozen
class ActiveJob:
    """The job the device currently holds, as last seen."""

    job_id: str
    status: JobStatus
    version_number: int | None
    execution_number: int | None


def _event_from_execution(kind: JobEventKind, execution: JobExecution, thing_name: str) -> JobEvent:
    attributes: dict[str, Any] = {
        "source": "aws-iot-jobs",
        "thing_name": execution.thing_name or thing_name,
        "status": execution.status.value,
        "status_details": dict(execution.status_details),
        "version_number": execution.version_number,
        "execution_number": execution.execution_number,
    }
    return JobEvent(kind=kind, job_id=execution.job_id, document=execution.job_document or {}, attributes=attributes)


class JobTracker:
    """Job-event bookkeeping for one thing (not thread-safe; the adapter serialises calls)."""

    def __init__(self, thing_name: str) -> None:
        self._thing_name = thing_name
        self._active: ActiveJob | None = None
        self._last_timestamp: datetime.datetime | None = None
        self._finished: collections.deque[str] = collections.deque(maxlen=_FINISHED_MEMORY)
        self._nothing_reported = False
        self._final_update_in_flight: str | None = None

    def begin_final_update(self, job_id: str) -> None:
        """The device is sending a terminal status for ``job_id``: its leaving the pending list is expected."""
        self._final_update_in_flight = job_id

    def end_final_update(self, job_id: str) -> None:
        """The terminal status update for ``job_id`` was answered (or failed)."""
        if self._final_update_in_flight == job_id:
            self._final_update_in_flight = None

    @property
    def active(self) -> ActiveJob | None:
        """The job being worked on, if any."""
        return self._active

    def version_of(self, job_id: str) -> int | None:
        """The last known versionNumber of ``job_id`` (for expectedVersion), if it is the active job."""
        if self._active is not None and self._active.job_id == job_id:
            return self._active.version_number
        return None

    def _is_stale(self, timestamp: datetime.datetime | None) -> bool:
        if timestamp is None:
            return False
        if self._last_timestamp is not None and timestamp < self._last_timestamp:
            _log.info("ignoring a Jobs notification older than one already seen (%s)", timestamp.isoformat())
            return True
        self._last_timestamp = timestamp
        return False

    def _lost_active(self) -> list[JobEvent]:
        if self._active is None:
            return []
        lost = self._active
        self._active = None
        if lost.job_id == self._final_update_in_flight:
            # The service may announce the next job before our own terminal update's reply arrives:
            # the job left because the device finished it, not because the cloud cancelled it.
            _log.debug("job %s left the pending list while its final status was being reported", lost.job_id)
            return []
        _log.info("job %s is no longer pending: reporting it cancelled", lost.job_id)
        return [
            JobEvent(
                kind=JobEventKind.CANCELLED,
                job_id=lost.job_id,
                attributes={
                    "source": "aws-iot-jobs",
                    "thing_name": self._thing_name,
                    "last_status": lost.status.value,
                },
            )
        ]

    def observe_next(
        self,
        execution: JobExecution | None,
        timestamp: datetime.datetime | None,
        *,
        explicit: bool = False,
    ) -> list[JobEvent]:
        """Events for "this is the next job" (a notify-next, or a reply to start-next/describe $next).

        ``explicit`` marks the answer to a request the device made: it bypasses the timestamp ordering and
        the memory of finished jobs, and "nothing pending" is always reported; a job already delivered at
        the same version is not delivered twice.
        """
        if not explicit and self._is_stale(timestamp):
            return []
        events: list[JobEvent]
        if execution is None:
            events = self._lost_active()
            if events or explicit or not self._nothing_reported:
                self._nothing_reported = True
                events.append(
                    JobEvent(
                        kind=JobEventKind.NOTHING_PENDING,
                        attributes={"source": "aws-iot-jobs", "thing_name": self._thing_name},
                    )
                )
            return events
        self._nothing_reported = False
        if execution.status.is_terminal:
            _log.info("ignoring job %s in terminal status %s", execution.job_id, execution.status.value)
            return []
        if execution.job_id in self._finished and not explicit:
            _log.info("ignoring a notification for job %s that this device already finished", execution.job_id)
            return []
        events = []
        active = self._active
        if active is not None and active.job_id != execution.job_id:
            events.extend(self._lost_active())
            active = None
        new_active = ActiveJob(execution.job_id, execution.status, execution.version_number, execution.execution_number)
        if active is None:
            self._active = new_active
            events.append(_event_from_execution(JobEventKind.NEW, execution, self._thing_name))
            return events
        if (execution.version_number or 0) > (active.version_number or 0):
            self._active = new_active
            events.append(_event_from_execution(JobEventKind.CHANGED, execution, self._thing_name))
            return events
        _log.debug("ignoring a replayed notification for job %s", execution.job_id)
        return events

    def observe_pending(self, changed: JobExecutionsChanged) -> list[JobEvent]:
        """Events for a ``notify``: the active job cancelled if it left the pending lists."""
        if self._is_stale(changed.timestamp) or self._active is None:
            return []
        pending = {summary.job_id for summaries in changed.jobs.values() for summary in summaries}
        if self._active.job_id in pending:
            return []
        return self._lost_active()

    def observe_update(self, job_id: str, status: JobStatus, state: JobExecutionState | None) -> None:
        """Record an accepted status update the device sent (its new version; finished if terminal)."""
        if status.is_terminal:
            self._finished.append(job_id)
            if self._active is not None and self._active.job_id == job_id:
                self._active = None
            return
        version = state.version_number if state is not None else None
        if self._active is not None and self._active.job_id == job_id:
            if version is None and self._active.version_number is not None:
                version = self._active.version_number + 1
            self._active = attrs.evolve(self._active, status=status, version_number=version)

    def observe_version(self, job_id: str, state: JobExecutionState | None) -> None:
        """Resynchronise the version of ``job_id`` from a rejection's execution state (VersionMismatch)."""
        if state is None or state.version_number is None:
            return
        if self._active is not None and self._active.job_id == job_id:
            self._active = attrs.evolve(self._active, version_number=state.version_number)

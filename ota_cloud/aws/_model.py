"""The stand-in's state: things, jobs and per-thing job executions, and their JSON form on disk.

Plain mutable records guarded by the service's lock. Times are epoch seconds (floats). The whole state
serialises to one JSON mapping, so that a restart of the stand-in loses no job.
"""

from __future__ import annotations

from typing import Any

import attrs

__all__ = [
    "ACCOUNT_ID",
    "REGION",
    "Execution",
    "Job",
    "ServiceState",
    "Thing",
    "job_arn",
    "thing_arn",
]

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"

PENDING = ("QUEUED", "IN_PROGRESS")
TERMINAL = ("SUCCEEDED", "FAILED", "REJECTED", "CANCELED", "REMOVED", "TIMED_OUT")


def thing_arn(name: str) -> str:
    """The ARN AWS gives the thing ``name``."""
    return f"arn:aws:iot:{REGION}:{ACCOUNT_ID}:thing/{name}"


def job_arn(job_id: str) -> str:
    """The ARN AWS gives the job ``job_id``."""
    return f"arn:aws:iot:{REGION}:{ACCOUNT_ID}:job/{job_id}"


@attrs.define
class Thing:
    """A registered thing."""

    name: str
    thing_id: str
    attributes: dict[str, str] = attrs.Factory(dict)
    version: int = 1


@attrs.define
class Execution:
    """One job's execution on one thing."""

    job_id: str
    thing_name: str
    status: str = "QUEUED"
    status_details: dict[str, str] = attrs.Factory(dict)
    queued_at: float = 0.0
    started_at: float | None = None
    last_updated_at: float = 0.0
    version_number: int = 1
    execution_number: int = 1
    step_deadline: float | None = None
    in_progress_deadline: float | None = None
    force_canceled: bool = False

    @property
    def is_pending(self) -> bool:
        """QUEUED or IN_PROGRESS."""
        return self.status in PENDING


@attrs.define
class Job:
    """A job: its document, its targets and its configuration."""

    job_id: str
    document: str
    targets: list[str]
    created_at: float
    last_updated_at: float
    description: str | None = None
    status: str = "IN_PROGRESS"
    target_selection: str = "SNAPSHOT"
    presigned_url_config: dict[str, Any] | None = None
    timeout_config: dict[str, Any] | None = None
    completed_at: float | None = None
    force_canceled: bool = False
    reason_code: str | None = None
    comment: str | None = None
    sequence: int = 0


@attrs.define
class ServiceState:
    """Everything the stand-in knows."""

    things: dict[str, Thing] = attrs.Factory(dict)
    jobs: dict[str, Job] = attrs.Factory(dict)
    executions: dict[tuple[str, str], Execution] = attrs.Factory(dict)
    next_sequence: int = 1

    def to_json(self) -> dict[str, Any]:
        """The state as a JSON-ready mapping."""
        return {
            "things": [attrs.asdict(thing) for thing in self.things.values()],
            "jobs": [attrs.asdict(job) for job in self.jobs.values()],
            "executions": [attrs.asdict(execution) for execution in self.executions.values()],
            "next_sequence": self.next_sequence,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ServiceState:
        """Rebuild the state written by ``to_json``."""
        state = cls(next_sequence=int(data.get("next_sequence", 1)))
        for raw in data.get("things", []):
            thing = Thing(**raw)
            state.things[thing.name] = thing
        for raw in data.get("jobs", []):
            job = Job(**raw)
            state.jobs[job.job_id] = job
        for raw in data.get("executions", []):
            execution = Execution(**raw)
            state.executions[(execution.job_id, execution.thing_name)] = execution
        return state

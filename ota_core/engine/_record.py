"""The engine's progress record: what survives a power cut, and how it is written and read back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ota_core.engine._events import EngineState
from ota_core.errors import StateCorruptedError
from ota_core.models import JobEvent, JobEventKind, JobStatus
from ota_core.protocols import StateStore

__all__ = ["Outcome", "ProgressRecord", "RecordStore"]

RECORD_SCHEMA_VERSION = 1
_COMPLETED_LIMIT = 32


def _as_str_dict(value: Mapping[str, str]) -> dict[str, str]:
    return {str(key): str(item) for key, item in value.items()}


@attrs.frozen
class Outcome:
    """A final status waiting to be acknowledged by the cloud."""

    status: JobStatus
    details: Mapping[str, str] = attrs.field(factory=dict, converter=_as_str_dict)
    restart_after: bool = False


@attrs.frozen
class ProgressRecord:
    """The persisted state of the one update in flight.

    The job event (not the plan) is kept, so a restart re-parses the same document with the same parsers;
    ``file_index`` is the first file not yet completely downloaded; ``unexpected_restarts`` and
    ``transitions`` feed the loop breaker; ``started`` is set once the job was reported IN_PROGRESS (a
    failure before that is REJECTED, after it FAILED); ``previous_version`` is the version that ran when
    the job arrived (FreeRTOS' ``updatedBy``), checked against the new one after the restart.
    """

    job_id: str
    state: EngineState
    event: JobEvent
    file_index: int = 0
    unexpected_restarts: int = 0
    transitions: int = 0
    progress_keys: tuple[str, ...] = ()
    outcome: Outcome | None = None
    started: bool = False
    previous_version: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable mapping for the state store."""
        outcome = self.outcome
        return {
            "job_id": self.job_id,
            "state": self.state.value,
            "event": {
                "kind": self.event.kind.value,
                "job_id": self.event.job_id,
                "document": dict(self.event.document),
                "attributes": dict(self.event.attributes),
            },
            "file_index": self.file_index,
            "unexpected_restarts": self.unexpected_restarts,
            "transitions": self.transitions,
            "progress_keys": list(self.progress_keys),
            "started": self.started,
            "previous_version": self.previous_version,
            "outcome": None
            if outcome is None
            else {
                "status": outcome.status.value,
                "details": dict(outcome.details),
                "restart_after": outcome.restart_after,
            },
        }

    @classmethod
    def from_json(cls, name: str, data: Mapping[str, Any]) -> ProgressRecord:
        """Read a record back; ``StateCorruptedError`` if it does not have the expected shape."""
        try:
            event = data["event"]
            outcome = data.get("outcome")
            return cls(
                job_id=str(data["job_id"]),
                state=EngineState(data["state"]),
                event=JobEvent(
                    kind=JobEventKind(event["kind"]),
                    job_id=event.get("job_id"),
                    document=event.get("document") or {},
                    attributes=event.get("attributes") or {},
                ),
                file_index=int(data.get("file_index", 0)),
                unexpected_restarts=int(data.get("unexpected_restarts", 0)),
                transitions=int(data.get("transitions", 0)),
                progress_keys=tuple(str(key) for key in data.get("progress_keys", ())),
                started=bool(data.get("started", False)),
                previous_version=None if data.get("previous_version") is None else str(data["previous_version"]),
                outcome=None
                if outcome is None
                else Outcome(
                    status=JobStatus(outcome["status"]),
                    details={str(k): str(v) for k, v in dict(outcome.get("details") or {}).items()},
                    restart_after=bool(outcome.get("restart_after", False)),
                ),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise StateCorruptedError(
                f"engine record {name!r} has an unexpected shape: {error}", details={"name": name}
            ) from error


class RecordStore:
    """Reads and writes the progress record and the list of finished jobs in a ``StateStore``."""

    def __init__(self, store: StateStore, prefix: str) -> None:
        self._store = store
        self.record_name = f"{prefix}-progress"
        self.completed_name = f"{prefix}-completed"

    def load(self) -> ProgressRecord | None:
        """The record of the update in flight, if any."""
        document = self._store.load(self.record_name)
        if document is None:
            return None
        return ProgressRecord.from_json(self.record_name, document.data)

    def save(self, record: ProgressRecord) -> None:
        """Persist ``record`` atomically."""
        self._store.save(self.record_name, record.to_json(), schema_version=RECORD_SCHEMA_VERSION)

    def clear(self) -> None:
        """Remove the record: no update is in flight."""
        self._store.delete(self.record_name)

    def completed(self) -> dict[str, str]:
        """Job ids of recently finished updates and the status they ended with."""
        document = self._store.load(self.completed_name)
        if document is None:
            return {}
        jobs = document.data.get("jobs", [])
        if not isinstance(jobs, list):
            return {}
        return {str(item[0]): str(item[1]) for item in jobs if isinstance(item, list) and len(item) == 2}

    def finish(self, job_id: str, status: JobStatus) -> None:
        """Remember that ``job_id`` ended with ``status``, then drop the record (in that order)."""
        finished = [[key, value] for key, value in self.completed().items() if key != job_id]
        finished.append([job_id, status.value])
        self._store.save(self.completed_name, {"jobs": finished[-_COMPLETED_LIMIT:]})
        self.clear()

"""The AWS IoT Jobs service logic of the stand-in, without I/O.

``JobsService`` holds things, jobs and executions and implements both planes:

* the control plane operations (CreateThing, CreateJob, CancelJob, ...) as methods that return
  botocore-shaped dictionaries or raise ``ServiceError``;
* the MQTT data plane as ``handle_mqtt(topic, payload)``, which returns the messages to publish (replies,
  ``notify`` and ``notify-next``);
* ``tick()``, which times out executions whose step timer or in-progress timer ran out.

Semantics follow the AWS documentation: per-thing executions with versionNumber incremented on every
change, start-next ordering (IN_PROGRESS first, then the oldest QUEUED), notify-next only when the next
execution changes, notify when the pending lists change, the nine rejected codes. Every change is
persisted through the ``persist`` callback before the answer leaves. Thread-safe (one lock).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import unicodedata
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import attrs

from ota_cloud.aws._errors import ServiceError
from ota_cloud.aws._model import PENDING, Execution, Job, ServiceState, Thing, job_arn, thing_arn
from ota_cloud.aws._presign import (
    PLACEHOLDER_PATTERN,
    PresignedUrlResolver,
    identity_resolver,
    resolve_placeholders,
)
from ota_core.clock import Clock, SystemClock

__all__ = ["JobsService", "Outgoing"]

_log = logging.getLogger(__name__)

_THING = re.compile(r"[a-zA-Z0-9:_-]{1,128}")
_JOB_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_DETAILS_KEY = re.compile(r"[a-zA-Z0-9:_-]{1,128}")
_JOBS_TOPIC = re.compile(r"\$aws/things/([^/]+)/jobs/(.+)")
_THING_ARN = re.compile(r"arn:aws:iot:[a-z0-9-]+:[0-9]{12}:thing/(.+)")
_DEVICE_STATUSES = ("IN_PROGRESS", "SUCCEEDED", "FAILED", "REJECTED")
_MAX_DOCUMENT = 32_768
_MAX_PAYLOAD = 128 * 1024
_ALLOWED = {
    "QUEUED": ("IN_PROGRESS", "SUCCEEDED", "FAILED", "REJECTED"),
    "IN_PROGRESS": ("IN_PROGRESS", "SUCCEEDED", "FAILED"),
}


@attrs.frozen
class Outgoing:
    """A message the data plane must publish."""

    topic: str
    payload: bytes


class _RejectedError(Exception):
    """A data-plane rejection (internal; turned into a ``.../rejected`` message)."""

    def __init__(self, code: str, message: str, execution: Execution | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.execution = execution


def _dump(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


def _details_valid(details: object) -> bool:
    if not isinstance(details, dict):
        return False
    for key, value in details.items():
        if not isinstance(key, str) or _DETAILS_KEY.fullmatch(key) is None:
            return False
        if not isinstance(value, str) or not 1 <= len(value) <= 1024:
            return False
        if any(unicodedata.category(ch).startswith("C") for ch in value):
            return False
    return True


class JobsService:
    """The Jobs service state machine (see the module docstring)."""

    def __init__(
        self,
        state: ServiceState | None = None,
        *,
        persist: Callable[[ServiceState], None] | None = None,
        clock: Clock | None = None,
        presigned_url_resolver: PresignedUrlResolver | None = None,
        minute_seconds: float = 60.0,
    ) -> None:
        self._state = state or ServiceState()
        self._persist = persist
        self._clock = clock or SystemClock()
        self._resolver = presigned_url_resolver or identity_resolver
        self._minute = minute_seconds
        self._lock = threading.RLock()

    # --- internals -------------------------------------------------------------------------------

    def _now(self) -> float:
        return self._clock.now().timestamp()

    @property
    def state(self) -> ServiceState:
        """The live state (read it under ``locked()``)."""
        return self._state

    @contextmanager
    def locked(self) -> Iterator[ServiceState]:
        """Hold the service lock (for extensions that read or change the state)."""
        with self._lock:
            yield self._state

    def _save(self) -> None:
        if self._persist is not None:
            self._persist(self._state)

    def _executions_of(self, thing_name: str) -> list[Execution]:
        return [e for (_, thing), e in self._state.executions.items() if thing == thing_name]

    def _job_sequence(self, execution: Execution) -> int:
        job = self._state.jobs.get(execution.job_id)
        return job.sequence if job is not None else 0

    def _next_execution(self, thing_name: str) -> Execution | None:
        pending = [e for e in self._executions_of(thing_name) if e.is_pending]
        in_progress = [e for e in pending if e.status == "IN_PROGRESS"]
        pool = in_progress or [e for e in pending if e.status == "QUEUED"]
        if not pool:
            return None
        return min(pool, key=lambda e: (e.queued_at, self._job_sequence(e)))

    def _snapshot(self, thing_name: str) -> tuple[Any, Any]:
        nxt = self._next_execution(thing_name)
        pending = sorted((e.status, e.job_id) for e in self._executions_of(thing_name) if e.is_pending)
        return ((nxt.job_id, nxt.execution_number) if nxt else None), tuple(pending)

    @contextmanager
    def _watch(self, thing_names: list[str], out: list[Outgoing]) -> Iterator[None]:
        """Emit notify / notify-next for the things whose pending lists or next job changed."""
        before = {name: self._snapshot(name) for name in thing_names}
        yield
        self._save()
        now = self._now()
        for name in thing_names:
            after = self._snapshot(name)
            if after[1] != before[name][1]:
                out.append(Outgoing(f"$aws/things/{name}/jobs/notify", _dump(self._notify_body(name, now))))
            if after[0] != before[name][0]:
                nxt = self._next_execution(name)
                body: dict[str, Any] = {"timestamp": int(now)}
                if nxt is not None:
                    body["execution"] = self._execution_json(nxt, include_document=True)
                out.append(Outgoing(f"$aws/things/{name}/jobs/notify-next", _dump(body)))

    def _notify_body(self, thing_name: str, now: float) -> dict[str, Any]:
        jobs: dict[str, list[dict[str, Any]]] = {}
        for execution in sorted(self._executions_of(thing_name), key=lambda e: (e.queued_at, e.job_id)):
            if execution.is_pending:
                jobs.setdefault(execution.status, []).append(self._summary_json(execution))
        return {"timestamp": int(now), "jobs": jobs}

    def _summary_json(self, execution: Execution) -> dict[str, Any]:
        body: dict[str, Any] = {
            "jobId": execution.job_id,
            "queuedAt": int(execution.queued_at),
            "lastUpdatedAt": int(execution.last_updated_at),
            "versionNumber": execution.version_number,
            "executionNumber": execution.execution_number,
        }
        if execution.started_at is not None:
            body["startedAt"] = int(execution.started_at)
        return body

    def _document_for(self, execution: Execution) -> Any:
        job = self._state.jobs[execution.job_id]
        text = job.document
        config = job.presigned_url_config
        if config is not None:
            text = resolve_placeholders(
                text,
                self._resolver,
                thing_name=execution.thing_name,
                job_id=job.job_id,
                expires_in_sec=int(config.get("expiresInSec", 1800)),
                now=self._now(),
            )
        return json.loads(text)

    def _execution_json(self, execution: Execution, *, include_document: bool) -> dict[str, Any]:
        body = self._summary_json(execution)
        body.update(
            {
                "thingName": execution.thing_name,
                "status": execution.status,
                "statusDetails": dict(execution.status_details),
            }
        )
        remaining = self._seconds_before_timeout(execution)
        if remaining is not None:
            body["approximateSecondsBeforeTimedOut"] = remaining
        if include_document and execution.job_id in self._state.jobs:
            body["jobDocument"] = self._document_for(execution)
        return body

    def _seconds_before_timeout(self, execution: Execution) -> int | None:
        deadlines = [d for d in (execution.step_deadline, execution.in_progress_deadline) if d is not None]
        if execution.status != "IN_PROGRESS" or not deadlines:
            return None
        return max(0, int(min(deadlines) - self._now()))

    def _state_json(self, execution: Execution) -> dict[str, Any]:
        return {
            "status": execution.status,
            "statusDetails": dict(execution.status_details),
            "versionNumber": execution.version_number,
        }

    def _change(self, execution: Execution, status: str, now: float) -> None:
        if status == "IN_PROGRESS" and execution.status == "QUEUED":
            execution.started_at = now
            job = self._state.jobs.get(execution.job_id)
            timeout = (job.timeout_config or {}).get("inProgressTimeoutInMinutes") if job else None
            if timeout:
                execution.in_progress_deadline = now + float(timeout) * self._minute
        execution.status = status
        execution.version_number += 1
        execution.last_updated_at = now
        if status not in PENDING:
            execution.step_deadline = None
            execution.in_progress_deadline = None
            self._update_job_completion(execution.job_id, now)

    def _update_job_completion(self, job_id: str, now: float) -> None:
        job = self._state.jobs.get(job_id)
        if job is None or job.status == "COMPLETED":
            return
        executions = [e for (jid, _), e in self._state.executions.items() if jid == job_id]
        if all(not e.is_pending for e in executions):
            if job.status == "IN_PROGRESS":
                job.status = "COMPLETED"
            job.completed_at = now
            job.last_updated_at = now

    # --- data plane ------------------------------------------------------------------------------

    def handle_mqtt(self, topic: str, payload: bytes) -> list[Outgoing]:
        """Serve one message published on a Jobs topic; returns the messages to publish."""
        match = _JOBS_TOPIC.fullmatch(topic)
        if match is None:
            return []
        thing_name, rest = match.group(1), match.group(2)
        parts = rest.split("/")
        if parts[-1] in ("accepted", "rejected") or rest in ("notify", "notify-next"):
            return []  # our own replies and events come back through the wildcard subscription
        out: list[Outgoing] = []
        token: Any = None
        with self._lock:
            try:
                if _THING.fullmatch(thing_name) is None:
                    raise _RejectedError("InvalidTopic", "invalid thing name")
                request = self._parse_request(payload)
                token = request.get("clientToken")
                if token is not None and (not isinstance(token, str) or not 1 <= len(token) <= 64):
                    token = None
                    raise _RejectedError("InvalidRequest", "clientToken must be a string of 1..64 characters")
                body = self._dispatch(thing_name, parts, request, out)
            except _RejectedError as rejected:
                error: dict[str, Any] = {
                    "code": rejected.code,
                    "message": rejected.message,
                    "timestamp": int(self._now()),
                }
                if token is not None:
                    error["clientToken"] = token
                if rejected.execution is not None:
                    error["executionState"] = self._state_json(rejected.execution)
                return [Outgoing(f"{topic}/rejected", _dump(error))]
        body["timestamp"] = int(self._now())
        if token is not None:
            body["clientToken"] = token
        return [Outgoing(f"{topic}/accepted", _dump(body)), *out]

    @staticmethod
    def _parse_request(payload: bytes) -> dict[str, Any]:
        if len(payload) > _MAX_PAYLOAD:
            raise _RejectedError("InvalidRequest", "payload too large")
        if not payload.strip():
            return {}
        try:
            request = json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise _RejectedError("InvalidJson", "the payload is not valid UTF-8 JSON") from None
        if not isinstance(request, dict):
            raise _RejectedError("InvalidJson", "the payload must be a JSON object")
        return request

    def _dispatch(self, thing: str, parts: list[str], request: dict[str, Any], out: list[Outgoing]) -> dict[str, Any]:
        if parts == ["get"]:
            return self._get_pending(thing)
        if parts == ["start-next"]:
            return self._start_next(thing, request, out)
        if len(parts) == 2 and parts[1] == "get" and (parts[0] == "$next" or _JOB_ID.fullmatch(parts[0])):
            return self._describe(thing, parts[0], request)
        if len(parts) == 2 and parts[1] == "update" and _JOB_ID.fullmatch(parts[0]):
            return self._update(thing, parts[0], request, out)
        raise _RejectedError("InvalidTopic", "the topic does not map to a Jobs API")

    def _get_pending(self, thing: str) -> dict[str, Any]:
        executions = sorted(self._executions_of(thing), key=lambda e: (e.queued_at, self._job_sequence(e)))
        return {
            "inProgressJobs": [self._summary_json(e) for e in executions if e.status == "IN_PROGRESS"],
            "queuedJobs": [self._summary_json(e) for e in executions if e.status == "QUEUED"],
        }

    def _step_timeout(self, request: Mapping[str, Any]) -> int | None:
        value = request.get("stepTimeoutInMinutes")
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10080:
            raise _RejectedError("InvalidRequest", "stepTimeoutInMinutes must be an integer in 1..10080")
        return value

    def _status_details(self, request: Mapping[str, Any]) -> dict[str, str] | None:
        if "statusDetails" not in request or request["statusDetails"] is None:
            return None
        details = request["statusDetails"]
        if not _details_valid(details):
            raise _RejectedError(
                "InvalidRequest", "statusDetails must map 1..128-character keys to 1..1024-character strings"
            )
        return dict(details)

    def _start_next(self, thing: str, request: Mapping[str, Any], out: list[Outgoing]) -> dict[str, Any]:
        details = self._status_details(request)
        step = self._step_timeout(request)
        with self._watch([thing], out):
            execution = self._next_execution(thing)
            if execution is None:
                return {}
            if execution.status == "QUEUED":
                now = self._now()
                if details is not None:
                    execution.status_details = details
                self._change(execution, "IN_PROGRESS", now)
                if step is not None:
                    execution.step_deadline = now + step * self._minute
        return {"execution": self._execution_json(execution, include_document=True)}

    def _describe(self, thing: str, job_id: str, request: Mapping[str, Any]) -> dict[str, Any]:
        include = request.get("includeJobDocument", True)
        if not isinstance(include, bool):
            raise _RejectedError("InvalidRequest", "includeJobDocument must be a boolean")
        number = request.get("executionNumber")
        if number is not None and (isinstance(number, bool) or not isinstance(number, int)):
            raise _RejectedError("InvalidRequest", "executionNumber must be an integer")
        if job_id == "$next":
            execution = self._next_execution(thing)
            if execution is None:
                return {}
        else:
            execution = self._state.executions.get((job_id, thing))
            if execution is None or (number is not None and number != execution.execution_number):
                raise _RejectedError("ResourceNotFound", f"job execution {job_id} of {thing} does not exist")
            if not execution.is_pending:
                raise _RejectedError("TerminalStateReached", f"job execution {job_id} is {execution.status}", execution)
        return {"execution": self._execution_json(execution, include_document=include)}

    def _update(self, thing: str, job_id: str, request: Mapping[str, Any], out: list[Outgoing]) -> dict[str, Any]:
        execution = self._state.executions.get((job_id, thing))
        if execution is None:
            raise _RejectedError("ResourceNotFound", f"job execution {job_id} of {thing} does not exist")
        status = request.get("status")
        if status not in _DEVICE_STATUSES:
            raise _RejectedError("InvalidRequest", "status must be IN_PROGRESS, SUCCEEDED, FAILED or REJECTED")
        details = self._status_details(request)
        step = self._step_timeout(request)
        expected = request.get("expectedVersion")
        if isinstance(expected, str) and expected.isdigit():
            expected = int(expected)  # the service coerces numeric strings, as FreeRTOS devices send them
        if expected is not None and (isinstance(expected, bool) or not isinstance(expected, int)):
            raise _RejectedError("InvalidRequest", "expectedVersion must be an integer")
        number = request.get("executionNumber")
        if number is not None and number != execution.execution_number:
            raise _RejectedError("ResourceNotFound", f"job execution {job_id} #{number} does not exist")
        if expected is not None and expected != execution.version_number:
            raise _RejectedError("VersionMismatch", "expectedVersion does not match the current version", execution)
        if status not in _ALLOWED.get(execution.status, ()):
            raise _RejectedError(
                "InvalidStateTransition",
                f"cannot change a {execution.status} execution to {status}",
                execution,
            )
        with self._watch([thing], out):
            now = self._now()
            if details is not None:
                execution.status_details = details
            self._change(execution, str(status), now)
            if step is not None and execution.status == "IN_PROGRESS":
                execution.step_deadline = now + step * self._minute
        body: dict[str, Any] = {}
        if request.get("includeJobExecutionState") is True:
            body["executionState"] = self._state_json(execution)
        if request.get("includeJobDocument") is True:
            body["jobDocument"] = self._document_for(execution)
        return body

    # --- timers ----------------------------------------------------------------------------------

    def tick(self) -> list[Outgoing]:
        """Time out every IN_PROGRESS execution whose step or in-progress timer ran out."""
        out: list[Outgoing] = []
        with self._lock:
            now = self._now()
            expired = [
                e
                for e in self._state.executions.values()
                if e.status == "IN_PROGRESS"
                and any(d is not None and d <= now for d in (e.step_deadline, e.in_progress_deadline))
            ]
            if not expired:
                return out
            with self._watch(sorted({e.thing_name for e in expired}), out):
                for execution in expired:
                    _log.info("job execution %s on %s timed out", execution.job_id, execution.thing_name)
                    self._change(execution, "TIMED_OUT", now)
        return out

    # --- control plane ---------------------------------------------------------------------------

    def create_thing(self, name: str, attributes: Mapping[str, str] | None = None) -> dict[str, Any]:
        """CreateThing (idempotent for an existing thing with the same attributes)."""
        if _THING.fullmatch(name) is None:
            raise ServiceError.invalid("thingName must be 1..128 characters of a-z A-Z 0-9 : _ -")
        with self._lock:
            thing = self._state.things.get(name)
            if thing is not None:
                if attributes is not None and dict(attributes) != thing.attributes:
                    raise ServiceError.exists(f"thing {name} already exists with different attributes")
            else:
                thing = Thing(name=name, thing_id=str(uuid.uuid4()), attributes=dict(attributes or {}))
                self._state.things[name] = thing
                self._save()
            return {"thingName": thing.name, "thingArn": thing_arn(thing.name), "thingId": thing.thing_id}

    def describe_thing(self, name: str) -> dict[str, Any]:
        """DescribeThing."""
        with self._lock:
            thing = self._state.things.get(name)
            if thing is None:
                raise ServiceError.not_found(f"thing {name} does not exist")
            return {
                "defaultClientId": thing.name,
                "thingName": thing.name,
                "thingId": thing.thing_id,
                "thingArn": thing_arn(thing.name),
                "attributes": dict(thing.attributes),
                "version": thing.version,
            }

    def create_job(self, job_id: str, body: Mapping[str, Any]) -> tuple[dict[str, Any], list[Outgoing]]:
        """CreateJob: one QUEUED execution per targeted thing; returns the reply and notifications."""
        if _JOB_ID.fullmatch(job_id) is None:
            raise ServiceError.invalid("jobId must be 1..64 characters of a-z A-Z 0-9 _ -")
        document = body.get("document")
        if body.get("documentSource") is not None:
            raise ServiceError.invalid("documentSource (S3) is not supported by the stand-in; pass document")
        if not isinstance(document, str) or not 1 <= len(document) <= _MAX_DOCUMENT:
            raise ServiceError.invalid("document must be a JSON string of at most 32768 characters")
        try:
            if not isinstance(json.loads(document), dict):
                raise ServiceError.invalid("document must be a JSON object")
        except (json.JSONDecodeError, RecursionError):
            raise ServiceError.invalid("document is not valid JSON") from None
        presigned = body.get("presignedUrlConfig")
        if PLACEHOLDER_PATTERN.search(document) and not presigned:
            raise ServiceError.invalid("the document holds a presigned-URL placeholder: presignedUrlConfig is required")
        if presigned is not None:
            expires = presigned.get("expiresInSec", 1800) if isinstance(presigned, dict) else None
            if not isinstance(expires, int) or not 60 <= expires <= 3600:
                raise ServiceError.invalid("presignedUrlConfig.expiresInSec must be in 60..3600")
        timeout = body.get("timeoutConfig")
        if timeout is not None:
            minutes = timeout.get("inProgressTimeoutInMinutes") if isinstance(timeout, dict) else None
            if minutes is not None and (not isinstance(minutes, int) or not 1 <= minutes <= 10080):
                raise ServiceError.invalid("timeoutConfig.inProgressTimeoutInMinutes must be in 1..10080")
        targets = body.get("targets")
        if not isinstance(targets, list) or not targets or not all(isinstance(t, str) for t in targets):
            raise ServiceError.invalid("targets must be a non-empty list of thing ARNs")
        out: list[Outgoing] = []
        with self._lock:
            if job_id in self._state.jobs:
                raise ServiceError.exists(f"job {job_id} already exists")
            names = []
            for target in targets:
                match = _THING_ARN.fullmatch(target)
                if match is None:
                    raise ServiceError.invalid(f"only thing ARNs are supported as targets: {target}")
                if match.group(1) not in self._state.things:
                    raise ServiceError.not_found(f"thing {match.group(1)} does not exist")
                names.append(match.group(1))
            now = self._now()
            job = Job(
                job_id=job_id,
                document=document,
                targets=list(targets),
                created_at=now,
                last_updated_at=now,
                description=body.get("description"),
                target_selection=str(body.get("targetSelection") or "SNAPSHOT"),
                presigned_url_config=dict(presigned) if isinstance(presigned, dict) else None,
                timeout_config=dict(timeout) if isinstance(timeout, dict) else None,
                sequence=self._state.next_sequence,
            )
            self._state.next_sequence += 1
            with self._watch(sorted(set(names)), out):
                self._state.jobs[job_id] = job
                for name in names:
                    self._state.executions[(job_id, name)] = Execution(
                        job_id=job_id, thing_name=name, queued_at=now, last_updated_at=now
                    )
            reply: dict[str, Any] = {"jobArn": job_arn(job_id), "jobId": job_id}
            if job.description is not None:
                reply["description"] = job.description
            return reply, out

    def _job(self, job_id: str) -> Job:
        job = self._state.jobs.get(job_id)
        if job is None:
            raise ServiceError.not_found(f"job {job_id} does not exist")
        return job

    def _process_details(self, job_id: str) -> dict[str, int]:
        counts = dict.fromkeys(
            ("QUEUED", "IN_PROGRESS", "SUCCEEDED", "FAILED", "REJECTED", "CANCELED", "REMOVED", "TIMED_OUT"),
            0,
        )
        for (jid, _), execution in self._state.executions.items():
            if jid == job_id:
                counts[execution.status] += 1
        names = {
            "QUEUED": "numberOfQueuedThings",
            "IN_PROGRESS": "numberOfInProgressThings",
            "SUCCEEDED": "numberOfSucceededThings",
            "FAILED": "numberOfFailedThings",
            "REJECTED": "numberOfRejectedThings",
            "CANCELED": "numberOfCanceledThings",
            "REMOVED": "numberOfRemovedThings",
            "TIMED_OUT": "numberOfTimedOutThings",
        }
        return {names[status]: count for status, count in counts.items()}

    def describe_job(self, job_id: str) -> dict[str, Any]:
        """DescribeJob."""
        with self._lock:
            job = self._job(job_id)
            body: dict[str, Any] = {
                "jobArn": job_arn(job.job_id),
                "jobId": job.job_id,
                "targetSelection": job.target_selection,
                "status": job.status,
                "forceCanceled": job.force_canceled,
                "targets": list(job.targets),
                "createdAt": job.created_at,
                "lastUpdatedAt": job.last_updated_at,
                "jobProcessDetails": self._process_details(job.job_id),
                "isConcurrent": False,
            }
            optional = {
                "description": job.description,
                "presignedUrlConfig": job.presigned_url_config,
                "timeoutConfig": job.timeout_config,
                "completedAt": job.completed_at,
                "reasonCode": job.reason_code,
                "comment": job.comment,
            }
            body.update({key: value for key, value in optional.items() if value is not None})
            return {"job": body}

    def get_job_document(self, job_id: str) -> dict[str, Any]:
        """GetJobDocument (placeholders unresolved, as AWS returns them)."""
        with self._lock:
            return {"document": self._job(job_id).document}

    def list_jobs(self, status: str | None = None) -> list[dict[str, Any]]:
        """ListJobs' summaries, oldest first (paging is done by the caller)."""
        with self._lock:
            jobs = sorted(self._state.jobs.values(), key=lambda j: j.sequence)
            result = []
            for job in jobs:
                if status is not None and job.status != status:
                    continue
                summary: dict[str, Any] = {
                    "jobArn": job_arn(job.job_id),
                    "jobId": job.job_id,
                    "targetSelection": job.target_selection,
                    "status": job.status,
                    "createdAt": job.created_at,
                    "lastUpdatedAt": job.last_updated_at,
                    "isConcurrent": False,
                }
                if job.completed_at is not None:
                    summary["completedAt"] = job.completed_at
                result.append(summary)
            return result

    def cancel_job(
        self, job_id: str, *, force: bool, reason_code: str | None = None, comment: str | None = None
    ) -> tuple[dict[str, Any], list[Outgoing]]:
        """CancelJob: QUEUED executions are cancelled; IN_PROGRESS ones too with ``force``."""
        out: list[Outgoing] = []
        with self._lock:
            job = self._job(job_id)
            if job.status == "COMPLETED":
                raise ServiceError.invalid(f"job {job_id} is already completed")
            if job.status == "CANCELED" and not force:
                raise ServiceError.invalid(f"job {job_id} is already canceled")
            executions = [e for (jid, _), e in self._state.executions.items() if jid == job_id]
            now = self._now()
            with self._watch(sorted({e.thing_name for e in executions}), out):
                job.status = "CANCELED"
                job.force_canceled = job.force_canceled or force
                job.reason_code = reason_code or job.reason_code
                job.comment = comment or job.comment
                job.last_updated_at = now
                for execution in executions:
                    if execution.status == "QUEUED" or (force and execution.status == "IN_PROGRESS"):
                        execution.force_canceled = execution.status == "IN_PROGRESS"
                        self._change(execution, "CANCELED", now)
            reply: dict[str, Any] = {"jobArn": job_arn(job_id), "jobId": job_id}
            if job.description is not None:
                reply["description"] = job.description
            return reply, out

    def delete_job(self, job_id: str, *, force: bool) -> list[Outgoing]:
        """DeleteJob: refused while executions are IN_PROGRESS unless ``force``."""
        out: list[Outgoing] = []
        with self._lock:
            self._job(job_id)
            executions = [e for (jid, _), e in self._state.executions.items() if jid == job_id]
            if not force and any(e.status == "IN_PROGRESS" for e in executions):
                raise ServiceError.invalid(f"job {job_id} has executions in progress; use force")
            with self._watch(sorted({e.thing_name for e in executions}), out):
                del self._state.jobs[job_id]
                for execution in executions:
                    del self._state.executions[(job_id, execution.thing_name)]
            return out

    def _execution_api_json(self, execution: Execution) -> dict[str, Any]:
        body: dict[str, Any] = {
            "jobId": execution.job_id,
            "status": execution.status,
            "forceCanceled": execution.force_canceled,
            "statusDetails": {"detailsMap": dict(execution.status_details)},
            "thingArn": thing_arn(execution.thing_name),
            "queuedAt": execution.queued_at,
            "lastUpdatedAt": execution.last_updated_at,
            "executionNumber": execution.execution_number,
            "versionNumber": execution.version_number,
        }
        if execution.started_at is not None:
            body["startedAt"] = execution.started_at
        remaining = self._seconds_before_timeout(execution)
        if remaining is not None:
            body["approximateSecondsBeforeTimedOut"] = remaining
        return body

    def _execution_summary(self, execution: Execution) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "status": execution.status,
            "queuedAt": execution.queued_at,
            "lastUpdatedAt": execution.last_updated_at,
            "executionNumber": execution.execution_number,
        }
        if execution.started_at is not None:
            summary["startedAt"] = execution.started_at
        return summary

    def describe_job_execution(self, job_id: str, thing_name: str, execution_number: int | None) -> dict[str, Any]:
        """DescribeJobExecution (control plane)."""
        with self._lock:
            execution = self._state.executions.get((job_id, thing_name))
            if execution is None or (execution_number is not None and execution_number != execution.execution_number):
                raise ServiceError.not_found(f"job execution {job_id} of {thing_name} does not exist")
            return {"execution": self._execution_api_json(execution)}

    def list_job_executions_for_thing(
        self, thing_name: str, status: str | None = None, job_id: str | None = None
    ) -> list[dict[str, Any]]:
        """ListJobExecutionsForThing's summaries."""
        with self._lock:
            if thing_name not in self._state.things:
                raise ServiceError.not_found(f"thing {thing_name} does not exist")
            executions = sorted(self._executions_of(thing_name), key=lambda e: (e.queued_at, self._job_sequence(e)))
            return [
                {"jobId": e.job_id, "jobExecutionSummary": self._execution_summary(e)}
                for e in executions
                if (status is None or e.status == status) and (job_id is None or e.job_id == job_id)
            ]

    def list_job_executions_for_job(self, job_id: str, status: str | None = None) -> list[dict[str, Any]]:
        """ListJobExecutionsForJob's summaries."""
        with self._lock:
            self._job(job_id)
            executions = sorted(
                (e for (jid, _), e in self._state.executions.items() if jid == job_id),
                key=lambda e: e.thing_name,
            )
            return [
                {"thingArn": thing_arn(e.thing_name), "jobExecutionSummary": self._execution_summary(e)}
                for e in executions
                if status is None or e.status == status
            ]

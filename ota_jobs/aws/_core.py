"""The sans-I/O Jobs core for one thing: builds requests, classifies and decodes what comes back.

``JobsCore`` opens no socket and reads no clock. It hands out ``OutgoingRequest`` values (topic, payload,
client token) and turns an incoming (topic, payload) into a typed ``JobsIncoming`` value: a reply (with
its client token and either a decoded body or a rejection error) or an event. Topics of other things and
topics outside the Jobs namespace are classified as ``None``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping

import attrs

from ota_core.models import JobStatus
from ota_jobs.aws._errors import JobsRejectedError
from ota_jobs.aws._identifiers import NEXT_JOB_ID, validate_job_id
from ota_jobs.aws._messages import (
    ExecutionReply,
    JobExecutionsChanged,
    NextJobExecutionChanged,
    PendingJobsReply,
    UpdateReply,
    decode_execution_reply,
    decode_notify,
    decode_notify_next,
    decode_pending_reply,
    decode_rejected,
    decode_update_reply,
)
from ota_jobs.aws._requests import encode_describe, encode_get_pending, encode_start_next, encode_update
from ota_jobs.aws._topics import JobsApi, JobsTopicMatch, JobsTopics, ReplyKind

__all__ = ["JobsCore", "JobsEvent", "JobsIncoming", "JobsReply", "OutgoingRequest"]

ReplyBody = PendingJobsReply | ExecutionReply | UpdateReply


@attrs.frozen
class OutgoingRequest:
    """A request to publish: where, what, and the client token its reply will carry."""

    api: JobsApi
    topic: str
    payload: bytes
    client_token: str
    job_id: str | None = None


@attrs.frozen
class JobsReply:
    """A decoded reply: ``body`` when accepted, ``error`` when rejected (exactly one is set)."""

    match: JobsTopicMatch
    client_token: str | None
    body: ReplyBody | None = None
    error: JobsRejectedError | None = None


@attrs.frozen
class JobsEvent:
    """A decoded ``notify`` or ``notify-next`` event."""

    match: JobsTopicMatch
    body: JobExecutionsChanged | NextJobExecutionChanged


JobsIncoming = JobsReply | JobsEvent


class JobsCore:
    """Requests and replies of AWS IoT Jobs for one thing, without I/O.

    Client tokens are ``{token_prefix}:{counter}``; the prefix defaults to the thing name cut to 40
    characters so that tokens stay within the 64-character limit.
    """

    def __init__(self, thing_name: str, *, token_prefix: str | None = None) -> None:
        self.topics = JobsTopics(thing_name)
        prefix = token_prefix if token_prefix is not None else self.topics.thing_name[:40]
        self._token_prefix = prefix[:40]
        self._counter = itertools.count(1)

    @property
    def thing_name(self) -> str:
        """The thing this core speaks for."""
        return self.topics.thing_name

    def new_client_token(self) -> str:
        """A fresh client token, unique for the life of this core."""
        return f"{self._token_prefix}:{next(self._counter)}"

    # --- requests ------------------------------------------------------------------------------

    def get_pending(self) -> OutgoingRequest:
        """GetPendingJobExecutions."""
        token = self.new_client_token()
        return OutgoingRequest(JobsApi.GET_PENDING, self.topics.get_pending(), encode_get_pending(token), token)

    def start_next(
        self, *, status_details: Mapping[str, str] | None = None, step_timeout_in_minutes: int | None = None
    ) -> OutgoingRequest:
        """StartNextPendingJobExecution: moves the next QUEUED execution to IN_PROGRESS."""
        token = self.new_client_token()
        payload = encode_start_next(
            token, status_details=status_details, step_timeout_in_minutes=step_timeout_in_minutes
        )
        return OutgoingRequest(JobsApi.START_NEXT, self.topics.start_next(), payload, token)

    def describe(
        self,
        job_id: str = NEXT_JOB_ID,
        *,
        execution_number: int | None = None,
        include_job_document: bool = True,
    ) -> OutgoingRequest:
        """DescribeJobExecution of ``job_id`` (``$next`` by default), without changing its status."""
        job_id = validate_job_id(job_id, allow_next=True)
        token = self.new_client_token()
        payload = encode_describe(token, execution_number=execution_number, include_job_document=include_job_document)
        return OutgoingRequest(JobsApi.DESCRIBE, self.topics.describe(job_id), payload, token, job_id)

    def update(
        self,
        job_id: str,
        status: JobStatus | str,
        *,
        status_details: Mapping[str, str] | None = None,
        expected_version: int | None = None,
        execution_number: int | None = None,
        step_timeout_in_minutes: int | None = None,
        include_job_execution_state: bool = True,
        include_job_document: bool = False,
    ) -> OutgoingRequest:
        """UpdateJobExecution; the execution state is asked back by default to track versionNumber."""
        job_id = validate_job_id(job_id)
        token = self.new_client_token()
        payload = encode_update(
            status,
            token,
            status_details=status_details,
            expected_version=expected_version,
            execution_number=execution_number,
            step_timeout_in_minutes=step_timeout_in_minutes,
            include_job_execution_state=include_job_execution_state,
            include_job_document=include_job_document,
        )
        return OutgoingRequest(JobsApi.UPDATE, self.topics.update(job_id), payload, token, job_id)

    # --- incoming --------------------------------------------------------------------------------

    def classify(self, topic: str) -> JobsTopicMatch | None:
        """The match of an incoming topic, or ``None`` if it is not a reply or event for this thing."""
        match = self.topics.match(topic)
        if match is None or match.kind is ReplyKind.REQUEST:
            return None
        return match

    def client_token_of(self, topic: str, payload: bytes) -> str | None:
        """The client token of a reply for this thing (a cheap look, for reply correlation)."""
        match = self.classify(topic)
        if match is None or match.kind is ReplyKind.EVENT:
            return None
        try:
            body = json.loads(bytes(payload).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            return None
        token = body.get("clientToken") if isinstance(body, dict) else None
        return token if isinstance(token, str) else None

    def receive(self, topic: str, payload: bytes) -> JobsIncoming | None:
        """Decode an incoming message; ``None`` if the topic is not ours. Raises ``JobsMessageError``."""
        match = self.classify(topic)
        if match is None:
            return None
        if match.kind is ReplyKind.EVENT:
            if match.api is JobsApi.NOTIFY:
                return JobsEvent(match, decode_notify(payload))
            return JobsEvent(match, decode_notify_next(payload))
        if match.kind is ReplyKind.REJECTED:
            error = decode_rejected(payload)
            return JobsReply(match, error.client_token, error=error)
        body: ReplyBody
        if match.api is JobsApi.GET_PENDING:
            body = decode_pending_reply(payload)
        elif match.api is JobsApi.UPDATE:
            body = decode_update_reply(payload)
        else:
            body = decode_execution_reply(payload)
        return JobsReply(match, body.client_token, body=body)

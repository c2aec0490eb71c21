"""The MQTT topics of AWS IoT Jobs for one thing: builders for every API and a classifier.

All topics live under ``$aws/things/{thingName}/jobs``. Requests go to ``get``, ``start-next``,
``{jobId}/get`` (``$next`` allowed) and ``{jobId}/update``; replies come back on the same topic plus
``/accepted`` or ``/rejected``; events arrive on ``notify`` and ``notify-next``. ``match`` classifies an
incoming topic, extracts the job id, and refuses topics for another thing (the comparison is exact and
case-sensitive, as the service's is).
"""

from __future__ import annotations

import enum

import attrs

from ota_jobs.aws._errors import InvalidJobIdError
from ota_jobs.aws._identifiers import NEXT_JOB_ID, validate_job_id, validate_thing_name

__all__ = ["JobsApi", "JobsTopicMatch", "JobsTopics", "ReplyKind"]


class JobsApi(enum.StrEnum):
    """The Jobs MQTT operations and event streams."""

    GET_PENDING = "get-pending"
    START_NEXT = "start-next"
    DESCRIBE = "describe"
    UPDATE = "update"
    NOTIFY = "notify"
    NOTIFY_NEXT = "notify-next"


class ReplyKind(enum.StrEnum):
    """What a topic carries: a request, an accepted or rejected reply, or an event."""

    REQUEST = "request"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    EVENT = "event"


@attrs.frozen
class JobsTopicMatch:
    """The classification of one topic: which API, which kind of message, and the job id if any."""

    api: JobsApi
    kind: ReplyKind
    job_id: str | None = None


_SUFFIX_KIND = {"accepted": ReplyKind.ACCEPTED, "rejected": ReplyKind.REJECTED}


@attrs.frozen
class JobsTopics:
    """Topic builder and matcher for one thing name (validated on construction)."""

    thing_name: str = attrs.field(converter=validate_thing_name)

    @property
    def prefix(self) -> str:
        """``$aws/things/{thingName}/jobs``."""
        return f"$aws/things/{self.thing_name}/jobs"

    # --- requests ------------------------------------------------------------------------------

    def get_pending(self) -> str:
        """The GetPendingJobExecutions request topic."""
        return f"{self.prefix}/get"

    def start_next(self) -> str:
        """The StartNextPendingJobExecution request topic."""
        return f"{self.prefix}/start-next"

    def describe(self, job_id: str) -> str:
        """The DescribeJobExecution request topic; ``job_id`` may be ``$next``."""
        return f"{self.prefix}/{validate_job_id(job_id, allow_next=True)}/get"

    def update(self, job_id: str) -> str:
        """The UpdateJobExecution request topic."""
        return f"{self.prefix}/{validate_job_id(job_id)}/update"

    # --- replies and events ----------------------------------------------------------------------

    @staticmethod
    def reply(request_topic: str, accepted: bool) -> str:
        """The accepted or rejected reply topic of a request topic."""
        return f"{request_topic}/{'accepted' if accepted else 'rejected'}"

    def notify(self) -> str:
        """The JobExecutionsChanged event topic."""
        return f"{self.prefix}/notify"

    def notify_next(self) -> str:
        """The NextJobExecutionChanged event topic."""
        return f"{self.prefix}/notify-next"

    def reply_filters(self) -> tuple[str, ...]:
        """Subscription filters that cover every reply to this thing's requests.

        AWS delivers replies to the requester without a subscription; a plain MQTT broker (and so the
        local stand-in) needs one.
        """
        return (
            f"{self.prefix}/get/+",
            f"{self.prefix}/start-next/+",
            f"{self.prefix}/+/get/+",
            f"{self.prefix}/+/update/+",
        )

    # --- classification --------------------------------------------------------------------------

    def match(self, topic: str) -> JobsTopicMatch | None:
        """Classify ``topic``; ``None`` when it is not a Jobs topic of this thing."""
        head = self.prefix + "/"
        if not topic.startswith(head):
            return None
        parts = topic[len(head) :].split("/")
        if len(parts) == 1:
            return _match_single(parts[0])
        if parts[0] in ("get", "start-next"):
            return _match_plain(parts)
        return _match_job(parts)


def _match_single(name: str) -> JobsTopicMatch | None:
    if name == "notify":
        return JobsTopicMatch(JobsApi.NOTIFY, ReplyKind.EVENT)
    if name == "notify-next":
        return JobsTopicMatch(JobsApi.NOTIFY_NEXT, ReplyKind.EVENT)
    if name == "get":
        return JobsTopicMatch(JobsApi.GET_PENDING, ReplyKind.REQUEST)
    if name == "start-next":
        return JobsTopicMatch(JobsApi.START_NEXT, ReplyKind.REQUEST)
    return None


def _match_plain(parts: list[str]) -> JobsTopicMatch | None:
    api = JobsApi.GET_PENDING if parts[0] == "get" else JobsApi.START_NEXT
    if len(parts) == 2 and parts[1] in _SUFFIX_KIND:
        return JobsTopicMatch(api, _SUFFIX_KIND[parts[1]])
    return None


def _match_job(parts: list[str]) -> JobsTopicMatch | None:
    if len(parts) not in (2, 3):
        return None
    job_id, operation = parts[0], parts[1]
    try:
        job_id = validate_job_id(job_id, allow_next=operation == "get")
    except InvalidJobIdError:
        return None
    if operation == "get":
        api = JobsApi.DESCRIBE
    elif operation == "update" and job_id != NEXT_JOB_ID:
        api = JobsApi.UPDATE
    else:
        return None
    if len(parts) == 2:
        return JobsTopicMatch(api, ReplyKind.REQUEST, job_id)
    kind = _SUFFIX_KIND.get(parts[2])
    if kind is None:
        return None
    return JobsTopicMatch(api, kind, job_id)

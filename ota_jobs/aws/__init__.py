"""AWS IoT Jobs over MQTT: a sans-I/O core (topics, validation, encoders, decoders, typed rejections),
a job tracker that turns replies and notifications into job events, and ``AwsJobsClient``, the adapter
over ``ota_core``'s MQTT connection that implements the ``JobSource`` protocol.
"""

from ota_jobs.aws._core import JobsCore, JobsEvent, JobsIncoming, JobsReply, OutgoingRequest
from ota_jobs.aws._errors import (
    InvalidJobIdError,
    InvalidStatusDetailsError,
    InvalidThingNameError,
    JobsInternalError,
    JobsInvalidJsonError,
    JobsInvalidRequestError,
    JobsInvalidStateTransitionError,
    JobsInvalidTopicError,
    JobsMessageError,
    JobsRejectedError,
    JobsRequestError,
    JobsRequestThrottledError,
    JobsResourceNotFoundError,
    JobsTerminalStateReachedError,
    JobsVersionMismatchError,
    rejected_error_class,
)
from ota_jobs.aws._identifiers import (
    NEXT_JOB_ID,
    validate_client_token,
    validate_job_id,
    validate_status_details,
    validate_step_timeout,
    validate_thing_name,
)
from ota_jobs.aws._messages import (
    ExecutionReply,
    JobExecution,
    JobExecutionsChanged,
    JobExecutionState,
    JobExecutionSummary,
    NextJobExecutionChanged,
    PendingJobsReply,
    UpdateReply,
    decode_execution_reply,
    decode_notify,
    decode_notify_next,
    decode_pending_reply,
    decode_rejected,
    decode_update_reply,
    parse_timestamp,
)
from ota_jobs.aws._requests import encode_describe, encode_get_pending, encode_start_next, encode_update
from ota_jobs.aws._topics import JobsApi, JobsTopicMatch, JobsTopics, ReplyKind
from ota_jobs.aws._tracker import ActiveJob, JobTracker

__all__ = [
    "NEXT_JOB_ID",
    "ActiveJob",
    "AwsJobsClient",
    "ExecutionReply",
    "InvalidJobIdError",
    "InvalidStatusDetailsError",
    "InvalidThingNameError",
    "JobExecution",
    "JobExecutionState",
    "JobExecutionSummary",
    "JobExecutionsChanged",
    "JobTracker",
    "JobsApi",
    "JobsCore",
    "JobsEvent",
    "JobsIncoming",
    "JobsInternalError",
    "JobsInvalidJsonError",
    "JobsInvalidRequestError",
    "JobsInvalidStateTransitionError",
    "JobsInvalidTopicError",
    "JobsMessageError",
    "JobsRejectedError",
    "JobsReply",
    "JobsRequestError",
    "JobsRequestThrottledError",
    "JobsResourceNotFoundError",
    "JobsTerminalStateReachedError",
    "JobsTopicMatch",
    "JobsTopics",
    "JobsVersionMismatchError",
    "NextJobExecutionChanged",
    "OutgoingRequest",
    "PendingJobsReply",
    "ReplyKind",
    "UpdateReply",
    "decode_execution_reply",
    "decode_notify",
    "decode_notify_next",
    "decode_pending_reply",
    "decode_rejected",
    "decode_update_reply",
    "encode_describe",
    "encode_get_pending",
    "encode_start_next",
    "encode_update",
    "parse_timestamp",
    "rejected_error_class",
    "validate_client_token",
    "validate_job_id",
    "validate_status_details",
    "validate_step_timeout",
    "validate_thing_name",
]


def __getattr__(name: str) -> object:
    """Import the MQTT adapter lazily, so the sans-I/O core works without the connection module."""
    if name == "AwsJobsClient":
        from ota_jobs.aws._client import AwsJobsClient  # noqa: PLC0415

        return AwsJobsClient
    raise AttributeError(name)

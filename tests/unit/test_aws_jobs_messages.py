"""Jobs request encoders, reply/event decoders and the mapping of rejected codes to typed errors."""

from __future__ import annotations

import datetime
import json

import pytest

from ota_core.errors import OtaError
from ota_core.models import JobStatus
from ota_jobs.aws import (
    InvalidStatusDetailsError,
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
    decode_execution_reply,
    decode_notify,
    decode_notify_next,
    decode_pending_reply,
    decode_rejected,
    decode_update_reply,
    encode_describe,
    encode_get_pending,
    encode_start_next,
    encode_update,
    parse_timestamp,
)

JOB_DOC_EMPTY = b'{"clientToken":"0:testclient","timestamp":1602795143}'
JOB_DOC_A = (
    b'{"clientToken":"0:testclient","timestamp":1602795143,"execution":{"jobId":"AFR_OTA-testjob20",'
    b'"status":"QUEUED","queuedAt":1602795128,"lastUpdatedAt":1602795128,"versionNumber":1,"executionNumber":1,'
    b'"jobDocument":{"afr_ota":{"protocols":["MQTT"],"streamname":"AFR_OTA-XYZ","files":[{"filepath":"/test/demo",'
    b'"filesize":10240,"fileid":0,"certfile":"test.crt","sig-sha256-ecdsa":"MEQCIF2QDvww1G/kpRGZ8FYvQrok1bSZvXjXefR'
    b'k7sqNcyPTAiB4dvGt8fozIY5NC0vUDJ2MY42ZERYEcrbwA4n6q7vrBg=="}] }}}}'
)


def test_encoders_match_reference_vectors() -> None:
    assert encode_get_pending("token") == b'{"clientToken":"token"}'
    assert encode_get_pending() == b"{}"
    assert encode_start_next("token") == b'{"clientToken":"token"}'
    assert json.loads(encode_start_next("test_client:token_next_pending", step_timeout_in_minutes=43)) == {
        "stepTimeoutInMinutes": 43,
        "clientToken": "test_client:token_next_pending",
    }
    assert json.loads(encode_start_next(status_details={"a": "b"})) == {"statusDetails": {"a": "b"}}
    assert json.loads(encode_describe("test_client:token", execution_number=1)) == {
        "executionNumber": 1,
        "includeJobDocument": True,
        "clientToken": "test_client:token",
    }
    assert json.loads(encode_describe(include_job_document=False)) == {"includeJobDocument": False}
    update = encode_update(
        JobStatus.FAILED,
        "test_client:token_update",
        execution_number=5,
        expected_version=2,
        include_job_document=True,
        include_job_execution_state=True,
        step_timeout_in_minutes=50,
    )
    assert json.loads(update) == {
        "executionNumber": 5,
        "expectedVersion": 2,
        "includeJobDocument": True,
        "includeJobExecutionState": True,
        "status": "FAILED",
        "stepTimeoutInMinutes": 50,
        "clientToken": "test_client:token_update",
    }
    assert encode_update("IN_PROGRESS", status_details={"receive": "0/2"}) == (
        b'{"status":"IN_PROGRESS","statusDetails":{"receive":"0/2"}}'
    )


def test_expected_version_is_an_integer_and_off_by_default() -> None:
    assert "expectedVersion" not in json.loads(encode_update("SUCCEEDED"))
    assert json.loads(encode_update("SUCCEEDED", expected_version=7))["expectedVersion"] == 7


@pytest.mark.parametrize(
    "kwargs",
    [
        {"status": "QUEUED"},
        {"status": "CANCELED"},
        {"status": "nonsense"},
        {"status": "SUCCEEDED", "expected_version": -1},
        {"status": "SUCCEEDED", "expected_version": "2"},
        {"status": "SUCCEEDED", "execution_number": True},
        {"status": "SUCCEEDED", "step_timeout_in_minutes": 0},
        {"status": "SUCCEEDED", "client_token": "has space"},
    ],
)
def test_update_refuses_invalid_requests(kwargs: dict[str, object]) -> None:
    with pytest.raises(JobsRequestError):
        encode_update(**kwargs)  # type: ignore[arg-type]


def test_update_refuses_bad_status_details() -> None:
    with pytest.raises(InvalidStatusDetailsError):
        encode_update("IN_PROGRESS", status_details={"k": "x" * 1025})


def test_decode_start_next_with_and_without_job() -> None:
    empty = decode_execution_reply(JOB_DOC_EMPTY)
    assert empty.execution is None
    assert empty.client_token == "0:testclient"
    assert empty.timestamp == datetime.datetime(2020, 10, 15, 20, 52, 23, tzinfo=datetime.UTC)
    reply = decode_execution_reply(JOB_DOC_A)
    execution = reply.execution
    assert execution is not None
    assert execution.job_id == "AFR_OTA-testjob20"
    assert execution.status is JobStatus.QUEUED
    assert execution.version_number == 1
    assert execution.execution_number == 1
    assert execution.job_document is not None
    assert execution.job_document["afr_ota"]["streamname"] == "AFR_OTA-XYZ"


def test_timestamps_in_seconds_or_milliseconds() -> None:
    seconds = parse_timestamp(1489096123)
    millis = parse_timestamp(1489096123309)
    assert seconds is not None
    assert millis is not None
    assert millis - seconds == datetime.timedelta(milliseconds=309)
    assert parse_timestamp(None) is None
    for bad in ("1", -1, float("nan"), True, 10**30):
        with pytest.raises(JobsMessageError):
            parse_timestamp(bad)


def test_document_as_string_is_tolerated() -> None:
    reply = decode_execution_reply(b'{"execution":{"jobId":"j","status":"IN_PROGRESS","jobDocument":"{\\"a\\":1}"}}')
    assert reply.execution is not None
    assert reply.execution.job_document == {"a": 1}


def test_decode_pending_and_update_and_notify() -> None:
    pending = decode_pending_reply(
        b'{"inProgressJobs":[{"jobId":"a","queuedAt":1,"versionNumber":2,"executionNumber":1}],'
        b'"queuedJobs":[{"jobId":"b"}],"timestamp":5,"clientToken":"t"}'
    )
    assert [s.job_id for s in pending.in_progress] == ["a"]
    assert [s.job_id for s in pending.queued] == ["b"]
    update = decode_update_reply(
        b'{"executionState":{"status":"IN_PROGRESS","statusDetails":{"k":"v"},"versionNumber":3},'
        b'"jobDocument":{"x":1},"timestamp":1,"clientToken":"c"}'
    )
    assert update.execution_state is not None
    assert update.execution_state.version_number == 3
    assert update.job_document == {"x": 1}
    notify = decode_notify(b'{"jobs":{"QUEUED":[{"jobId":"q"}],"IN_PROGRESS":[]},"timestamp":9}')
    assert [s.job_id for s in notify.jobs[JobStatus.QUEUED]] == ["q"]
    assert notify.jobs[JobStatus.IN_PROGRESS] == ()
    assert decode_notify(b'{"timestamp":9}').jobs == {}
    nothing = decode_notify_next(b'{"timestamp":9}')
    assert nothing.execution is None


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("InvalidTopic", JobsInvalidTopicError),
        ("InvalidJson", JobsInvalidJsonError),
        ("InvalidRequest", JobsInvalidRequestError),
        ("InvalidStateTransition", JobsInvalidStateTransitionError),
        ("ResourceNotFound", JobsResourceNotFoundError),
        ("VersionMismatch", JobsVersionMismatchError),
        ("InternalError", JobsInternalError),
        ("RequestThrottled", JobsRequestThrottledError),
        ("TerminalStateReached", JobsTerminalStateReachedError),
        ("SomethingNew", JobsRejectedError),
    ],
)
def test_all_rejected_codes_map_to_typed_errors(code: str, cls: type[JobsRejectedError]) -> None:
    payload = json.dumps(
        {
            "code": code,
            "message": "nope",
            "clientToken": "c1",
            "timestamp": 1,
            "executionState": {"status": "IN_PROGRESS", "statusDetails": {}, "versionNumber": 4},
        }
    ).encode()
    error = decode_rejected(payload)
    assert type(error) is cls
    assert error.service_code == code
    assert error.client_token == "c1"
    assert error.execution_state is not None
    assert error.execution_state.version_number == 4
    assert error.retryable == (code in ("InternalError", "RequestThrottled"))
    assert "nope" in str(error)


@pytest.mark.parametrize(
    "payload",
    [
        b"clearlyNotJson",
        b"\xff\xfe",
        b"[]",
        b'"string"',
        b'{"execution":[]}',
        b'{"execution":{"status":"QUEUED"}}',
        b'{"execution":{"jobId":5,"status":"QUEUED"}}',
        b'{"execution":{"jobId":"j","status":"WAITING"}}',
        b'{"execution":{"jobId":"j","status":"QUEUED","versionNumber":"1"}}',
        b'{"execution":{"jobId":"j","status":"QUEUED","statusDetails":{"a":1}}}',
        b'{"execution":{"jobId":"j","status":"QUEUED","jobDocument":[1]}}',
        b'{"execution":{"jobId":"j","status":"QUEUED","jobDocument":"not json"}}',
        b'{"execution":{"jobId":"j","status":"QUEUED"},"timestamp":"x"}',
        b'{"clientToken":5}',
        b"[" * 5000 + b"]" * 5000,
        b'{"a":"' + b"x" * (128 * 1024) + b'"}',
    ],
)
def test_malformed_execution_replies(payload: bytes) -> None:
    with pytest.raises(JobsMessageError):
        decode_execution_reply(payload)


@pytest.mark.parametrize(
    ("decoder", "payload"),
    [
        (decode_pending_reply, b'{"inProgressJobs":{}}'),
        (decode_pending_reply, b'{"queuedJobs":[5]}'),
        (decode_notify, b'{"jobs":{"WAITING":[]}}'),
        (decode_notify, b'{"jobs":[]}'),
        (decode_rejected, b'{"message":"no code"}'),
        (decode_rejected, b'{"code":"X","executionState":{"status":"BAD"}}'),
        (decode_update_reply, b'{"executionState":"x"}'),
    ],
)
def test_malformed_other_payloads(decoder: object, payload: bytes) -> None:
    with pytest.raises(OtaError):
        decoder(payload)  # type: ignore[operator]


def test_non_bytes_payload() -> None:
    with pytest.raises(JobsMessageError):
        decode_notify("text")  # type: ignore[arg-type]

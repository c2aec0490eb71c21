"""The Jobs client against the AWS stand-in over a real mosquitto, jobs created through boto3."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ota_cloud.aws import AwsIotStandIn, PresignRequest
from ota_cloud.broker import MosquittoBroker
from ota_core.models import JobEventKind, JobStatus, StatusReport
from ota_core.mqtt import MqttConnection
from ota_jobs.aws import (
    AwsJobsClient,
    JobsInvalidStateTransitionError,
    JobsResourceNotFoundError,
    JobsTerminalStateReachedError,
    JobsVersionMismatchError,
)
from ota_jobs.parsers import NoParserAcceptedError, default_parser_chain, rejection_report
from tests.aws_jobs_fixtures import (  # noqa: F401 - fixtures are found by their registered names
    EventLog,
    aws_standin_fixture,
    create_job,
    device_connection_fixture,
    iot_fixture,
)

pytestmark = pytest.mark.broker

AFR_DOC: dict[str, Any] = {
    "afr_ota": {
        "protocols": ["MQTT"],
        "streamname": "AFR_OTA-stream",
        "files": [{"filepath": "/fw", "filesize": 1024, "fileid": 0, "certfile": "c.crt", "sig-sha256-ecdsa": "c2ln"}],
    }
}


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


def execution_status(iot: Any, job_id: str, thing: str) -> str:
    return str(iot.describe_job_execution(jobId=job_id, thingName=thing)["execution"]["status"])


def make_device(
    device_connection: Callable[[str], MqttConnection], thing: str, **options: Any
) -> tuple[AwsJobsClient, EventLog]:
    client = AwsJobsClient(device_connection(f"{thing}-client"), thing, request_timeout=5.0, **options)
    log = EventLog()
    client.start(log)
    return client, log


def test_start_next_progress_succeeded(iot: Any, device_connection: Callable[[str], MqttConnection]) -> None:
    iot.create_thing(thingName="dev-1")
    client, log = make_device(device_connection, "dev-1")
    client.request_next()
    assert log.next().kind is JobEventKind.NOTHING_PENDING
    create_job(iot, "job-1", ["dev-1"], AFR_DOC)
    event = log.next()
    assert event.kind is JobEventKind.NEW
    assert event.job_id == "job-1"
    assert event.document == AFR_DOC
    plan = default_parser_chain().parse(event)
    assert plan.files[0].size == 1024
    reply = client.start_next(status_details={"receive": "0/4"}, step_timeout_in_minutes=10)
    assert reply.execution is not None
    assert reply.execution.status is JobStatus.IN_PROGRESS
    assert reply.execution.version_number == 2
    changed = log.next()
    assert (changed.kind, changed.attributes["status"]) == (JobEventKind.CHANGED, "IN_PROGRESS")
    for done in range(1, 4):
        client.report(StatusReport("job-1", JobStatus.IN_PROGRESS, {"receive": f"{done}/4"}))
    assert client.tracker.version_of("job-1") == 5
    client.report(StatusReport("job-1", JobStatus.SUCCEEDED, {"reason": "accepted v1.0.1"}))
    assert execution_status(iot, "job-1", "dev-1") == "SUCCEEDED"
    execution = iot.describe_job_execution(jobId="job-1", thingName="dev-1")["execution"]
    assert execution["statusDetails"]["detailsMap"] == {"reason": "accepted v1.0.1"}
    assert execution["versionNumber"] == 6
    assert iot.describe_job(jobId="job-1")["job"]["status"] == "COMPLETED"
    assert log.next().kind is JobEventKind.NOTHING_PENDING
    with pytest.raises(JobsTerminalStateReachedError):
        client.describe("job-1")
    client.stop()


def test_rejected_when_no_parser_accepts(iot: Any, device_connection: Callable[[str], MqttConnection]) -> None:
    iot.create_thing(thingName="dev-2")
    create_job(iot, "job-custom", ["dev-2"], {"custom_job": "test"})
    client, log = make_device(device_connection, "dev-2")
    client.request_next()
    event = log.next()
    assert event.kind is JobEventKind.NEW
    with pytest.raises(NoParserAcceptedError) as caught:
        default_parser_chain().parse(event)
    client.report(rejection_report("job-custom", caught.value))
    execution = iot.describe_job_execution(jobId="job-custom", thingName="dev-2")["execution"]
    assert execution["status"] == "REJECTED"
    assert execution["statusDetails"]["detailsMap"]["code"] == "JOB_DOCUMENT_UNSUPPORTED"


def test_failed_after_in_progress_and_no_rejected(iot: Any, device_connection: Callable[[str], MqttConnection]) -> None:
    iot.create_thing(thingName="dev-3")
    create_job(iot, "job-f", ["dev-3"], AFR_DOC)
    client, _log = make_device(device_connection, "dev-3", use_start_next=True)
    client.start_next()
    with pytest.raises(JobsInvalidStateTransitionError) as caught:
        client.report(StatusReport("job-f", JobStatus.REJECTED, {"reason": "too late"}))
    assert caught.value.execution_state is not None
    assert caught.value.execution_state.status is JobStatus.IN_PROGRESS
    client.report(StatusReport("job-f", JobStatus.FAILED, {"reason": "rejected: 0x1"}))
    assert execution_status(iot, "job-f", "dev-3") == "FAILED"
    with pytest.raises(JobsInvalidStateTransitionError):
        client.report(StatusReport("job-f", JobStatus.IN_PROGRESS))
    with pytest.raises(JobsResourceNotFoundError):
        client.update("no-such-job", JobStatus.IN_PROGRESS)


def test_cancel_while_in_progress(iot: Any, device_connection: Callable[[str], MqttConnection]) -> None:
    iot.create_thing(thingName="dev-4")
    create_job(iot, "job-c", ["dev-4"], AFR_DOC)
    client, log = make_device(device_connection, "dev-4", use_start_next=True)
    client.request_next()
    event = log.next()
    assert (event.kind, event.job_id) == (JobEventKind.NEW, "job-c")
    assert event.attributes["status"] == "IN_PROGRESS"
    iot.cancel_job(jobId="job-c", force=False)  # an IN_PROGRESS execution survives a plain cancel
    assert execution_status(iot, "job-c", "dev-4") == "IN_PROGRESS"
    iot.cancel_job(jobId="job-c", force=True, comment="stop")
    cancelled = log.next()
    assert (cancelled.kind, cancelled.job_id) == (JobEventKind.CANCELLED, "job-c")
    assert execution_status(iot, "job-c", "dev-4") == "CANCELED"
    with pytest.raises(JobsInvalidStateTransitionError):
        client.report(StatusReport("job-c", JobStatus.SUCCEEDED))


def test_version_mismatch_with_stale_expected_version(
    iot: Any, device_connection: Callable[[str], MqttConnection]
) -> None:
    iot.create_thing(thingName="dev-5")
    create_job(iot, "job-v", ["dev-5"], AFR_DOC)
    client, log = make_device(device_connection, "dev-5", use_expected_version=True)
    client.request_next()
    assert log.next().attributes["version_number"] == 1
    client.report(StatusReport("job-v", JobStatus.IN_PROGRESS, {"step": "download"}))  # sends expectedVersion 1
    assert client.tracker.version_of("job-v") == 2
    with pytest.raises(JobsVersionMismatchError) as caught:
        client.update("job-v", JobStatus.IN_PROGRESS, expected_version=1)
    assert caught.value.execution_state is not None
    assert caught.value.execution_state.version_number == 2
    client.report(StatusReport("job-v", JobStatus.SUCCEEDED))
    assert execution_status(iot, "job-v", "dev-5") == "SUCCEEDED"


def test_step_timeout(iot: Any, device_connection: Callable[[str], MqttConnection]) -> None:
    iot.create_thing(thingName="dev-6")
    create_job(iot, "job-t", ["dev-6"], AFR_DOC)
    client, log = make_device(device_connection, "dev-6")
    reply = client.start_next(step_timeout_in_minutes=1)
    assert reply.execution is not None
    assert reply.execution.approximate_seconds_before_timed_out is not None
    assert log.next().kind is JobEventKind.NEW
    event = log.next()
    assert (event.kind, event.job_id) == (JobEventKind.CANCELLED, "job-t")
    assert execution_status(iot, "job-t", "dev-6") == "TIMED_OUT"
    with pytest.raises(JobsInvalidStateTransitionError):
        client.report(StatusReport("job-t", JobStatus.SUCCEEDED))


def test_job_timeout_config(iot: Any, device_connection: Callable[[str], MqttConnection]) -> None:
    iot.create_thing(thingName="dev-7")
    create_job(iot, "job-jt", ["dev-7"], AFR_DOC, timeoutConfig={"inProgressTimeoutInMinutes": 1})
    client, _log = make_device(device_connection, "dev-7")
    client.start_next()
    wait_until(lambda: execution_status(iot, "job-jt", "dev-7") == "TIMED_OUT")


def test_start_next_order_and_pending(iot: Any, device_connection: Callable[[str], MqttConnection]) -> None:
    iot.create_thing(thingName="dev-8")
    for name in ("job-a", "job-b", "job-c2"):
        create_job(iot, name, ["dev-8"], AFR_DOC)
    client, _log = make_device(device_connection, "dev-8")
    pending = client.get_pending()
    assert [s.job_id for s in pending.queued] == ["job-a", "job-b", "job-c2"]
    first = client.start_next()
    assert first.execution is not None
    assert first.execution.job_id == "job-a"
    again = client.start_next()  # the IN_PROGRESS one comes first
    assert again.execution is not None
    assert again.execution.job_id == "job-a"
    assert again.execution.version_number == 2
    client.report(StatusReport("job-a", JobStatus.SUCCEEDED))
    nxt = client.start_next()
    assert nxt.execution is not None
    assert nxt.execution.job_id == "job-b"
    pending = client.get_pending()
    assert [s.job_id for s in pending.in_progress] == ["job-b"]
    assert [s.job_id for s in pending.queued] == ["job-c2"]


def test_presigned_placeholder_resolved_on_delivery(
    mosquitto: MosquittoBroker, tmp_path: Path, device_connection: Callable[[str], MqttConnection]
) -> None:
    seen: list[PresignRequest] = []

    def resolver(request: PresignRequest) -> str:
        seen.append(request)
        return f"https://127.0.0.1/presigned/{request.thing_name}?expires={request.expires_in_sec}"

    with AwsIotStandIn(mosquitto.url, tmp_path / "state", presigned_url_resolver=resolver) as standin:
        iot = standin.boto3_client()
        iot.create_thing(thingName="dev-9")
        document = {
            "ota_http": {
                "schema_version": 1,
                "files": [
                    {
                        "name": "fw.bin",
                        "url": "${aws:iot:s3-presigned-url:https://s3.amazonaws.com/bucket/fw.bin}",
                        "size": 10,
                        "sha256": "00" * 32,
                        "signature": {"hash": "sha256", "algorithm": "ecdsa", "value": "c2ln"},
                    }
                ],
            }
        }
        create_job(
            iot,
            "job-p",
            ["dev-9"],
            document,
            presignedUrlConfig={"roleArn": "arn:aws:iam::123456789012:role/ota", "expiresInSec": 600},
        )
        client, log = make_device(device_connection, "dev-9")
        client.request_next()
        event = log.next()
        plan = default_parser_chain().parse(event)
        assert plan.files[0].locations[0].uri == "https://127.0.0.1/presigned/dev-9?expires=600"
        assert seen[0].url == "https://s3.amazonaws.com/bucket/fw.bin"
        assert json.loads(iot.get_job_document(jobId="job-p")["document"]) == document  # unresolved at rest


def test_restart_loses_no_job(
    mosquitto: MosquittoBroker, tmp_path: Path, device_connection: Callable[[str], MqttConnection]
) -> None:
    state = tmp_path / "state"
    with AwsIotStandIn(mosquitto.url, state) as standin:
        iot = standin.boto3_client()
        iot.create_thing(thingName="dev-10")
        create_job(iot, "job-r", ["dev-10"], AFR_DOC)
        client, _log = make_device(device_connection, "dev-10")
        client.start_next()
    with AwsIotStandIn(mosquitto.url, state) as standin:
        iot = standin.boto3_client()
        assert execution_status(iot, "job-r", "dev-10") == "IN_PROGRESS"
        client.report(StatusReport("job-r", JobStatus.SUCCEEDED))
        assert execution_status(iot, "job-r", "dev-10") == "SUCCEEDED"


def test_bad_and_foreign_messages_are_ignored(
    aws_standin: AwsIotStandIn, iot: Any, device_connection: Callable[[str], MqttConnection]
) -> None:
    iot.create_thing(thingName="dev-11")
    _client, log = make_device(device_connection, "dev-11")
    attacker = device_connection("attacker")
    topic = "$aws/things/dev-11/jobs"
    attacker.publish(f"{topic}/notify-next", b"not json")
    attacker.publish(f"{topic}/notify-next", b'{"execution":{"jobId":"x"}}')
    attacker.publish(f"{topic}/start-next/accepted", b'{"clientToken":"someone-else:1","timestamp":1}')
    attacker.publish("$aws/things/other/jobs/notify-next", b'{"execution":{"jobId":"x","status":"QUEUED"}}')
    assert log.empty_for(0.5)
    create_job(iot, "job-x", ["dev-11"], AFR_DOC)
    event = log.next()
    assert (event.kind, event.job_id) == (JobEventKind.NEW, "job-x")
    # a replayed notify-next for the same job and version changes nothing
    replay = {
        "timestamp": int(time.time()),
        "execution": {"jobId": "job-x", "status": "QUEUED", "versionNumber": 1, "jobDocument": AFR_DOC},
    }
    attacker.publish(f"{topic}/notify-next", json.dumps(replay).encode())
    # an out-of-order one (older timestamp) is ignored as well
    replay["timestamp"] = 1
    replay["execution"]["versionNumber"] = 9  # type: ignore[index]
    attacker.publish(f"{topic}/notify-next", json.dumps(replay).encode())
    assert log.empty_for(0.5)


def test_job_created_while_broker_was_down_arrives_after_reconnect(
    mosquitto: MosquittoBroker, iot: Any, device_connection: Callable[[str], MqttConnection]
) -> None:
    iot.create_thing(thingName="dev-12")
    _client, log = make_device(device_connection, "dev-12")
    mosquitto.stop()
    create_job(iot, "job-offline", ["dev-12"], AFR_DOC)  # the stand-in cannot notify anyone now
    mosquitto.start()
    event = log.next(timeout=30)  # the client asks for the next job again once reconnected
    assert (event.kind, event.job_id) == (JobEventKind.NEW, "job-offline")

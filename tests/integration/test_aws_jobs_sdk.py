"""The official AWS IoT device SDK for Python (``awsiotsdk``) against the AWS stand-in.

This proves the stand-in speaks AWS's Jobs protocol and not only modular-ota's: the SDK's jobs client
(its own topics, its own JSON models) drives a whole life cycle over the real broker. Skipped only when
the ``awsiotsdk`` package is not installed (it is in the ``test`` extra).
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ota_cloud.aws import AwsIotStandIn
from ota_cloud.broker import MosquittoBroker
from tests.aws_jobs_fixtures import aws_standin_fixture, create_job, iot_fixture  # noqa: F401 - fixtures

awsiot = pytest.importorskip("awsiot", reason="awsiotsdk (the official AWS IoT device SDK) is not installed")
from awscrt import io, mqtt  # noqa: E402
from awsiot import iotjobs  # noqa: E402

pytestmark = pytest.mark.broker
THING = "sdk-thing"
TIMEOUT = 10.0


class Inbox:
    """Collects what the SDK hands its callbacks, by name."""

    def __init__(self) -> None:
        self.items: queue.Queue[tuple[str, Any]] = queue.Queue()

    def callback(self, name: str) -> Callable[[Any], None]:
        return lambda item: self.items.put((name, item))

    def next(self, expected: str) -> Any:
        name, item = self.items.get(timeout=TIMEOUT)
        assert name == expected, (name, item)
        return item


@pytest.fixture
def sdk(mosquitto: MosquittoBroker, aws_standin: AwsIotStandIn) -> Iterator[tuple[Any, Inbox]]:
    """An SDK ``IotJobsClient`` on a plain-TCP awscrt connection, subscribed to every reply and event."""
    elg = io.EventLoopGroup(1)
    bootstrap = io.ClientBootstrap(elg, io.DefaultHostResolver(elg))
    connection = mqtt.Connection(
        client=mqtt.Client(bootstrap, None),
        host_name=mosquitto.host,
        port=mosquitto.port,
        client_id=THING,
        clean_session=True,
        keep_alive_secs=30,
    )
    connection.connect().result(TIMEOUT)
    client = iotjobs.IotJobsClient(connection)
    inbox = Inbox()
    qos = mqtt.QoS.AT_LEAST_ONCE
    subscriptions = [
        (
            client.subscribe_to_next_job_execution_changed_events,
            iotjobs.NextJobExecutionChangedSubscriptionRequest(thing_name=THING),
            "notify-next",
        ),
        (
            client.subscribe_to_job_executions_changed_events,
            iotjobs.JobExecutionsChangedSubscriptionRequest(thing_name=THING),
            "notify",
        ),
        (
            client.subscribe_to_start_next_pending_job_execution_accepted,
            iotjobs.StartNextPendingJobExecutionSubscriptionRequest(thing_name=THING),
            "start-next",
        ),
        (
            client.subscribe_to_start_next_pending_job_execution_rejected,
            iotjobs.StartNextPendingJobExecutionSubscriptionRequest(thing_name=THING),
            "rejected",
        ),
        (
            client.subscribe_to_get_pending_job_executions_accepted,
            iotjobs.GetPendingJobExecutionsSubscriptionRequest(thing_name=THING),
            "pending",
        ),
        (
            client.subscribe_to_describe_job_execution_accepted,
            iotjobs.DescribeJobExecutionSubscriptionRequest(thing_name=THING, job_id="+"),
            "describe",
        ),
        (
            client.subscribe_to_describe_job_execution_rejected,
            iotjobs.DescribeJobExecutionSubscriptionRequest(thing_name=THING, job_id="+"),
            "rejected",
        ),
        (
            client.subscribe_to_update_job_execution_accepted,
            iotjobs.UpdateJobExecutionSubscriptionRequest(thing_name=THING, job_id="+"),
            "update",
        ),
        (
            client.subscribe_to_update_job_execution_rejected,
            iotjobs.UpdateJobExecutionSubscriptionRequest(thing_name=THING, job_id="+"),
            "rejected",
        ),
    ]
    for subscribe, request, name in subscriptions:
        future, _ = subscribe(request, qos, inbox.callback(name))
        future.result(TIMEOUT)
    try:
        yield client, inbox
    finally:
        connection.disconnect().result(TIMEOUT)


def _update(client: Any, job_id: str, status: str, **options: Any) -> None:
    request = iotjobs.UpdateJobExecutionRequest(thing_name=THING, job_id=job_id, status=status, **options)
    client.publish_update_job_execution(request, mqtt.QoS.AT_LEAST_ONCE).result(TIMEOUT)


def test_sdk_full_life_cycle(sdk: tuple[Any, Inbox], iot: Any) -> None:
    client, inbox = sdk
    qos = mqtt.QoS.AT_LEAST_ONCE
    iot.create_thing(thingName=THING)

    client.publish_describe_job_execution(
        iotjobs.DescribeJobExecutionRequest(thing_name=THING, job_id="$next", client_token="d0"), qos
    ).result(TIMEOUT)
    nothing = inbox.next("describe")
    assert nothing.execution is None
    assert nothing.client_token == "d0"

    create_job(iot, "sdk-job", [THING], {"operation": "update", "version": "2.0.0"})
    first = {name: item for name, item in (inbox.items.get(timeout=TIMEOUT) for _ in range(2))}
    assert first["notify-next"].execution.job_id == "sdk-job"
    assert first["notify-next"].execution.job_document == {"operation": "update", "version": "2.0.0"}
    assert first["notify"].jobs["QUEUED"][0].job_id == "sdk-job"

    client.publish_get_pending_job_executions(
        iotjobs.GetPendingJobExecutionsRequest(thing_name=THING, client_token="p1"), qos
    ).result(TIMEOUT)
    pending = inbox.next("pending")
    assert [job.job_id for job in pending.queued_jobs] == ["sdk-job"]
    assert pending.in_progress_jobs == []

    client.publish_start_next_pending_job_execution(
        iotjobs.StartNextPendingJobExecutionRequest(
            thing_name=THING, client_token="s1", step_timeout_in_minutes=30, status_details={"step": "download"}
        ),
        qos,
    ).result(TIMEOUT)
    started = inbox.next("start-next")
    assert started.client_token == "s1"
    assert started.execution.status == "IN_PROGRESS"
    assert started.execution.version_number == 2
    assert started.execution.status_details == {"step": "download"}
    assert inbox.next("notify").jobs["IN_PROGRESS"][0].job_id == "sdk-job"

    _update(
        client,
        "sdk-job",
        "IN_PROGRESS",
        expected_version=2,
        include_job_execution_state=True,
        status_details={"receive": "1/2"},
        client_token="u1",
    )
    progress = inbox.next("update")
    assert progress.client_token == "u1"
    assert progress.execution_state.version_number == 3

    _update(client, "sdk-job", "SUCCEEDED", expected_version=2, client_token="u2")
    mismatch = inbox.next("rejected")
    assert mismatch.code == "VersionMismatch"
    assert mismatch.client_token == "u2"
    assert mismatch.execution_state.version_number == 3

    _update(client, "sdk-job", "SUCCEEDED", expected_version=3, include_job_document=True, client_token="u3")
    done = inbox.next("update")
    assert done.job_document == {"operation": "update", "version": "2.0.0"}
    after = {name: item for name, item in (inbox.items.get(timeout=TIMEOUT) for _ in range(2))}
    assert after["notify-next"].execution is None
    assert after["notify"].jobs == {}

    _update(client, "sdk-job", "IN_PROGRESS", client_token="u4")
    late = inbox.next("rejected")
    assert late.code == "InvalidStateTransition"
    assert late.execution_state.status == "SUCCEEDED"
    assert iot.describe_job_execution(jobId="sdk-job", thingName=THING)["execution"]["status"] == "SUCCEEDED"


def test_sdk_sees_cancellation_and_rejections(sdk: tuple[Any, Inbox], iot: Any) -> None:
    client, inbox = sdk
    qos = mqtt.QoS.AT_LEAST_ONCE
    iot.create_thing(thingName=THING)
    create_job(iot, "sdk-cancel", [THING], {"x": 1})
    inbox.items.get(timeout=TIMEOUT)
    inbox.items.get(timeout=TIMEOUT)
    iot.cancel_job(jobId="sdk-cancel")
    cancelled = {name: item for name, item in (inbox.items.get(timeout=TIMEOUT) for _ in range(2))}
    assert cancelled["notify-next"].execution is None

    client.publish_describe_job_execution(
        iotjobs.DescribeJobExecutionRequest(thing_name=THING, job_id="no-such-job", client_token="d1"), qos
    ).result(TIMEOUT)
    missing = inbox.next("rejected")
    assert missing.code == "ResourceNotFound"
    _update(client, "sdk-cancel", "SUCCEEDED", client_token="u9")
    assert inbox.next("rejected").code == "InvalidStateTransition"


def test_sdk_v2_request_response_client(mosquitto: MosquittoBroker, iot: Any) -> None:
    """The SDK's newer client correlates replies itself (per-request subscriptions, clientToken)."""
    from awscrt import mqtt_request_response

    iot.create_thing(thingName="sdk-v2")
    elg = io.EventLoopGroup(1)
    bootstrap = io.ClientBootstrap(elg, io.DefaultHostResolver(elg))
    connection = mqtt.Connection(
        client=mqtt.Client(bootstrap, None),
        host_name=mosquitto.host,
        port=mosquitto.port,
        client_id="sdk-v2",
        clean_session=True,
        keep_alive_secs=30,
    )
    connection.connect().result(TIMEOUT)
    try:
        options = mqtt_request_response.ClientOptions(
            max_request_response_subscriptions=3, max_streaming_subscriptions=2, operation_timeout_in_seconds=10
        )
        client = iotjobs.IotJobsClientV2(connection, options)
        events: queue.Queue[Any] = queue.Queue()
        subscribed: queue.Queue[Any] = queue.Queue()
        stream = client.create_next_job_execution_changed_stream(
            iotjobs.NextJobExecutionChangedSubscriptionRequest(thing_name="sdk-v2"),
            awsiot.ServiceStreamOptions(
                incoming_event_listener=events.put, subscription_status_listener=subscribed.put
            ),
        )
        stream.open()
        subscribed.get(timeout=TIMEOUT)
        create_job(iot, "v2-job", ["sdk-v2"], {"v": 2})
        assert events.get(timeout=TIMEOUT).execution.job_id == "v2-job"
        started = client.start_next_pending_job_execution(
            iotjobs.StartNextPendingJobExecutionRequest(thing_name="sdk-v2")
        ).result(TIMEOUT)
        assert (started.execution.job_id, started.execution.version_number) == ("v2-job", 2)
        updated = client.update_job_execution(
            iotjobs.UpdateJobExecutionRequest(
                thing_name="sdk-v2",
                job_id="v2-job",
                status="SUCCEEDED",
                expected_version=2,
                include_job_execution_state=True,
            )
        ).result(TIMEOUT)
        assert updated.execution_state.status == "SUCCEEDED"
        with pytest.raises(awsiot.V2ServiceException) as caught:
            client.update_job_execution(
                iotjobs.UpdateJobExecutionRequest(thing_name="sdk-v2", job_id="v2-job", status="IN_PROGRESS")
            ).result(TIMEOUT)
        assert caught.value.modeled_error.code == "InvalidStateTransition"
        assert events.get(timeout=TIMEOUT).execution is None
    finally:
        connection.disconnect().result(TIMEOUT)

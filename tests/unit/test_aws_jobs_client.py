"""The Jobs client adapter's own logic, driven through an in-memory stand-in for the MQTT connection.

The adapter is tested against the real broker and stand-in in tests/integration; this file covers the
paths a real service rarely produces (rejected answers to asynchronous requests, failed subscriptions,
replies on unexpected topics, reconnect handling) without any I/O.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from ota_core.errors import NotConnectedError
from ota_core.models import JobEvent, JobEventKind, JobStatus, StatusReport
from ota_core.mqtt import MqttMessage, Subscription, topic_matches
from ota_jobs.aws import AwsJobsClient, JobsMessageError, JobsRequestError

T = "$aws/things/dev/jobs"


class FakeConnection:
    """Just enough of MqttConnection: records publishes, answers requests from a script."""

    def __init__(self) -> None:
        self.subscriptions: list[Subscription] = []
        self.published: list[tuple[str, bytes]] = []
        self.listeners: list[Callable[[bool], None]] = []
        self.replies: list[MqttMessage] = []
        self.fail_subscribe_after: int | None = None
        self.fail_unsubscribe = False

    def subscribe(self, topic_filter: str, handler: Any, qos: int = 1) -> Subscription:
        if self.fail_subscribe_after is not None and len(self.subscriptions) >= self.fail_subscribe_after:
            raise NotConnectedError("down")
        subscription = Subscription(topic_filter=topic_filter, qos=qos, handler=handler)
        self.subscriptions.append(subscription)
        return subscription

    def add_reply_route(self, topic_filter: str, token_of: Any, qos: int = 1) -> Subscription:
        return self.subscribe(topic_filter, None, qos)

    def unsubscribe(self, subscription: Subscription) -> None:
        if self.fail_unsubscribe:
            raise NotConnectedError("down")
        self.subscriptions.remove(subscription)

    def add_connection_listener(self, listener: Callable[[bool], None]) -> None:
        self.listeners.append(listener)

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False, **_: Any) -> None:
        self.published.append((topic, bytes(payload)))

    def request(self, topic: str, payload: bytes, *, token: str, timeout: float | None = None) -> MqttMessage:
        self.published.append((topic, bytes(payload)))
        return self.replies.pop(0)

    def deliver(self, topic: str, body: dict[str, Any] | bytes) -> None:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        for subscription in list(self.subscriptions):
            if subscription.handler is not None and topic_matches(subscription.topic_filter, topic):
                subscription.handler(MqttMessage(topic=topic, payload=payload))

    def last_token(self) -> str:
        return str(json.loads(self.published[-1][1])["clientToken"])


@pytest.fixture
def setup() -> tuple[AwsJobsClient, FakeConnection, list[JobEvent]]:
    connection = FakeConnection()
    client = AwsJobsClient(connection, "dev")  # type: ignore[arg-type]
    events: list[JobEvent] = []
    client.start(events.append)
    return client, connection, events


def test_properties_and_restart(setup: tuple[AwsJobsClient, FakeConnection, list[JobEvent]]) -> None:
    client, connection, events = setup
    assert client.thing_name == "dev"
    assert client.core.thing_name == "dev"
    count = len(connection.subscriptions)
    other: list[JobEvent] = []
    client.start(other.append)  # a second start only replaces the callback
    assert len(connection.subscriptions) == count
    connection.deliver(f"{T}/notify-next", {"execution": {"jobId": "j", "status": "QUEUED", "versionNumber": 1}})
    assert [e.kind for e in other] == [JobEventKind.NEW]
    assert events == []
    connection.fail_unsubscribe = True
    client.stop()  # failures to unsubscribe are logged, not raised
    assert client.tracker.active is not None


def test_async_answers(setup: tuple[AwsJobsClient, FakeConnection, list[JobEvent]]) -> None:
    client, connection, events = setup
    client.request_next()
    topic, _ = connection.published[-1]
    assert topic == f"{T}/$next/get"
    token = connection.last_token()
    connection.deliver(f"{T}/$next/get/rejected", {"code": "RequestThrottled", "clientToken": token})
    assert events == []
    connection.deliver(f"{T}/$next/get/accepted", {"clientToken": "not-ours", "timestamp": 1})
    connection.deliver(f"{T}/$next/get/accepted", {"timestamp": 1})
    assert events == []
    client.request_next()
    token = connection.last_token()
    connection.deliver(f"{T}/$next/get/accepted", {"clientToken": token, "timestamp": 1})
    assert [e.kind for e in events] == [JobEventKind.NOTHING_PENDING]
    for _ in range(40):  # the memory of unanswered requests is bounded
        client.request_next()
    connection.deliver(f"{T}/notify-next", b"garbage")
    connection.deliver("$aws/things/other/jobs/notify-next", {"execution": {"jobId": "x", "status": "QUEUED"}})
    assert len(events) == 1


def test_reconnect_asks_again(setup: tuple[AwsJobsClient, FakeConnection, list[JobEvent]]) -> None:
    client, connection, _events = setup
    before = len(connection.published)
    connection.listeners[0](False)
    assert len(connection.published) == before
    connection.listeners[0](True)
    assert connection.published[-1][0] == f"{T}/$next/get"

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise NotConnectedError("down")

    connection.publish = broken  # type: ignore[method-assign]
    connection.listeners[0](True)  # logged, not raised
    client.stop()
    connection.listeners[0](True)


def test_start_next_mode_and_sync_calls(setup: tuple[AwsJobsClient, FakeConnection, list[JobEvent]]) -> None:
    _, connection, _ = setup
    client = AwsJobsClient(connection, "dev", use_start_next=True, step_timeout_in_minutes=5)  # type: ignore[arg-type]
    client.request_next()
    topic, payload = connection.published[-1]
    assert topic == f"{T}/start-next"
    assert json.loads(payload)["stepTimeoutInMinutes"] == 5
    connection.replies.append(MqttMessage(f"{T}/j/get/accepted", b'{"execution":{"jobId":"j","status":"QUEUED"}}'))
    assert client.describe("j").execution is not None
    connection.replies.append(MqttMessage(f"{T}/notify", b"{}"))
    with pytest.raises(JobsMessageError):
        client.get_pending()
    connection.replies.append(MqttMessage(f"{T}/j/update/accepted", b"{}"))
    client.update("j", "IN_PROGRESS")
    assert json.loads(connection.published[-1][1])["stepTimeoutInMinutes"] == 5
    with pytest.raises(JobsRequestError):
        client.report(StatusReport("j", JobStatus.CANCELED))


def test_failed_subscription_cleans_up() -> None:
    connection = FakeConnection()
    connection.fail_subscribe_after = 3
    client = AwsJobsClient(connection, "dev")  # type: ignore[arg-type]
    with pytest.raises(NotConnectedError):
        client.start(lambda _event: None)
    assert connection.subscriptions == []

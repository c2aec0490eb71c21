"""Fixtures for the AWS IoT Jobs tests: a running stand-in on the ``mosquitto`` fixture, boto3, devices."""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ota_cloud.aws import AwsIotStandIn, thing_arn
from ota_cloud.broker import MosquittoBroker
from ota_core.models import JobEvent
from ota_core.mqtt import MqttConnection, MqttSettings

MINUTE = 0.5
"""A stand-in "minute" in the tests, so that step timeouts expire quickly."""


@pytest.fixture(name="aws_standin")
def aws_standin_fixture(mosquitto: MosquittoBroker, tmp_path: Path) -> Iterator[AwsIotStandIn]:
    """A started AWS IoT stand-in on the test broker, state in a temporary directory."""
    standin = AwsIotStandIn(mosquitto.url, tmp_path / "aws-state", minute_seconds=MINUTE, tick_interval=0.05)
    standin.start()
    try:
        yield standin
    finally:
        standin.close()


@pytest.fixture(name="iot")
def iot_fixture(aws_standin: AwsIotStandIn) -> Any:
    """A boto3 ``iot`` client pointed at the stand-in."""
    return aws_standin.boto3_client()


@pytest.fixture(name="device_connection")
def device_connection_fixture(mosquitto: MosquittoBroker) -> Iterator[Callable[[str], MqttConnection]]:
    """Make connected device connections; all are closed at teardown."""
    made: list[MqttConnection] = []

    def make(client_id: str) -> MqttConnection:
        connection = MqttConnection(MqttSettings(broker_url=mosquitto.url, client_id=client_id, connect_timeout=5.0))
        connection.connect()
        made.append(connection)
        return connection

    yield make
    for connection in made:
        connection.close()


class EventLog:
    """Collects job events and waits for them with a timeout."""

    def __init__(self) -> None:
        self.events: queue.Queue[JobEvent] = queue.Queue()

    def __call__(self, event: JobEvent) -> None:
        self.events.put(event)

    def next(self, timeout: float = 10.0) -> JobEvent:
        return self.events.get(timeout=timeout)

    def empty_for(self, seconds: float) -> bool:
        try:
            self.events.get(timeout=seconds)
        except queue.Empty:
            return True
        return False


def create_job(iot: Any, job_id: str, things: list[str], document: dict[str, Any] | str, **extra: Any) -> None:
    """CreateJob through boto3 for ``things``."""
    import json

    text = document if isinstance(document, str) else json.dumps(document)
    iot.create_job(jobId=job_id, targets=[thing_arn(name) for name in things], document=text, **extra)

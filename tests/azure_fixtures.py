"""Fixtures for the Azure tests: the stand-in on the harness's mosquitto, and connected devices."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ota_cloud.azure import AzureStandIn, SigningKeys
from ota_cloud.broker import MosquittoBroker
from ota_core.mqtt import MqttConnection
from ota_jobs.azure import IotHubSettings, RetryPolicy, TwinClient

DEVICE_KEY = "NMgJDvdKTxjLi+xBxxkDDEwDJxEvOE5u8BiT0mVgPeg="
HUB = "modular-ota.azure-devices.net"

_KEYS: list[SigningKeys] = []


def session_keys() -> SigningKeys:
    """One pair of 2048-bit signing keys per test session (keeps the tests fast)."""
    if not _KEYS:
        _KEYS.append(SigningKeys.generate(2048))
    return _KEYS[0]


@pytest.fixture
def azure_standin(mosquitto: MosquittoBroker, tmp_path: Path) -> Iterator[AzureStandIn]:
    """The whole Azure stand-in on the test broker, with per-device topic prefixes."""
    standin = AzureStandIn(mosquitto.url, tmp_path / "azure-state", keys=session_keys())
    standin.start()
    try:
        yield standin
    finally:
        standin.close()
        gc.collect()  # surface leaked sockets in the test that leaked them


DeviceFactory = Callable[..., tuple[MqttConnection, TwinClient]]


@pytest.fixture
def azure_device(mosquitto: MosquittoBroker, azure_standin: AzureStandIn) -> Iterator[DeviceFactory]:
    """Register a device with the stand-in and connect it as the device side would (not yet started)."""
    made: list[tuple[MqttConnection, TwinClient]] = []

    def make(
        device_id: str = "dev1", *, retry: RetryPolicy | None = None, model_id: str | None = None
    ) -> tuple[MqttConnection, TwinClient]:
        azure_standin.hub.register_device(device_id, DEVICE_KEY)
        settings = IotHubSettings(
            hostname=HUB,
            device_id=device_id,
            shared_access_key=DEVICE_KEY,
            gateway_host=mosquitto.host,
            port=mosquitto.port,
            use_tls=False,
            model_id=model_id,
            topic_prefix=azure_standin.hub.prefix_for(device_id),
        )
        connection = MqttConnection(settings.to_mqtt_settings())
        connection.connect()
        client = TwinClient(
            connection, retry=retry or RetryPolicy(initial_delay=0.05, max_delay=0.2, response_timeout=5.0)
        )
        made.append((connection, client))
        return connection, client

    yield make
    for connection, client in made:
        client.stop()
        connection.close()
    gc.collect()

"""Shared fixtures: a real mosquitto (plain and mutual TLS), a local PKI, a Range-capable HTTP server."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from ota_cloud.broker import MosquittoBroker, MosquittoNotInstalledError, TlsListener
from ota_cloud.file_server import RangeFileServer
from ota_cloud.pki import LocalPki
from ota_core.mqtt import MqttConnection, MqttSettings

# CI shares two cores with brokers and child processes: judge fuzz tests by what they find, not by speed.
settings.register_profile("modular-ota", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("modular-ota")


def _require_mosquitto(make: Callable[[], MosquittoBroker]) -> MosquittoBroker:
    try:
        return make()
    except MosquittoNotInstalledError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A private mosquitto with a plain listener on a free loopback port."""
    broker = _require_mosquitto(lambda: MosquittoBroker(tmp_path / "broker"))
    broker.start()
    try:
        yield broker
    finally:
        broker.close()


@pytest.fixture(scope="session")
def test_pki(tmp_path_factory: pytest.TempPathFactory) -> LocalPki:
    """A CA, a localhost server certificate, a client certificate and an unrelated rogue CA and client."""
    return LocalPki.create(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def tls_mosquitto(tmp_path: Path, test_pki: LocalPki) -> Iterator[MosquittoBroker]:
    """A private mosquitto with a plain listener and a mutual-TLS listener (client certificates required)."""
    listener = TlsListener(
        ca_file=test_pki.ca_file, cert_file=test_pki.server.cert_file, key_file=test_pki.server.key_file
    )
    broker = _require_mosquitto(lambda: MosquittoBroker(tmp_path / "tls-broker", tls=listener))
    broker.start()
    try:
        yield broker
    finally:
        broker.close()


@pytest.fixture
def http_file_server() -> Iterator[RangeFileServer]:
    """A loopback HTTP server with Range, If-Range and ETag support."""
    with RangeFileServer() as server:
        yield server


ConnectionFactory = Callable[..., MqttConnection]


@pytest.fixture
def mqtt_connection_factory(mosquitto: MosquittoBroker) -> Iterator[ConnectionFactory]:
    """Make connected MqttConnections to the ``mosquitto`` fixture; all are closed at teardown."""
    made: list[MqttConnection] = []

    def make(client_id: str = "client", **overrides: object) -> MqttConnection:
        options: dict[str, object] = {"broker_url": mosquitto.url, "client_id": client_id, "connect_timeout": 5.0}
        options.update(overrides)
        connection = MqttConnection(MqttSettings(**options))  # type: ignore[arg-type]
        made.append(connection)
        connection.connect()
        return connection

    yield make
    for connection in made:
        connection.close()

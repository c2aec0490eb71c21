"""The managed mosquitto: start, restart on the same port, clear errors when it cannot run."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ota_cloud.broker import BrokerStartError, MosquittoBroker, MosquittoNotInstalledError, TlsListener, free_port
from ota_cloud.pki import LocalPki
from ota_core.errors import ConfigurationError
from ota_core.mqtt import MqttConnection, MqttSettings


def test_start_restart_keeps_the_port(tmp_path: Path) -> None:
    with MosquittoBroker(tmp_path) as broker:
        port = broker.port
        assert broker.is_running
        broker.restart()
        assert broker.port == port and broker.is_running
        with MqttConnection(MqttSettings(broker_url=broker.url, client_id="c")) as connection:
            assert connection.is_connected
        with pytest.raises(ConfigurationError):
            _ = broker.tls_url
        broker.start()  # already running: nothing happens
    assert not broker.is_running


def test_owned_directory_is_removed() -> None:
    broker = MosquittoBroker()
    broker.start()
    folder = broker.config_file.parent
    assert folder.exists()
    broker.close()
    assert not folder.exists()


def test_missing_executable_says_how_to_install() -> None:
    with pytest.raises(MosquittoNotInstalledError, match="apt-get install mosquitto"):
        MosquittoBroker(executable="mosquitto-not-here")


def test_unreadable_tls_key_fails_loudly(tmp_path: Path, test_pki: LocalPki) -> None:
    listener = TlsListener(ca_file=test_pki.ca_file, cert_file=test_pki.server.cert_file, key_file=tmp_path / "no.key")
    broker = MosquittoBroker(tmp_path / "b", tls=listener)
    with pytest.raises(BrokerStartError, match="exited"):
        broker.start()
    broker.close()


def test_port_taken_fails_loudly(tmp_path: Path) -> None:
    with MosquittoBroker(tmp_path / "first") as first:
        second = MosquittoBroker(tmp_path / "second", port=first.port)
        with pytest.raises(BrokerStartError, match="already in use"):
            second.start(timeout=3)
        second.close()


def test_kill_then_start(tmp_path: Path) -> None:
    broker = MosquittoBroker(tmp_path)
    broker.start()
    broker.kill()
    assert not _alive(broker)
    broker.kill()
    broker.start()
    assert _alive(broker)
    broker.close()


def _alive(broker: MosquittoBroker) -> bool:
    return broker.is_running


def test_free_port_is_bindable() -> None:
    assert 1024 <= free_port() <= 65535


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("mosquitto") is None, reason="needs root")
def test_config_runs_as_root_with_tls(tmp_path: Path, test_pki: LocalPki) -> None:
    listener = TlsListener(
        ca_file=test_pki.ca_file, cert_file=test_pki.server.cert_file, key_file=test_pki.server.key_file
    )
    with MosquittoBroker(tmp_path, tls=listener) as broker:
        assert "user root" in broker.config_file.read_text()
        assert broker.tls_url.startswith("mqtts://localhost:")

"""Broker URLs and connection settings: every bad input gives a typed error naming the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from ota_cloud.pki import LocalPki
from ota_core.errors import ConfigurationError, InvalidBrokerUrlError, TlsConfigurationError
from ota_core.mqtt import MqttConnection, MqttSettings, parse_broker_url


@pytest.mark.parametrize(
    ("url", "host", "port", "tls"),
    [
        ("mqtt://127.0.0.1", "127.0.0.1", 1883, False),
        ("tcp://broker.example:1884", "broker.example", 1884, False),
        ("mqtts://iot.example", "iot.example", 8883, True),
        ("ssl://iot.example:443/", "iot.example", 443, True),
        ("mqtt://[::1]:1999", "::1", 1999, False),
    ],
)
def test_good_urls(url: str, host: str, port: int, tls: bool) -> None:
    address = parse_broker_url(url)
    assert (address.host, address.port, address.tls) == (host, port, tls)


@pytest.mark.parametrize(
    "url",
    [
        "",
        "http://x",
        "mqtt://",
        "mqtt://host:99999",
        "mqtt://host:0",
        "mqtt://host/path",
        "mqtt://u:p@host",
        "mqtt://host?x=1",
        "mqtt://host:abc",
        "127.0.0.1:1883",
        None,
    ],
)
def test_bad_urls(url: object) -> None:
    with pytest.raises(InvalidBrokerUrlError):
        parse_broker_url(url)  # type: ignore[arg-type]


def _settings(**overrides: object) -> MqttSettings:
    options: dict[str, object] = {"broker_url": "mqtt://127.0.0.1:1883", "client_id": "c"}
    options.update(overrides)
    return MqttSettings(**options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "overrides",
    [
        {"client_id": ""},
        {"protocol": "4"},
        {"keepalive": -1},
        {"max_inflight": 0},
        {"reconnect_min_delay": 5.0, "reconnect_max_delay": 1.0},
        {"topic_prefix": "no-slash"},
        {"topic_prefix": "a/+/"},
    ],
)
def test_bad_settings_are_configuration_errors(overrides: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        MqttConnection(_settings(**overrides))


def test_non_positive_timeouts_are_refused() -> None:
    with pytest.raises(ConfigurationError):
        _settings(connect_timeout=0)


def test_tls_options_need_a_tls_url(tmp_path: Path) -> None:
    with pytest.raises(TlsConfigurationError, match="not a TLS URL"):
        MqttConnection(_settings(ca_file=tmp_path / "ca.crt"))
    with pytest.raises(TlsConfigurationError, match="needs its key"):
        MqttConnection(_settings(broker_url="mqtts://localhost", cert_file=tmp_path / "c.crt"))


def test_unreadable_certificate_files_are_named(tmp_path: Path, test_pki: LocalPki) -> None:
    with pytest.raises(TlsConfigurationError, match="CA file"):
        MqttConnection(_settings(broker_url="mqtts://localhost", ca_file=tmp_path / "missing.crt"))
    with pytest.raises(TlsConfigurationError, match="does not exist"):
        MqttConnection(
            _settings(
                broker_url="mqtts://localhost",
                ca_file=test_pki.ca_file,
                cert_file=tmp_path / "missing.crt",
                key_file=test_pki.client.key_file,
            )
        )
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(TlsConfigurationError, match="cannot load client certificate"):
        MqttConnection(
            _settings(
                broker_url="mqtts://localhost",
                ca_file=test_pki.ca_file,
                cert_file=garbage,
                key_file=test_pki.client.key_file,
            )
        )
    with pytest.raises(TlsConfigurationError, match="CA file"):
        MqttConnection(_settings(broker_url="mqtts://localhost", ca_file=garbage))


def test_password_callable_is_asked_each_time() -> None:
    calls = iter(["first", "second"])
    settings = _settings(username="u", password=lambda: next(calls))
    assert settings.current_password() == "first"
    assert settings.current_password() == "second"
    assert _settings(password="fixed").current_password() == "fixed"


def test_alpn_is_set_on_the_tls_context(test_pki: LocalPki) -> None:
    settings = _settings(
        broker_url="mqtts://localhost:443", ca_file=test_pki.ca_file, alpn_protocols=("x-amzn-mqtt-ca",)
    )
    assert settings.tls_context() is not None
    assert _settings().tls_context() is None

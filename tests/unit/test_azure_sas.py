"""SAS tokens and IoT Hub connection settings, with the published vectors."""

from __future__ import annotations

import datetime

import pytest

from ota_core.clock import ManualClock
from ota_jobs.azure import (
    AzureConfigurationError,
    IotHubSettings,
    SasTokenProvider,
    generate_sas_token,
    parse_connection_string,
    sign_sas,
)

KEY = "NMgJDvdKTxjLi+xBxxkDDEwDJxEvOE5u8BiT0mVgPeg="


def test_sign_vector() -> None:
    assert sign_sas(KEY, "sign this message") == "8NJRMT83CcplGrAGaUVIUM/md5914KpWVNngSVoF9/M="


def test_device_token_vector() -> None:
    token = generate_sas_token("myiothub.azure-devices.net/devices/my_device", KEY, 1578941692)
    assert token == (
        "SharedAccessSignature sr=myiothub.azure-devices.net%2Fdevices%2Fmy_device"
        "&sig=dIMMdDDBGFR8eqAfYkiMxoOphaFMPtMgj7Wg%2FYB1AvU%3D&se=1578941692"
    )


def test_policy_name_adds_skn() -> None:
    token = generate_sas_token("hub.azure-devices.net", KEY, 10, policy_name="device")
    assert token.endswith("&se=10&skn=device")


@pytest.mark.parametrize("key", ["", "not base64!", "QQ"])
def test_bad_keys(key: str) -> None:
    with pytest.raises(AzureConfigurationError):
        sign_sas(key, "x")


@pytest.mark.parametrize("expiry", [0, -1, True])
def test_bad_expiry(expiry: int) -> None:
    with pytest.raises(AzureConfigurationError):
        generate_sas_token("a/devices/b", KEY, expiry)
    with pytest.raises(AzureConfigurationError):
        generate_sas_token("", KEY, 5)


def test_provider_renews_before_expiry() -> None:
    clock = ManualClock(datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC))
    provider = SasTokenProvider("h/devices/d", KEY, ttl_seconds=600, renewal_margin_seconds=120, clock=clock)
    assert provider.needs_renewal()
    first = provider()
    assert provider() == first
    assert provider.seconds_until_renewal() == 480
    clock.advance(479)
    assert provider() == first
    clock.advance(1)
    second = provider()
    assert second != first and provider.expiry > 0
    with pytest.raises(AzureConfigurationError):
        SasTokenProvider("h/devices/d", KEY, ttl_seconds=100, renewal_margin_seconds=120)


def test_settings_username_and_client_id() -> None:
    s = IotHubSettings(hostname="myiothub.azure-devices.net", device_id="my_device", shared_access_key=KEY)
    assert s.username == "myiothub.azure-devices.net/my_device/?api-version=2021-04-12"
    assert s.client_id == "my_device"
    assert s.broker_url == "mqtts://myiothub.azure-devices.net:8883"
    m = IotHubSettings(
        hostname="h.net",
        device_id="d",
        module_id="m",
        sas_token="tok",
        model_id="dtmi:azure:iot:deviceUpdateModel;3",
        gateway_host="localhost",
        port=18883,
    )
    assert m.client_id == "d/m"
    assert m.username == "h.net/d/m/?api-version=2021-04-12&model-id=dtmi%3Aazure%3Aiot%3AdeviceUpdateModel%3B3"
    assert m.resource_uri == "h.net/devices/d/modules/m"
    assert m.broker_url == "mqtts://localhost:18883"
    assert m.password_provider() == "tok"
    provider = s.password_provider()
    assert callable(provider) and provider().startswith("SharedAccessSignature sr=")
    x = IotHubSettings(hostname="h.net", device_id="d", cert_file="c.pem", key_file="k.pem", use_tls=False)
    assert x.password_provider() is None and x.broker_url.startswith("mqtt://")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"hostname": "", "device_id": "d", "sas_token": "t"},
        {"hostname": "h", "device_id": "a/b", "sas_token": "t"},
        {"hostname": "h", "device_id": "d"},
        {"hostname": "h", "device_id": "d", "sas_token": "t", "shared_access_key": KEY},
        {"hostname": "h", "device_id": "d", "cert_file": "c"},
        {"hostname": "h", "device_id": "d", "sas_token": "t", "model_id": "nope"},
        {"hostname": "h", "device_id": "d", "sas_token": "t", "port": 0},
        {"hostname": "h", "device_id": "d", "sas_token": "t", "keepalive": 5000},
    ],
)
def test_bad_settings(kwargs: dict[str, object]) -> None:
    with pytest.raises(AzureConfigurationError):
        IotHubSettings(**kwargs)  # type: ignore[arg-type]


def test_connection_string() -> None:
    s = parse_connection_string(
        f"HostName=h.azure-devices.net;DeviceId=dev1;SharedAccessKey={KEY};GatewayHostName=localhost", port=18883
    )
    assert s.gateway_host == "localhost" and s.port == 18883 and s.shared_access_key == KEY
    for bad in [
        "HostName=h",
        "HostName=h;DeviceId=d;Bogus=1;SharedAccessKey=" + KEY,
        "HostName=h;HostName=h;DeviceId=d",
        "HostName;DeviceId=d",
    ]:
        with pytest.raises(AzureConfigurationError):
            parse_connection_string(bad)
    with pytest.raises(AzureConfigurationError):
        parse_connection_string(f"HostName=h;DeviceId=d;SharedAccessKey={KEY}", nonsense=1)

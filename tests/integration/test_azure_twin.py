"""Twin GET/PATCH/desired flows, retries and direct methods against the stand-in on a real mosquitto."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from ota_cloud.azure import AzureStandIn, MethodTimeoutError
from ota_cloud.broker import MosquittoBroker
from ota_cloud.pki import LocalPki
from ota_core.mqtt import MqttConnection
from ota_jobs.azure import DesiredPatch, IotHubSettings, RetryPolicy, TwinClient, TwinDocument, TwinRequestError
from tests.azure_fixtures import DeviceFactory, azure_device, azure_standin, session_keys

pytestmark = pytest.mark.broker
__all__ = ["azure_device", "azure_standin"]


def wait_until(predicate: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def test_get_patch_and_desired(azure_standin: AzureStandIn, azure_device: DeviceFactory) -> None:
    _, client = azure_device("dev1")
    azure_standin.hub.update_desired("dev1", {"telemetry": "5m"})
    patches: list[DesiredPatch] = []
    client.on_desired(patches.append)
    client.start()
    document = client.get_twin(timeout=10)
    assert document.desired == {"telemetry": "5m"} and document.desired_version == 2
    version = client.patch_reported({"battery": 55}, timeout=10)
    assert version == 2
    assert client.patch_reported({"battery": None, "fw": {"v": "1"}}, timeout=10) == 3
    twin = azure_standin.hub.get_twin("dev1")
    assert twin["reported"] == {"fw": {"v": "1"}, "$version": 3}
    azure_standin.hub.update_desired("dev1", {"telemetry": "1m", "route": None})
    assert wait_until(lambda: patches)
    assert patches[0].version == 3 and patches[0].patch == {"telemetry": "1m", "route": None}
    assert client.desired_version == 3


def test_reported_ordering_with_429_and_500_retries(azure_standin: AzureStandIn, azure_device: DeviceFactory) -> None:
    _, client = azure_device("dev1")
    client.start()
    client.get_twin(timeout=10)
    azure_standin.hub.inject_faults("dev1", "patch", [429, 500, 429])
    results: list[int | None] = []

    def send(n: int) -> None:
        results.append(client.patch_reported({"seq": n}, timeout=20))

    threads = [threading.Thread(target=send, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
        time.sleep(0.05)
    for thread in threads:
        thread.join(30)
    assert sorted(v for v in results if v is not None) == [2, 3, 4]
    assert azure_standin.hub.get_twin("dev1")["reported"]["seq"] == 2
    assert azure_standin.hub.requests["patch"] == 6


def test_retries_run_out_and_400_is_final(azure_standin: AzureStandIn, azure_device: DeviceFactory) -> None:
    _, client = azure_device("dev1", retry=RetryPolicy(max_attempts=2, initial_delay=0.05, max_delay=0.1))
    client.start()
    client.get_twin(timeout=10)
    azure_standin.hub.inject_faults("dev1", "patch", [503, 503, 400])
    with pytest.raises(TwinRequestError) as err:
        client.patch_reported({"a": 1}, timeout=10)
    assert err.value.status == 503 and err.value.retryable
    with pytest.raises(TwinRequestError) as err:
        client.patch_reported({"a": 1}, timeout=10)
    assert err.value.status == 400 and not err.value.retryable
    azure_standin.hub.inject_faults("dev1", "get", [429])
    assert client.get_twin(timeout=10).desired_version == 1
    azure_standin.hub.inject_faults("dev1", "get", [404])
    with pytest.raises(TwinRequestError):
        client.get_twin(timeout=10)


def test_desired_changes_while_offline_are_caught_up(
    mosquitto: object, azure_standin: AzureStandIn, azure_device: DeviceFactory
) -> None:
    connection, client = azure_device("dev1")
    documents: list[TwinDocument] = []
    client.on_document(documents.append)
    client.start()
    assert wait_until(lambda: documents)
    mosquitto.stop()  # type: ignore[attr-defined]
    # the hub would not queue this patch for an offline device; the GET after reconnect catches up
    azure_standin.hub.twins.patch_desired("dev1", {"firmware": {"fwVersion": "9"}})
    mosquitto.start()  # type: ignore[attr-defined]
    assert wait_until(lambda: len(documents) >= 2, timeout=30)
    assert documents[-1].desired == {"firmware": {"fwVersion": "9"}}
    assert connection.is_connected


def test_direct_method_round_trip(azure_standin: AzureStandIn, azure_device: DeviceFactory) -> None:
    _, client = azure_device("dev1")
    client.on_method("checkForUpdates", lambda payload: (200, {"queued": True, "echo": payload}))
    client.start()
    client.get_twin(timeout=10)
    status, payload = azure_standin.hub.invoke_method("dev1", "checkForUpdates", {"now": 1}, timeout=10)
    assert (status, payload) == (200, {"queued": True, "echo": {"now": 1}})
    status, payload = azure_standin.hub.invoke_method("dev1", "unknown", None, timeout=10)
    assert status == 404
    client.stop()
    with pytest.raises(MethodTimeoutError):
        azure_standin.hub.invoke_method("dev1", "checkForUpdates", None, timeout=0.5)


def test_x509_device_over_mutual_tls(tls_mosquitto: MosquittoBroker, test_pki: LocalPki, tmp_path: Path) -> None:
    """A device authenticating with an X.509 client certificate (no SAS) reads and patches its twin."""
    with AzureStandIn(tls_mosquitto.url, tmp_path / "x509-state", admin_port=None, keys=session_keys()) as cloud:
        cloud.hub.register_device("x509-dev")
        assert tls_mosquitto.tls_port is not None
        settings = IotHubSettings(
            hostname="modular-ota.azure-devices.net",
            device_id="x509-dev",
            cert_file=str(test_pki.client.cert_file),
            key_file=str(test_pki.client.key_file),
            ca_file=str(test_pki.ca_file),
            gateway_host="localhost",
            port=tls_mosquitto.tls_port,
            topic_prefix=cloud.hub.prefix_for("x509-dev"),
        )
        mqtt_settings = settings.to_mqtt_settings()
        assert mqtt_settings.password is None and mqtt_settings.broker_url.startswith("mqtts://localhost:")
        with MqttConnection(mqtt_settings) as connection, TwinClient(connection) as client:
            assert client.get_twin(timeout=10).desired_version == 1
            version = client.patch_reported({"auth": "x509"}, timeout=10)
            assert version == 2, (cloud.hub.requests, cloud.hub.get_twin("x509-dev"))
        assert cloud.hub.get_twin("x509-dev")["reported"]["auth"] == "x509"

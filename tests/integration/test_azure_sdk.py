"""Microsoft's own device SDK (azure-iot-device) against the stand-in, over TLS.

The SDK pins paho-mqtt < 2, so it runs in its own virtual environment (``.venv-azure-sdk`` at the
repository root, git-ignored), built here if missing. Without network access to build it the test is
skipped with the reason; CI builds it beforehand.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ota_cloud.azure import AzureStandIn
from ota_cloud.broker import MosquittoBroker, TlsListener
from ota_cloud.pki import LocalPki
from tests.azure_fixtures import DEVICE_KEY, HUB, session_keys

pytestmark = pytest.mark.broker

ROOT = Path(__file__).resolve().parents[2]
SDK_VENV = ROOT / ".venv-azure-sdk"
SDK_REQUIREMENT = "azure-iot-device==2.14.0"
CLIENT = Path(__file__).with_name("_azure_sdk_client.py")


def _sdk_python() -> Path:
    python = SDK_VENV / "bin" / "python"
    probe = [str(python), "-c", "import azure.iot.device"]
    if python.exists() and subprocess.run(probe, capture_output=True, timeout=60, check=False).returncode == 0:
        return python
    try:
        subprocess.run([sys.executable, "-m", "venv", str(SDK_VENV)], check=True, capture_output=True, timeout=120)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", SDK_REQUIREMENT], check=True, capture_output=True, timeout=300
        )
    except (subprocess.SubprocessError, OSError) as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"cannot build the azure-iot-device virtual environment (no network?): {exc}")
    return python


@pytest.fixture
def tls_broker(tmp_path: Path, test_pki: LocalPki) -> Iterator[MosquittoBroker]:
    """A mosquitto with a server-authenticated TLS listener (the SDK authenticates with a SAS token)."""
    listener = TlsListener(
        ca_file=test_pki.ca_file,
        cert_file=test_pki.server.cert_file,
        key_file=test_pki.server.key_file,
        require_client_certificate=False,
    )
    broker = MosquittoBroker(tmp_path / "sdk-broker", tls=listener)
    broker.start()
    try:
        yield broker
    finally:
        broker.close()


def test_microsoft_sdk_reads_twin_patches_reported_and_gets_desired(
    tls_broker: MosquittoBroker, test_pki: LocalPki, tmp_path: Path
) -> None:
    python = _sdk_python()
    standin = AzureStandIn(
        tls_broker.url, tmp_path / "state", hostname=HUB, topic_prefix="", admin_port=None, keys=session_keys()
    )
    standin.start()
    try:
        standin.hub.register_device("sdk-device", DEVICE_KEY)
        standin.hub.update_desired("sdk-device", {"firmware": {"fwVersion": "1.0.0"}})
        connection_string = f"HostName={HUB};DeviceId=sdk-device;SharedAccessKey={DEVICE_KEY};GatewayHostName=localhost"
        steps: list[dict[str, object]] = []
        with subprocess.Popen(
            [str(python), str(CLIENT), connection_string, str(test_pki.ca_file), str(tls_broker.tls_port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as process:
            try:
                assert process.stdout is not None
                for line in process.stdout:
                    step = json.loads(line)
                    steps.append(step)
                    if step["step"] == "reported":
                        standin.hub.update_desired("sdk-device", {"firmware": {"fwVersion": "1.1.0"}})
                    if step["step"] in ("desired", "timeout"):
                        break
                _, stderr = process.communicate(timeout=30)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.communicate(timeout=10)
        assert [s["step"] for s in steps] == ["twin", "reported", "desired"], stderr[-2000:]
        twin = steps[0]["twin"]
        assert twin == {"desired": {"firmware": {"fwVersion": "1.0.0"}, "$version": 2}, "reported": {"$version": 1}}
        assert steps[2]["patch"] == {"firmware": {"fwVersion": "1.1.0"}, "$version": 3}
        reported = standin.hub.get_twin("sdk-device")["reported"]
        assert reported == {"sdk": {"name": "azure-iot-device", "ok": True}, "$version": 2}
    finally:
        standin.close()

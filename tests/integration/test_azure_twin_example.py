"""examples/azure_twin_device.py against the stand-in on a real mosquitto: an update, then a rollback."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from ota_cloud.azure import AzureStandIn
from ota_cloud.broker import MosquittoBroker
from ota_verify.keys import load_private_key
from ota_verify.tools import public_key_pem
from tests.azure_fixtures import session_keys
from tests.azure_twin_rig import DEVICE_KEY, HUB, build_firmware, check_value, signing_key_pem

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("fail", "status", "version"), [(False, "Current", "1.0.1"), (True, "Error", "1.0.0")])
def test_example_device_updates_from_its_twin(mosquitto: MosquittoBroker, tmp_path: Path, fail: bool,
                                              status: str, version: str) -> None:
    public = tmp_path / "release.pub.pem"
    public.write_bytes(public_key_pem(load_private_key(signing_key_pem()).public_key()))
    factory = tmp_path / "factory.bin"
    factory.write_bytes(build_firmware("1.0.0"))
    with AzureStandIn(mosquitto.url, tmp_path / "azure", keys=session_keys(), admin_port=None) as cloud:
        cloud.hub.register_device("dev1", DEVICE_KEY)
        command = [sys.executable, "examples/azure_twin_device.py", str(tmp_path / "device"), "--hub", HUB,
                   "--device-id", "dev1", "--key-base64", DEVICE_KEY, "--gateway", mosquitto.host,
                   "--port", str(mosquitto.port), "--no-tls", "--topic-prefix", cloud.hub.prefix_for("dev1"),
                   "--allow-http", "--trust", str(public), "--factory-image", str(factory), "--once"]
        if fail:
            command.append("--fail-self-test")
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + 20
            while cloud.hub.twins.get("dev1").reported.get("firmware", {}).get("fwUpdateStatus") != "Current":
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.05)
            image = build_firmware("1.0.1")
            url = cloud.files.add_file("fw.bin", image)
            cloud.mxchip.set_firmware(["dev1"], version="1.0.1", uri=url, check_value=check_value(image),
                                      size=len(image))
            output, _ = process.communicate(timeout=40)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        assert process.returncode == 0, output
        assert "booted 1.0.1" in output
        reported = cloud.hub.twins.get("dev1").reported["firmware"]
        assert reported["fwUpdateStatus"] == status and reported["currentFwVersion"] == version

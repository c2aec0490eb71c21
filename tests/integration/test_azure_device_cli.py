"""``ota device --config FILE`` with the ``azure`` flow: a device agent from a TOML file against the stand-in."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from ota_cloud.azure import AzureStandIn
from ota_cloud.broker import MosquittoBroker
from ota_verify.keys import load_private_key
from ota_verify.tools import public_key_pem
from tests.azure_fixtures import session_keys
from tests.azure_twin_rig import DEVICE_KEY, HUB, build_firmware, check_value, signing_key_pem

ROOT = Path(__file__).resolve().parents[2]


def test_ota_device_runs_the_azure_flow_through_an_update(mosquitto: MosquittoBroker, tmp_path: Path) -> None:
    (tmp_path / "release.pub.pem").write_bytes(public_key_pem(load_private_key(signing_key_pem()).public_key()))
    (tmp_path / "factory.bin").write_bytes(build_firmware("1.0.0"))
    with AzureStandIn(mosquitto.url, tmp_path / "azure", keys=session_keys(), admin_port=None) as cloud:
        cloud.hub.register_device("cli-dev", DEVICE_KEY)
        config = tmp_path / "device.toml"
        config.write_text(
            'flow = "azure"\ndevice_dir = "dev"\npublic_key = "release.pub.pem"\nfactory_image = "factory.bin"\n'
            "[flash]\nsector_size = 4096\nimage_sectors = 16\n"
            f'[flow_settings]\nhostname = "{HUB}"\ndevice_id = "cli-dev"\nshared_access_key = "{DEVICE_KEY}"\n'
            f'gateway_host = "{mosquitto.host}"\nport = {mosquitto.port}\nuse_tls = false\n'
            f'topic_prefix = "{cloud.hub.prefix_for("cli-dev")}"\nallow_http = true\n',
            encoding="utf-8",
        )
        process = subprocess.Popen([sys.executable, "-m", "ota_orchestrators", "device", "--config", str(config)],
                                   cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 30
            while cloud.hub.twins.get("cli-dev").reported.get("firmware", {}).get("fwUpdateStatus") != "Current":
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.05)
            image = build_firmware("1.0.1")
            cloud.mxchip.set_firmware(["cli-dev"], version="1.0.1", uri=cloud.files.add_file("fw.bin", image),
                                      check_value=check_value(image), size=len(image))
            while cloud.hub.twins.get("cli-dev").reported["firmware"].get("currentFwVersion") != "1.0.1":
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.05)
        finally:
            process.send_signal(signal.SIGINT)
            out, _err = process.communicate(timeout=20)
        assert '"event": "restart"' in out and '"version": "1.0.1"' in out
        assert cloud.hub.twins.get("cli-dev").reported["firmware"]["fwUpdateStatus"] == "Current"

"""``ota device --config FILE``: a device agent from a TOML file, against the local AWS stand-in."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.orchestrator_aws_fixtures import AwsCloud, Keys, aws_cloud_fixture, keys_fixture

__all__ = ["aws_cloud_fixture", "keys_fixture"]


@pytest.mark.broker
def test_ota_device_runs_until_the_restart(aws_cloud: AwsCloud, keys: Keys, tmp_path: Path) -> None:
    aws_cloud.add_thing("cli-device")
    config = tmp_path / "device.toml"
    config.write_text(
        f'flow = "aws"\ndevice_dir = "dev"\npublic_key = "{keys.public_file}"\n'
        f'factory_image = "{keys.firmware("1.0.0").path}"\n'
        "[flash]\nsector_size = 4096\nimage_sectors = 40\n"
        f'[flow_settings]\nbroker_url = "{aws_cloud.broker.url}"\nthing_name = "cli-device"\n',
        encoding="utf-8",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "ota_orchestrators", "device", "--config", str(config), "--once"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.0)
        aws_cloud.publish_mqtt("cli-job", "cli-device", keys.firmware("1.0.1"))
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert '"event": "restart"' in out
    assert aws_cloud.details("cli-job")[-1] == {"self_test": "ready", "updatedBy": "0x1000000"}


def test_ota_device_with_a_broken_config_prints_one_line(tmp_path: Path) -> None:
    config = tmp_path / "device.toml"
    config.write_text('flow = "aws"\n', encoding="utf-8")
    completed = subprocess.run(
        [sys.executable, "-m", "ota_orchestrators", "device", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 1
    assert completed.stderr.strip().splitlines()[-1].startswith("ota: error: [CONFIGURATION_INVALID]")
    assert "device.toml lacks 'device_dir'" in completed.stderr
    assert "Traceback" not in completed.stderr

"""``ota demo azure`` as a user runs it: a subprocess with its own mosquitto, stand-in and simulated device."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ota_orchestrators.demo import DemoOptions, run_demo

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("mosquitto") is None, reason="mosquitto is not installed")


@pytest.mark.parametrize(
    ("options", "final"),
    [
        (["--image-size", "262144"], "RESULT: OK: cloud reports Current, device runs 1.0.1"),
        (["--image-size", "262144", "--fail-self-test"], "RESULT: OK: cloud reports Error, device runs 1.0.0"),
        (["--power-cut"], "RESULT: OK: cloud reports Current, device runs 1.0.1"),
    ],
)
def test_ota_demo_azure(tmp_path: Path, options: list[str], final: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ota_orchestrators", "demo", "azure", "--work-dir", str(tmp_path / "demo"), *options],
        cwd=ROOT, capture_output=True, text=True, timeout=90, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert final in lines[-1] if "--power-cut" not in options else any(final in line for line in lines)
    assert "fwUpdateStatus" in result.stdout
    if "--power-cut" in options:
        assert "power cut: after the restart the download went on" in result.stdout


def test_run_demo_azure_in_process(tmp_path: Path) -> None:
    # The scenario runs in this process (the device is still a child process): its result is inspected.
    out = io.StringIO()
    status, result = run_demo(DemoOptions(flow="azure", image_size=65536, work_dir=tmp_path / "demo"), stream=out)
    assert status == 0, out.getvalue()[-3000:]
    assert result.cloud_status == "Current" and result.running_version == "1.0.1"
    assert result.cloud_details["currentFwVersion"] == "1.0.1" and result.cloud_details["type"] == "IoTDevKit"
    assert result.restarts == 1

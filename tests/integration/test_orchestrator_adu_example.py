"""examples/adu_device.py in its local mode: a private mosquitto, the Azure stand-in, a simulated MCU."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.broker
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("options", "final"), [
    ([], "OK: deployment demo-1 ended Succeeded, as expected"),
    (["--fail-self-test"], "OK: deployment demo-1 ended Failed, as expected"),
])
def test_adu_example_local(options: list[str], final: str) -> None:
    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not installed")
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "adu_device.py"), "local", *options],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == final
    assert "device: booted firmware 1.0.1" in lines

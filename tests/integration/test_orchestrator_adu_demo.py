"""``ota demo adu`` as a user runs it: a subprocess, exit status 0 and the final line."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.broker

SUCCESS = "RESULT: OK: cloud reports Succeeded, device runs 1.0.1 (new image running and confirmed)"
ROLLBACK = "RESULT: OK: cloud reports Failed, device runs 1.0.0 (rolled back, old image running)"


@pytest.mark.parametrize(
    ("arguments", "final"),
    [([], SUCCESS), (["--fail-self-test"], ROLLBACK), pytest.param(["--power-cut"], SUCCESS, marks=pytest.mark.slow)],
    ids=["success", "fail-self-test", "power-cut"],
)
def test_ota_demo_adu(arguments: list[str], final: str) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "ota_orchestrators", "demo", "adu", *arguments],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    lines = completed.stdout.strip().splitlines()
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert lines[-1].split("] ", 1)[1] == final
    assert "Traceback" not in completed.stderr
    assert any("deployment demo-deployment-1-0-1 created" in line for line in lines)
    if "--power-cut" in arguments:
        assert any("power cut: after the restart" in line for line in lines)
    if "--fail-self-test" in arguments:
        assert any('"resultCode": 0' in line and "state Failed" in line for line in lines)
    else:
        assert any('"resultCode": 700' in line and "installed 1.0.1" in line for line in lines)

"""``ota demo aws`` as a user runs it: a subprocess, exit status 0 and the final line."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.broker


_OK = "RESULT: OK: cloud reports SUCCEEDED, device runs 1.0.1 (new image running and confirmed)"
_ROLLED_BACK = "RESULT: OK: cloud reports FAILED, device runs 1.0.0 (rolled back, old image running)"


@pytest.mark.parametrize(
    ("arguments", "final"),
    [
        ([], _OK),
        pytest.param(["--protocol", "http"], _OK, marks=pytest.mark.slow),
        pytest.param(["--fail-self-test"], _ROLLED_BACK, marks=pytest.mark.slow),
        pytest.param(["--power-cut"], _OK, marks=pytest.mark.slow),
        pytest.param(["--power-cut", "--protocol", "http"], _OK, marks=pytest.mark.slow),
    ],
    ids=["mqtt", "http", "fail-self-test", "power-cut", "power-cut-http"],
)
def test_ota_demo_aws(arguments: list[str], final: str) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "ota_orchestrators", "demo", "aws", *arguments],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    lines = completed.stdout.strip().splitlines()
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert lines[-1].split("] ", 1)[1] == final
    assert "Traceback" not in completed.stderr
    if "--power-cut" in arguments:
        assert any("POWER CUT" in line for line in lines)
        assert any("power cut: after the restart" in line for line in lines)


def test_ota_demo_with_an_unreachable_broker_prints_one_error_line() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "ota_orchestrators", "demo", "aws", "--broker", "mqtt://127.0.0.1:1", "--timeout", "20"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr
    errors = [line for line in completed.stderr.splitlines() if line.startswith("ota: error:")]
    assert len(errors) == 1, completed.stderr

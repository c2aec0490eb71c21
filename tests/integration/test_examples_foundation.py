"""The foundation's example runs against a real broker and fails clearly without one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ota_cloud.broker import MosquittoBroker, free_port

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "connection_check.py"


def test_connection_check_succeeds(mosquitto: MosquittoBroker) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), mosquitto.url, "--count", "2"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(" ms") == 2


def test_connection_check_reports_refusal() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), f"mqtt://127.0.0.1:{free_port()}", "--timeout", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "connection check failed" in result.stderr

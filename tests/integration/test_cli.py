"""The ``ota`` command as a user runs it: a real process, real exit codes, one clear error line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ota_orchestrators.cli import main


def test_help_lists_commands(capsys: object) -> None:
    assert main([]) == 2


def test_broker_command_serves_until_interrupted(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "ota_orchestrators", "broker", "--dir", str(tmp_path), "--tls"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("broker listening on mqtt://127.0.0.1:")
        assert "mutual TLS on mqtts://localhost:" in process.stdout.readline()
        time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        _, errors = process.communicate(timeout=10)
        assert process.returncode == 0, errors
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_typed_errors_become_one_line(tmp_path: Path) -> None:
    environment = dict(os.environ, PATH=str(tmp_path))  # no mosquitto on this PATH
    result = subprocess.run(
        [sys.executable, "-m", "ota_orchestrators", "broker", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "ota: error: [BROKER_NOT_INSTALLED] mosquitto was not found on PATH; "
        "install it with: sudo apt-get install mosquitto"
    ]

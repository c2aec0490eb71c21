"""The AWS orchestrator's examples run end to end (local stand-in, private mosquitto)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.broker
@pytest.mark.parametrize(
    ("script", "arguments", "last_words"),
    [
        ("aws_iot_device.py", ["--local"], "cloud: SUCCEEDED"),
        ("linux_directory_slots.py", [], "running 1.0.1"),
        ("custom_downloader.py", [], '"status": "SUCCEEDED"'),
    ],
)
def test_example_runs(tmp_path: Path, script: str, arguments: list[str], last_words: str) -> None:
    extra = ["--root", str(tmp_path / "root")]
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *arguments, *extra],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert last_words in completed.stdout.strip().splitlines()[-1]

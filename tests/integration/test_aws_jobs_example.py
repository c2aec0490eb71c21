"""The custom-parser example runs offline and end to end against the AWS stand-in on a real broker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ota_cloud.broker import MosquittoBroker

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "custom_job_parser.py"


def test_offline() -> None:
    result = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "parsers, in order: acme-update, afr_ota, http-document" in result.stdout
    assert "acme: plan from acme-update" in result.stdout
    assert "unknown: REJECTED: JOB_DOCUMENT_UNSUPPORTED" in result.stdout


@pytest.mark.broker
def test_end_to_end(mosquitto: MosquittoBroker) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "--broker", mosquitto.url],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "acme: cloud says SUCCEEDED" in result.stdout
    assert "acme-invalid: cloud says REJECTED" in result.stdout

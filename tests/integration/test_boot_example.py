"""The MCU demo example, one process per power-on, with a power cut in the middle of the swap."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mcu_update_demo.py"


def _run(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLE), str(directory), *args], check=False, capture_output=True, text=True, timeout=60
    )


def test_demo_cut_resume_revert_confirm(tmp_path: Path) -> None:
    assert _run(tmp_path, "init").returncode == 0
    assert _run(tmp_path, "install", "2.0.0").returncode == 0
    cut = _run(tmp_path, "boot", "--cut", "20")
    assert cut.returncode == 2 and "POWER CUT" in cut.stdout
    resumed = _run(tmp_path, "boot")
    assert "booted 2.0.0 (swap TEST, resumed True)" in resumed.stdout
    assert "booted 1.0.0 (swap REVERT" in _run(tmp_path, "boot").stdout  # never confirmed
    assert _run(tmp_path, "install", "2.0.0").returncode == 0
    assert "booted 2.0.0" in _run(tmp_path, "boot").stdout
    assert "confirmed" in _run(tmp_path, "confirm").stdout
    assert "booted 2.0.0 (swap NONE" in _run(tmp_path, "boot").stdout
    assert _run(tmp_path / "missing", "status").returncode == 1

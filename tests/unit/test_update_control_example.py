"""The update-control example runs and tells the story it promises."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "update_control.py"


def test_example_runs_twice_on_the_same_state(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", [str(EXAMPLE), str(tmp_path)])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(EXAMPLE), run_name="__main__")
    assert exit_info.value.code == 0
    first = capsys.readouterr().out
    assert "wait (a critical section is running)" in first
    assert "until Thu 13:02 UTC" in first
    assert "operator forces the update" in first
    with pytest.raises(SystemExit):
        runpy.run_path(str(EXAMPLE), run_name="__main__")
    second = capsys.readouterr().out
    assert second.startswith("settings from the last run: target time TimeOfDay(hour=13, minute=2")

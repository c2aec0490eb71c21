"""SIGKILL at every persisted step of an update and of a revert: the device always starts a valid slot."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.boot_fixtures import NEW_IMAGE, OLD_IMAGE
from tests.integration.boot_backends import factory, make_backend

BACKENDS = ["dir", "uboot", "grub"]


def _child(kind: str, scenario: str, root: Path, kill_at: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.integration._boot_kill_child", kind, scenario, str(root), str(kill_at)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _prepare(kind: str, scenario: str, root: Path) -> None:
    device = factory(kind, root, OLD_IMAGE)
    (root / "new.img").write_bytes(NEW_IMAGE)
    if scenario == "revert":  # a trial of the new image is running
        control = device.control()
        writer = control.open_inactive_slot(len(NEW_IMAGE))
        writer.write_at(0, NEW_IMAGE)
        control.activate()
        assert device.boot() == "B"
        assert device.control().state().in_trial


def _check_starts_valid(kind: str, root: Path) -> str:
    device = make_backend(kind, root)
    slot = device.boot()
    image = device.image_of(slot)
    assert image in (OLD_IMAGE, NEW_IMAGE), f"slot {slot} holds neither image"
    return "new" if image == NEW_IMAGE else "old"


@pytest.mark.parametrize("scenario", ["update", "revert"])
@pytest.mark.parametrize("kind", BACKENDS)
def test_sigkill_at_every_step(tmp_path: Path, kind: str, scenario: str) -> None:
    template = tmp_path / "template"
    _prepare(kind, scenario, template)
    clean = tmp_path / "clean"
    shutil.copytree(template, clean, symlinks=True)
    result = _child(kind, scenario, clean, 0)
    assert result.returncode == 0, result.stderr
    steps = int(result.stdout.strip())
    expected_final = "new" if scenario == "update" else "old"
    assert _check_starts_valid(kind, clean) == expected_final
    outcomes = {"old": 0, "new": 0}
    for kill_at in range(1, steps + 1):
        root = tmp_path / f"k{kill_at}"
        shutil.copytree(template, root, symlinks=True)
        killed = _child(kind, scenario, root, kill_at)
        assert killed.returncode == -9, killed.stderr
        outcomes[_check_starts_valid(kind, root)] += 1
        shutil.rmtree(root)
    print(f"{kind} {scenario}: {steps} kill points, outcomes {outcomes}, bricks 0")
    assert steps >= 2

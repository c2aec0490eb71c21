"""Anti-rollback: the floor lives in the state store and rises only on confirm."""

from __future__ import annotations

from pathlib import Path

import pytest

from ota_core.errors import StateCorruptedError
from ota_core.state_store import FileStateStore
from ota_core.versions import Version
from ota_verify.errors import DowngradeError
from ota_verify.mcuboot import McubootVersion
from ota_verify.rollback import AntiRollbackPolicy, RollbackFloor


def test_no_floor_accepts_anything(tmp_path: Path) -> None:
    policy = AntiRollbackPolicy(FileStateStore(tmp_path))
    assert policy.floor() == RollbackFloor()
    policy.check(Version(0, 0, 1), security_counter=0)
    policy.check(None)


def test_install_does_not_move_the_floor_confirm_does(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path)
    policy = AntiRollbackPolicy(store)
    policy.confirm(Version(1, 0, 0), security_counter=1)
    policy.check(Version(2, 0, 0), security_counter=2)  # v2 downloaded and installed: floor still 1.0.0
    assert policy.floor().version == Version(1, 0, 0)
    policy.check(Version(1, 0, 0), for_boot=True)  # a revert to v1 after a power cut stays possible
    policy.confirm(Version(2, 0, 0), security_counter=2)
    # After confirm, from a fresh object (as after a reboot):
    reloaded = AntiRollbackPolicy(FileStateStore(tmp_path))
    assert reloaded.floor() == RollbackFloor(Version(2, 0, 0), 2)
    with pytest.raises(DowngradeError):
        reloaded.check(Version(1, 0, 0))
    with pytest.raises(DowngradeError):
        reloaded.check(Version(2, 0, 0))
    reloaded.check(Version(2, 0, 0), for_boot=True)
    with pytest.raises(DowngradeError, match="security counter"):
        reloaded.check(Version(3, 0, 0), security_counter=1)


def test_confirm_never_lowers(tmp_path: Path) -> None:
    policy = AntiRollbackPolicy(FileStateStore(tmp_path), allow_downgrade=True)
    policy.confirm("2.0.0", security_counter=5)
    policy.check(Version(1, 0, 0))  # allowed explicitly...
    with pytest.raises(DowngradeError):
        policy.check(Version(1, 0, 0), security_counter=4)  # ...but never below the security counter
    policy.confirm("1.0.0", security_counter=3)
    assert policy.floor() == RollbackFloor(Version(2, 0, 0), 5)
    policy.confirm("2.0.0")
    policy.confirm("2.0.0", security_counter=6)
    assert policy.floor().security_counter == 6


def test_version_kinds(tmp_path: Path) -> None:
    policy = AntiRollbackPolicy(FileStateStore(tmp_path), allow_same_version=True)
    policy.confirm(0x01020003)  # AWS AppVersion32 1.2.3
    assert policy.floor().version == Version(1, 2, 3)
    policy.check(McubootVersion(1, 2, 3, 9))
    with pytest.raises(DowngradeError):
        policy.check(McubootVersion(1, 2, 2))
    with pytest.raises(DowngradeError):
        policy.check("1.2.3-rc1")
    with pytest.raises(Exception, match="not a version"):
        policy.check(object())


def test_fast_forward_cap(tmp_path: Path) -> None:
    policy = AntiRollbackPolicy(FileStateStore(tmp_path), max_major_jump=2)
    policy.confirm(Version(1, 0, 0))
    policy.check(Version(3, 0, 0))
    with pytest.raises(DowngradeError, match="jumps"):
        policy.check(Version(255, 255, 65535))


def test_corrupted_document(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path)
    store.save("ota-verify-rollback", {"min_version": "banana"})
    with pytest.raises(StateCorruptedError):
        AntiRollbackPolicy(store).floor()
    store.save("ota-verify-rollback", {"min_version": "1.0.0", "min_security_counter": -1})
    with pytest.raises(StateCorruptedError):
        AntiRollbackPolicy(store).floor()

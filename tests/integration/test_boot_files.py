"""Backends on real files: flash files across processes, environment stores, slot files, error paths."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ota_boot.demo_image import DemoImageValidator
from ota_boot.dir_slots import DirectorySlots
from ota_boot.env_control import EnvBootControl, env_boot
from ota_boot.errors import (
    BootConfigurationError,
    EnvironmentCorruptedError,
    ImageTooLargeError,
    NoBootableImageError,
    ReadBackMismatchError,
    WriteOutOfBoundsError,
)
from ota_boot.file_slots import FileSlot, FileSlotReader
from ota_boot.flash import FlashLayout, SimFlash
from ota_boot.grub_env import GrubEnvFile
from ota_boot.schemes import CountingScheme, OrderScheme
from ota_boot.slot_writer import FileSlotWriter
from ota_boot.uboot_env import EnvCopy, UBootEnvStore
from ota_core.errors import ConfigurationError, InstallError
from tests.boot_fixtures import NEW_IMAGE, OLD_IMAGE

VALIDATOR = DemoImageValidator()


def test_flash_file_survives_a_new_process(tmp_path: Path) -> None:
    path = tmp_path / "flash.bin"
    layout = FlashLayout.uniform(256, 4, write_alignment=2)
    flash = SimFlash.create(path, layout)
    flash.write(10, b"hi")
    code = (
        "import sys; from ota_boot.flash import SimFlash; f = SimFlash.open(sys.argv[1]); "
        "assert f.read(10, 2) == b'hi'; f.write(20, b'ok')"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, timeout=60)
    assert flash.reboot().read(20, 2) == b"ok"
    assert SimFlash.open(path).layout == layout
    path.write_bytes(b"short")
    with pytest.raises(BootConfigurationError):
        SimFlash.open(path)
    with pytest.raises(BootConfigurationError):
        SimFlash.open(tmp_path / "missing.bin")
    with pytest.raises(BootConfigurationError):
        SimFlash.from_bytes(layout, b"x")


def test_uboot_store_errors(tmp_path: Path) -> None:
    with pytest.raises(BootConfigurationError):
        UBootEnvStore([EnvCopy(tmp_path / "a")] * 3)
    with pytest.raises(BootConfigurationError):
        UBootEnvStore([EnvCopy(tmp_path / "a", 0, 0x100), EnvCopy(tmp_path / "b", 0, 0x200)])
    store = UBootEnvStore([EnvCopy(tmp_path / "a", 0x200, 0x100), EnvCopy(tmp_path / "b", 0, 0x100)])
    with pytest.raises(EnvironmentCorruptedError):
        store.load()
    store.save({"x": "1"})  # no valid copy: writing one makes the environment usable again
    assert store.load() == {"x": "1"}
    (tmp_path / "dir").mkdir()
    broken = UBootEnvStore([EnvCopy(tmp_path / "dir", 0, 0x100)])
    with pytest.raises(EnvironmentCorruptedError):
        broken.save({"x": "1"})


def test_grub_file_errors(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentCorruptedError):
        GrubEnvFile(tmp_path / "missing").load()
    with pytest.raises(EnvironmentCorruptedError):
        GrubEnvFile(tmp_path / "no" / "dir" / "grubenv").save({"a": "1"})


def _uboot_device(tmp_path: Path, scheme: CountingScheme | OrderScheme) -> tuple[UBootEnvStore, dict[str, FileSlot]]:
    store = UBootEnvStore([EnvCopy(tmp_path / "e1", 0, 0x400), EnvCopy(tmp_path / "e2", 0, 0x400)])
    store.initialise(scheme.initial("A"))
    slots = {name: FileSlot(tmp_path / f"{name}.img", 8192) for name in ("A", "B")}
    slots["A"].path.write_bytes(OLD_IMAGE)
    return store, slots


def test_env_boot_recovery_paths(tmp_path: Path) -> None:
    scheme = CountingScheme()
    store, slots = _uboot_device(tmp_path, scheme)
    (tmp_path / "e1").write_bytes(b"\x00" * 0x400)
    (tmp_path / "e2").write_bytes(b"\x00" * 0x400)
    with pytest.raises(EnvironmentCorruptedError):
        env_boot(store, scheme, slots, validator=VALIDATOR)
    assert env_boot(store, scheme, slots, validator=VALIDATOR, default_env=lambda: scheme.initial("A")) == "A"
    store.save(scheme.activate(store.load(), "B", attempts=3, permanent=True))  # B is empty
    assert env_boot(store, scheme, slots, validator=VALIDATOR) == "A"
    assert scheme.state(store.load()).slot == "A"
    slots["A"].path.write_bytes(b"junk")
    with pytest.raises(NoBootableImageError):
        env_boot(store, scheme, slots, validator=VALIDATOR)


def test_env_control_with_rauc_style_variables(tmp_path: Path) -> None:
    scheme = OrderScheme()
    store, slots = _uboot_device(tmp_path, scheme)
    assert env_boot(store, scheme, slots) == "A"
    control = EnvBootControl(store, scheme, slots, booted_slot="A", validator=VALIDATOR)
    control.confirm()  # mark good
    assert store.load()["BOOT_A_LEFT"] == "3"
    writer = control.open_inactive_slot(len(NEW_IMAGE))
    writer.write_at(0, NEW_IMAGE)
    with pytest.raises(ReadBackMismatchError):
        control.activate(expected_sha256=b"\x01" * 32)
    control.activate(expected_sha256=hashlib.sha256(NEW_IMAGE).digest())
    assert store.load()["BOOT_ORDER"] == "B A"
    assert control.state().pending_version is not None
    again = EnvBootControl(store, scheme, slots, booted_slot="A", validator=VALIDATOR)
    with pytest.raises(ReadBackMismatchError):
        again.activate(expected_sha256=b"\x01" * 32)
    again.open_inactive_slot(len(NEW_IMAGE)).write_at(0, NEW_IMAGE)  # takes the activation back first
    assert store.load()["BOOT_ORDER"] == "A B"
    again.activate()
    again.revert()  # cancels the pending activation
    assert env_boot(store, scheme, slots) == "A"
    with pytest.raises(ConfigurationError):
        EnvBootControl(store, scheme, slots, booted_slot="C")


def test_directory_slots_error_paths(tmp_path: Path) -> None:
    root = tmp_path / "app"
    with pytest.raises(ConfigurationError):
        DirectorySlots(root, attempts=0)
    with pytest.raises(NoBootableImageError):
        DirectorySlots(root)
    slots = DirectorySlots.initialise(root, OLD_IMAGE, validator=VALIDATOR)
    with pytest.raises(ConfigurationError):
        slots.slot_dir("C")
    writer = slots.open_inactive_slot(len(NEW_IMAGE))
    writer.write_at(0, NEW_IMAGE)
    with pytest.raises(ReadBackMismatchError):
        slots.activate(expected_sha256=b"\x02" * 32)
    with pytest.raises(ReadBackMismatchError):
        DirectorySlots(root).activate(expected_sha256=b"\x02" * 32)
    slots.activate(permanent=True)
    assert slots.state().pending_version is not None
    slots.revert()  # cancel the pending switch
    assert slots.boot() == "A"
    # A damaged current slot is skipped at start.
    slots.open_inactive_slot(len(NEW_IMAGE)).write_at(0, NEW_IMAGE)
    slots.activate(permanent=True)
    slots.payload("B").write_bytes(b"junk")
    assert DirectorySlots(root, validator=VALIDATOR).boot() == "A"
    slots.payload("A").write_bytes(b"junk")
    with pytest.raises(NoBootableImageError):
        DirectorySlots(root, validator=VALIDATOR).boot()
    os.replace(root / "current", root / "old-link")
    os.symlink("slots/elsewhere", root / "current")
    with pytest.raises(NoBootableImageError):
        DirectorySlots(root)


def test_directory_slots_without_validator(tmp_path: Path) -> None:
    slots = DirectorySlots.initialise(tmp_path / "app", b"bundle")
    assert slots.state().running_version is not None
    slots.open_inactive_slot(3).write_at(0, b"new")
    slots.activate()
    assert DirectorySlots(tmp_path / "app").boot() == "B"
    slots = DirectorySlots(tmp_path / "app")
    assert slots.state().in_trial and slots.state().boot_attempts_left == 2
    slots.revert()
    slots.revert()  # nothing left to revert
    assert DirectorySlots(tmp_path / "app").boot() == "A"


def test_file_slot_writer_and_reader(tmp_path: Path) -> None:
    with pytest.raises(ImageTooLargeError):
        FileSlotWriter.for_image(tmp_path / "s", 10, 11)
    writer = FileSlotWriter.for_image(tmp_path / "s", 10, 4)
    with pytest.raises(WriteOutOfBoundsError):
        writer.write_at(8, b"abc")
    writer.write_at(0, b"abcd")
    assert writer.sha256(4) == hashlib.sha256(b"abcd").digest()
    assert writer.capacity == 10
    writer.close()
    writer.close()
    with pytest.raises(InstallError):
        writer.write_at(0, b"x")
    with pytest.raises(InstallError):
        FileSlotWriter(tmp_path / "no" / "dir", 10)
    reader = FileSlotReader(tmp_path / "s", 10)
    assert reader.read(2, 100) == b"cd"
    assert reader.read(20, 1) == b""
    assert FileSlotReader(tmp_path / "missing", 10).read(0, 4) == b""
    with pytest.raises(InstallError):
        FileSlotReader(tmp_path, 10).read(0, 1)

"""Resuming a download into the MCU secondary slot: read-back, the image's last write unit, the kept slot."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ota_boot import BootLayout, DemoImageValidator, McuBootControl, SimFlash, build_demo_image
from ota_boot.flash import FlashLayout
from ota_boot.slot_writer import FlashSlotWriter
from ota_core.state_store import FileStateStore

LAYOUT = BootLayout.simple(sector_size=1024, image_sectors=8, write_alignment=4)


def test_read_returns_flash_and_pending_bytes() -> None:
    flash = SimFlash(FlashLayout.uniform(256, 8, write_alignment=4))
    writer = FlashSlotWriter(flash, 256, 1000, alignment=4, erased_value=0xFF)
    writer.write_at(0, b"abcdef")  # "abcd" programmed, "ef" pending
    assert writer.read(0, 6) == b"abcdef"
    assert writer.read(4, 4) == b"ef\xff\xff"
    assert flash.read(256 + 4, 2) == b"\xff\xff"


def test_the_last_partial_unit_of_the_image_is_written_at_once() -> None:
    flash = SimFlash(FlashLayout.uniform(256, 8, write_alignment=4))
    writer = FlashSlotWriter(flash, 256, 10, alignment=4, erased_value=0xFF)
    writer.write_at(8, b"yz")  # the image ends at 10: this unit is complete
    assert flash.read(256 + 8, 2) == b"yz"
    writer.write_at(0, b"abcdefgh")
    writer.flush()
    assert flash.read(256, 10) == b"abcdefghyz"


def _control(tmp_path: Path, store: FileStateStore | None) -> tuple[SimFlash, McuBootControl]:
    path = tmp_path / "flash.bin"
    flash = SimFlash.open(path) if path.exists() else SimFlash.create(path, LAYOUT.flash)
    return flash, McuBootControl(flash, LAYOUT, DemoImageValidator(), state_store=store)


def test_reopening_for_the_same_size_keeps_the_written_part(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path / "state")
    image = build_demo_image(b"new application " * 300, "2.0.0")
    _flash, control = _control(tmp_path, store)
    writer = control.open_inactive_slot(len(image))
    writer.write_at(0, image[:2048])
    writer.flush()
    # a restart: a new control over the same flash and store
    _flash, control = _control(tmp_path, store)
    writer = control.open_inactive_slot(len(image))
    assert writer.read(0, 2048) == image[:2048]
    writer.write_at(2048, image[2048:])
    control.activate(expected_sha256=hashlib.sha256(image).digest())
    assert store.load("mcu-secondary-slot-open") is None


def test_another_size_or_a_discarded_write_erases(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path / "state")
    _flash, control = _control(tmp_path, store)
    writer = control.open_inactive_slot(3000)
    writer.write_at(0, b"\x01" * 1024)
    writer.flush()
    writer = control.open_inactive_slot(3001)
    assert writer.read(0, 4) == b"\xff" * 4
    writer.write_at(0, b"\x02" * 1024)
    writer.flush()
    control.discard_partial()
    writer = control.open_inactive_slot(3001)
    assert writer.read(0, 4) == b"\xff" * 4


def test_without_a_store_the_slot_is_always_erased(tmp_path: Path) -> None:
    _flash, control = _control(tmp_path, None)
    writer = control.open_inactive_slot(3000)
    writer.write_at(0, b"\x01" * 1024)
    writer.flush()
    control.discard_partial()
    assert control.open_inactive_slot(3000).read(0, 4) == b"\xff" * 4

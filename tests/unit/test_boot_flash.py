"""The simulated NOR flash: geometry, NOR rules, power cuts, torn operations, bad regions."""

from __future__ import annotations

import pytest

from ota_boot.errors import (
    BootConfigurationError,
    FlashNotErasedError,
    FlashUnalignedError,
    FlashWriteFailedError,
    PowerCut,
    WriteOutOfBoundsError,
)
from ota_boot.flash import FlashLayout, SimFlash


def _flash(align: int = 4, erased: int = 0xFF) -> SimFlash:
    return SimFlash(FlashLayout((256, 256, 512), write_alignment=align, erased_value=erased))


def test_layout_geometry() -> None:
    layout = FlashLayout.uniform(128, 4, write_alignment=8, erased_value=0)
    assert layout.size == 512
    assert layout.sector_offsets() == [0, 128, 256, 384]
    assert layout.sector_span(100, 60) == [(0, 128), (128, 128)]
    assert FlashLayout.from_json(layout.to_json()) == layout


@pytest.mark.parametrize(
    "make",
    [
        lambda: FlashLayout(()),
        lambda: FlashLayout((0,)),
        lambda: FlashLayout((256,), write_alignment=3),
        lambda: FlashLayout((256,), erased_value=0x7F),
        lambda: FlashLayout((250,), write_alignment=8),
        lambda: FlashLayout.uniform(256, 0),
        lambda: FlashLayout.from_json([1]),
        lambda: FlashLayout.from_json({"sector_sizes": "x"}),
    ],
)
def test_layout_rejects_bad_settings(make: object) -> None:
    with pytest.raises(BootConfigurationError):
        make()  # type: ignore[operator]


@pytest.mark.parametrize("erased", [0xFF, 0x00])
def test_nor_rules(erased: int) -> None:
    flash = _flash(erased=erased)
    assert flash.read(0, 4) == bytes([erased]) * 4
    flash.write(0, b"\x12\x34\x56\x78")
    with pytest.raises(FlashNotErasedError):
        flash.write(0, b"\x12\x34\x56\x78")
    with pytest.raises(FlashUnalignedError):
        flash.write(2, b"\x00\x00\x00\x00")
    with pytest.raises(FlashUnalignedError):
        flash.write(8, b"\x00\x00")
    with pytest.raises(WriteOutOfBoundsError):
        flash.write(1024, b"\x00" * 4)
    with pytest.raises(WriteOutOfBoundsError):
        flash.read(1020, 8)
    with pytest.raises(FlashUnalignedError):
        flash.erase(0, 100)
    flash.write(4, b"")
    flash.erase(0, 256)
    assert flash.is_erased(0, 256)
    flash.erase(256, 768)
    assert flash.ops == 4


def test_power_cut_after_an_operation_and_reboot() -> None:
    flash = _flash()
    flash.arm_power_cut(2)
    flash.write(0, b"aaaa")
    with pytest.raises(PowerCut):
        flash.write(4, b"bbbb")
    assert flash.dead
    with pytest.raises(PowerCut):
        flash.read(0, 4)
    fresh = flash.reboot()
    assert fresh.read(0, 8) == b"aaaabbbb"
    assert not fresh.dead
    with pytest.raises(BootConfigurationError):
        fresh.arm_power_cut(0)


def test_torn_write_and_torn_erase() -> None:
    flash = _flash()
    flash.arm_power_cut(1, tear=True, tear_bytes=4)
    with pytest.raises(PowerCut):
        flash.write(0, b"12345678")
    flash = flash.reboot()
    assert flash.read(0, 8) == b"1234\xff\xff\xff\xff"
    flash.arm_power_cut(1, tear=True)
    with pytest.raises(PowerCut):
        flash.erase(0, 256)
    flash = flash.reboot()
    assert flash.is_erased(0, 128)
    assert flash.read(0, 4) == b"\xff" * 4
    flash.write(128, b"abcd") if flash.is_erased(128, 4) else None
    flash.arm_power_cut(5)
    flash.disarm()
    flash.write(200, b"zzzz")


def test_bad_regions() -> None:
    flash = _flash()
    flash.add_bad_region(256, 16, failures=1)
    with pytest.raises(FlashWriteFailedError) as caught:
        flash.write(256, b"0000")
    assert caught.value.retryable
    flash.write(256, b"0000")  # the region failed once only
    flash.add_bad_region(512, 512)
    with pytest.raises(FlashWriteFailedError):
        flash.erase(512, 512)
    assert flash.reboot()._bad  # bad regions survive a reboot
    with pytest.raises(WriteOutOfBoundsError):
        flash.add_bad_region(1000, 100)

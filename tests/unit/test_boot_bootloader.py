"""The bootloader model's decision table and error paths, and the MCU boot control."""

from __future__ import annotations

import hashlib

import pytest

from ota_boot.bootloader import Bootloader
from ota_boot.demo_image import DemoImageValidator, build_demo_image
from ota_boot.errors import (
    BootConfigurationError,
    FlashWriteFailedError,
    ImageTooLargeError,
    NoBootableImageError,
    ReadBackMismatchError,
    SlotBusyError,
)
from ota_boot.flash import FlashLayout, SimFlash
from ota_boot.layout import BootLayout, SwapMode
from ota_boot.mcu_control import McuBootControl
from ota_boot.trailer import BOOT_MAGIC, FlagState, MagicState, SwapType
from ota_core.errors import VerificationError
from ota_core.versions import Version

OLD = build_demo_image(b"o" * 700, "1.0.0")
NEW = build_demo_image(b"n" * 900, "2.0.0")
VALIDATOR = DemoImageValidator()


def _device(mode: SwapMode = SwapMode.SWAP_MOVE) -> tuple[SimFlash, BootLayout, McuBootControl]:
    layout = BootLayout.simple(sector_size=256, image_sectors=6, write_alignment=4, mode=mode)
    flash = SimFlash(layout.flash)
    flash.write(layout.primary_offset, OLD + b"\xff" * (-len(OLD) % 4))
    return flash, layout, McuBootControl(flash, layout, VALIDATOR)


def _stage(control: McuBootControl, image: bytes = NEW, *, permanent: bool = False) -> None:
    writer = control.open_inactive_slot(len(image))
    writer.write_at(0, image)
    control.activate(permanent=permanent, expected_sha256=hashlib.sha256(image).digest())


def _boot(flash: SimFlash, layout: BootLayout) -> Version:
    return Bootloader(flash, layout, VALIDATOR).boot().image.version


def _write_trailer_field(flash: SimFlash, layout: BootLayout, slot: str, field: int, data: bytes) -> None:
    flash.write(layout.trailer_offset(slot) + field, layout.trailer.field(data))


def test_decision_table_rows() -> None:
    flash, layout, control = _device()
    loader = Bootloader(flash, layout, VALIDATOR)
    assert loader.decide() == (SwapType.NONE, False)
    _stage(control)
    assert loader.decide() == (SwapType.TEST, False)
    control.revert()
    assert loader.decide() == (SwapType.NONE, False)
    _stage(control, permanent=True)
    assert loader.decide() == (SwapType.PERM, False)
    result = loader.boot()
    assert result.swap is SwapType.PERM and result.image.version == Version(2, 0, 0)
    primary = loader.read_trailer("primary")
    assert (primary.magic, primary.image_ok, primary.copy_done) == (MagicState.GOOD, FlagState.SET, FlagState.SET)
    assert loader.read_trailer("secondary").is_erased
    assert flash.read(layout.secondary_offset, len(OLD)) == OLD


def test_test_swap_then_revert_row() -> None:
    flash, layout, control = _device()
    _stage(control)
    assert _boot(flash, layout) == Version(2, 0, 0)
    loader = Bootloader(flash, layout, VALIDATOR)
    assert loader.decide() == (SwapType.REVERT, False)
    result = loader.boot()
    assert result.swap is SwapType.REVERT and result.image.version == Version(1, 0, 0)
    assert not control.state().in_trial


def test_invalid_secondary_is_dropped() -> None:
    flash, layout, control = _device()
    writer = control.open_inactive_slot(len(NEW))
    writer.write_at(0, NEW[:-1] + bytes([NEW[-1] ^ 1]))
    writer.close()
    _write_trailer_field(flash, layout, "secondary", layout.trailer.magic_offset, BOOT_MAGIC)
    result = Bootloader(flash, layout, VALIDATOR).boot()
    assert result.image.version == Version(1, 0, 0)
    assert any("rejected" in note for note in result.notes)
    assert Bootloader(flash, layout, VALIDATOR).read_trailer("secondary").is_erased


def test_unknown_swap_type_boots_primary_with_a_note() -> None:
    flash, layout, _control = _device()
    _write_trailer_field(flash, layout, "primary", layout.trailer.swap_info_offset, b"\x07")
    _write_trailer_field(flash, layout, "primary", layout.trailer.magic_offset, BOOT_MAGIC)
    result = Bootloader(flash, layout, VALIDATOR).boot()
    assert result.image.version == Version(1, 0, 0)
    assert "unknown swap type" in result.notes[0]


def test_bad_image_ok_in_secondary_is_ignored() -> None:
    flash, layout, _control = _device()
    _write_trailer_field(flash, layout, "secondary", layout.trailer.image_ok_offset, b"\x33")
    _write_trailer_field(flash, layout, "secondary", layout.trailer.magic_offset, BOOT_MAGIC)
    result = Bootloader(flash, layout, VALIDATOR).boot()
    assert result.swap is SwapType.NONE
    assert "bad image_ok" in result.notes[0]


def test_bad_recorded_swap_size_is_reported() -> None:
    flash, layout, _control = _device()
    base = layout.trailer_offset("primary")
    flash.write(base + layout.trailer.swap_size_offset, layout.trailer.swap_size(100000))
    _write_trailer_field(flash, layout, "primary", layout.trailer.swap_info_offset, b"\x03")
    _write_trailer_field(flash, layout, "primary", layout.trailer.magic_offset, BOOT_MAGIC)
    from ota_boot.errors import UnknownSwapStateError

    with pytest.raises(UnknownSwapStateError):
        Bootloader(flash, layout, VALIDATOR).boot()


def test_no_valid_image_is_a_typed_error() -> None:
    layout = BootLayout.simple(sector_size=256, image_sectors=4)
    flash = SimFlash(layout.flash)
    with pytest.raises(NoBootableImageError) as caught:
        Bootloader(flash, layout, VALIDATOR).boot()
    assert "primary image is not valid" in caught.value.message


def test_revert_without_a_valid_previous_image_keeps_the_running_one() -> None:
    flash, layout, control = _device()
    _stage(control)
    _boot(flash, layout)
    flash.erase(layout.secondary_offset, layout.sector_size)  # the old image is damaged
    result = Bootloader(flash, layout, VALIDATOR).boot()
    assert result.image.version == Version(2, 0, 0)
    assert any("cannot revert" in note for note in result.notes)
    assert not control.state().in_trial


def test_overwrite_only_installs_test_images_permanently() -> None:
    flash, layout, control = _device(SwapMode.OVERWRITE_ONLY)
    _stage(control)
    result = Bootloader(flash, layout, VALIDATOR).boot()
    assert result.image.version == Version(2, 0, 0)
    assert "overwrite-only" in result.notes[0]
    assert _boot(flash, layout) == Version(2, 0, 0)


def test_control_errors_and_idempotence() -> None:
    flash, layout, control = _device()
    with pytest.raises(ImageTooLargeError):
        control.open_inactive_slot(layout.image_capacity + 1)
    with pytest.raises(ImageTooLargeError):
        control.open_inactive_slot(0)
    writer = control.open_inactive_slot(len(NEW))
    writer.write_at(0, NEW)
    with pytest.raises(ReadBackMismatchError):
        control.activate(expected_sha256=b"\x00" * 32)
    with pytest.raises(ReadBackMismatchError):
        McuBootControl(flash, layout, VALIDATOR).activate(expected_sha256=b"\x00" * 32)
    control.activate()
    control.activate()  # same request again: nothing to write
    control.activate(permanent=True)  # upgraded to permanent: trailer rewritten
    state = control.state()
    assert state.pending_version == Version(2, 0, 0) and not state.in_trial
    control.confirm()  # nothing on trial: no-op
    _boot(flash, layout)
    assert control.state().running_version == Version(2, 0, 0)


def test_control_refuses_a_second_update_during_a_trial() -> None:
    flash, layout, control = _device()
    _stage(control)
    _boot(flash, layout)
    with pytest.raises(SlotBusyError):
        control.open_inactive_slot(len(NEW))
    control.confirm()
    control.confirm()
    _stage(control, OLD)


def test_activate_refuses_an_invalid_image() -> None:
    _flash, _layout, control = _device()
    writer = control.open_inactive_slot(len(NEW))
    writer.write_at(0, b"\x00" * len(NEW))
    with pytest.raises(VerificationError):
        control.activate()


def test_state_with_no_valid_image() -> None:
    layout = BootLayout.simple(sector_size=256, image_sectors=4)
    control = McuBootControl(SimFlash(layout.flash), layout, VALIDATOR)
    assert control.state().running_version is None


def test_bad_region_during_install_leaves_the_old_image() -> None:
    flash, layout, control = _device()
    flash.add_bad_region(layout.secondary_offset + 256, 16)
    writer = control.open_inactive_slot(len(NEW))
    with pytest.raises(FlashWriteFailedError):
        writer.write_at(0, NEW)
    assert _boot(flash, layout) == Version(1, 0, 0)


@pytest.mark.parametrize(
    "make",
    [
        lambda: BootLayout(FlashLayout.uniform(256, 9), 0, 1024, 1024, 1024),  # swap-move needs one more
        lambda: BootLayout(FlashLayout.uniform(256, 9), 0, 768, 768, 1024, SwapMode.OVERWRITE_ONLY),
        lambda: BootLayout(FlashLayout.uniform(256, 4), 0, 512, 512, 2048),
        lambda: BootLayout(FlashLayout.uniform(256, 8), 0, 600, 768, 512),
        lambda: BootLayout(FlashLayout((256, 256, 512, 512, 512)), 0, 512, 512, 1024, SwapMode.OVERWRITE_ONLY),
        lambda: BootLayout(FlashLayout.uniform(256, 8), 0, 768, 512, 512),
        lambda: BootLayout(FlashLayout.uniform(32, 4), 0, 64, 64, 32, SwapMode.OVERWRITE_ONLY),
        lambda: BootLayout(FlashLayout.uniform(256, 8, write_alignment=16), 0, 768, 768, 512),
    ],
)
def test_layout_rejects_bad_slots(make: object) -> None:
    with pytest.raises(BootConfigurationError):
        make()  # type: ignore[operator]


def test_failing_status_area_keeps_the_old_image() -> None:
    """MCUboot's "status fails" case: the primary trailer cannot be written at all."""
    flash, layout, control = _device()
    _stage(control, permanent=True)
    flash.add_bad_region(layout.trailer_sectors_offset("primary"), layout.trailer_sectors * layout.sector_size)
    result = Bootloader(flash, layout, VALIDATOR).boot()
    assert result.image.version == Version(1, 0, 0)
    assert "flash failure" in result.notes[0]


def test_transient_flash_failure_mid_swap_resumes_later() -> None:
    flash, layout, control = _device()
    _stage(control, permanent=True)
    flash.add_bad_region(layout.secondary_offset, layout.sector_size, failures=1)
    try:
        first = Bootloader(flash, layout, VALIDATOR).boot()
        assert "flash failure" in first.notes[0]
    except NoBootableImageError as error:
        assert "flash failure" in error.details["notes"][0]
    result = Bootloader(flash, layout, VALIDATOR).boot()
    assert result.image.version == Version(2, 0, 0)
    assert result.resumed

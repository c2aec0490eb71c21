"""Boot control for an MCU with an MCUboot-style bootloader, seen from the running application.

The application writes the new image into the secondary slot, asks for a test (or permanent) swap by
writing the secondary trailer, and after the swap confirms the running image by setting ``image_ok``
in the primary trailer. An unconfirmed test image is reverted by the bootloader at the next reset.
"""

from __future__ import annotations

import hmac
import logging

from ota_boot.bootloader import Bootloader, FlashSlotReader
from ota_boot.errors import ImageTooLargeError, ReadBackMismatchError, SlotBusyError
from ota_boot.flash import SimFlash
from ota_boot.layout import BootLayout
from ota_boot.slot_writer import FlashSlotWriter, sha256_of_reader
from ota_boot.trailer import BOOT_MAGIC, FlagState, MagicState
from ota_core.errors import VerificationError
from ota_core.protocols import ImageState, ImageValidator, StateStore
from ota_core.versions import Version

__all__ = ["McuBootControl"]

_log = logging.getLogger(__name__)
_OPEN_SLOT_DOCUMENT = "mcu-secondary-slot-open"


class McuBootControl:
    """Implements ``BootControl`` over a flash device shared with the bootloader model."""

    def __init__(
        self,
        flash: SimFlash,
        layout: BootLayout,
        validator: ImageValidator,
        *,
        state_store: StateStore | None = None,
    ) -> None:
        """``state_store`` (optional) remembers an unfinished write of the secondary slot, so that opening
        it again for an image of the same size after a restart keeps what was written (a download resumes
        into it) instead of erasing it."""
        self._store = state_store
        self._flash = flash
        self._layout = layout
        self._validator = validator
        self._loader = Bootloader(flash, layout, validator)
        self._image_size: int | None = None
        self._writer: FlashSlotWriter | None = None

    # --- BootControl -----------------------------------------------------------------------------

    def open_inactive_slot(self, size: int) -> FlashSlotWriter:
        """Erase the secondary slot and return a writer for an image of ``size`` bytes."""
        if size > self._layout.image_capacity or size <= 0:
            raise ImageTooLargeError(
                f"image of {size} bytes does not fit the {self._layout.image_capacity}-byte slot",
                details={"image_size": size, "capacity": self._layout.image_capacity},
            )
        if self._in_trial():
            raise SlotBusyError("the running image is on trial: confirm or revert it before the next update")
        sector = self._layout.sector_size
        base = self._layout.secondary_offset
        if not self._resumable(size):
            if self._store is not None:
                self._store.delete(_OPEN_SLOT_DOCUMENT)
            for index in range(self._layout.image_sectors + self._layout.trailer_sectors):
                if not self._flash.is_erased(base + index * sector, sector):
                    self._flash.erase(base + index * sector, sector)
            if self._store is not None:
                self._store.save(_OPEN_SLOT_DOCUMENT, {"size": size})
        self._image_size = size
        self._writer = FlashSlotWriter(
            self._flash,
            base,
            size,
            alignment=self._layout.flash.write_alignment,
            erased_value=self._layout.flash.erased_value,
        )
        return self._writer

    def activate(
        self, *, permanent: bool = False, expected_sha256: bytes | None = None, image_size: int | None = None
    ) -> None:
        """Ask the bootloader to swap in the secondary image at the next reset.

        With ``expected_sha256`` the slot is read back and hashed first: what is activated is what was
        verified. The image validator must accept the slot. Calling it again is harmless.
        """
        if self._writer is not None:
            self._writer.close()
        size = image_size if image_size is not None else self._image_size
        reader = FlashSlotReader(self._flash, self._layout.secondary_offset, self._layout.image_capacity)
        if expected_sha256 is not None:
            if size is None:
                raise ReadBackMismatchError("image size unknown: pass image_size to check the read-back hash")
            actual = sha256_of_reader(reader, size)
            if not hmac.compare_digest(actual, expected_sha256):
                raise ReadBackMismatchError(
                    "the secondary slot does not hold the verified image",
                    details={"expected": expected_sha256.hex(), "actual": actual.hex()},
                )
        self._validator.validate(reader)
        current = self._loader.read_trailer("secondary")
        wanted_ok = FlagState.SET if permanent else FlagState.UNSET
        if current.magic is MagicState.GOOD and current.image_ok is wanted_ok and current.swap_type is None:
            return
        trailer = self._layout.trailer
        start = self._layout.trailer_sectors_offset("secondary")
        length = self._layout.trailer_sectors * self._layout.sector_size
        if not self._flash.is_erased(start, length):
            self._flash.erase(start, length)
        base = self._layout.trailer_offset("secondary")
        if permanent:
            self._flash.write(base + trailer.image_ok_offset, trailer.flag())
        self._flash.write(base + trailer.magic_offset, trailer.field(BOOT_MAGIC))
        if self._store is not None:
            self._store.delete(_OPEN_SLOT_DOCUMENT)
        _log.info("secondary image activated (%s)", "permanent" if permanent else "test")

    def state(self) -> ImageState:
        """The running image, whether it is on trial, and the pending image if any."""
        running = self._version("primary")
        secondary = self._loader.read_trailer("secondary")
        pending = self._version("secondary") if secondary.magic is MagicState.GOOD else None
        trial = self._in_trial()
        return ImageState(
            running_version=running,
            in_trial=trial,
            pending_version=pending,
            boot_attempts_left=1 if trial else None,
            slot="primary",
        )

    def confirm(self) -> None:
        """Set ``image_ok`` of the running trial image; does nothing if nothing is on trial."""
        if not self._in_trial():
            return
        offset = self._layout.trailer_offset("primary") + self._layout.trailer.image_ok_offset
        self._flash.write(offset, self._layout.trailer.flag())
        _log.info("running image confirmed")

    def revert(self) -> None:
        """Cancel a pending update; a running trial is reverted by the bootloader at the next reset."""
        secondary = self._loader.read_trailer("secondary")
        if secondary.magic is not MagicState.UNSET or secondary.image_ok is not FlagState.UNSET:
            start = self._layout.trailer_sectors_offset("secondary")
            self._flash.erase(start, self._layout.trailer_sectors * self._layout.sector_size)
            _log.info("pending update cancelled")

    def discard_partial(self) -> None:
        """Forget an unfinished write of the secondary slot (the update was cancelled or failed): the next
        ``open_inactive_slot`` erases the slot whatever the size."""
        if self._store is not None:
            self._store.delete(_OPEN_SLOT_DOCUMENT)

    # --- internals -------------------------------------------------------------------------------

    def _resumable(self, size: int) -> bool:
        """An unfinished write of an image of this size, and no activation since: keep the slot."""
        if self._store is None:
            return False
        stored = self._store.load(_OPEN_SLOT_DOCUMENT)
        if stored is None or stored.data.get("size") != size:
            return False
        return self._loader.read_trailer("secondary").magic is MagicState.UNSET

    def _in_trial(self) -> bool:
        primary = self._loader.read_trailer("primary")
        return (
            primary.magic is MagicState.GOOD
            and primary.copy_done is FlagState.SET
            and primary.image_ok is FlagState.UNSET
        )

    def _version(self, slot: str) -> Version | None:
        try:
            return self._validator.validate(self._loader.reader(slot)).version
        except VerificationError:
            return None

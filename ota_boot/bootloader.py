"""An MCUboot-style bootloader model over the simulated flash.

At every start it reads both slot trailers, applies the swap decision table, resumes or performs a
swap, and boots the primary image only if the image validator accepts it.

Decision, in order:

1. primary trailer has a good magic, ``copy_done`` unset and a swap type: a swap was interrupted;
   resume it from the status entries;
2. secondary magic good and ``image_ok`` set: PERM (or a revert journaled as a permanent swap back);
3. secondary magic good and ``image_ok`` unset: TEST;
4. primary magic good, ``image_ok`` unset, ``copy_done`` set: REVERT (the trial was never confirmed);
5. otherwise NONE.

Every step writes its own record only after the step is complete, and every record is written in an
order that leaves a decodable state after a cut or a torn write at any point:

* a swap starts by erasing the primary trailer and writing ``swap_size``, ``swap_info`` (and
  ``image_ok`` for a permanent swap) *before* the magic, so a half-initialised trailer is ignored and
  the secondary trailer still asks for the swap;
* a revert first journals itself in the secondary trailer as a permanent swap (``image_ok`` then
  magic), so the request survives the erasure of the primary trailer (MCUboot issue #1966's class of
  brick);
* swap-move moves the primary image up one sector (top sector first), then, sector by sector, copies
  the secondary sector down and the moved old sector across; each copy erases its destination
  first, its source is never touched before its record is written, so any step can be redone;
* status entries count as done when any byte is programmed, because a status write only starts once
  its step is finished.
"""

from __future__ import annotations

import logging

import attrs

from ota_boot.errors import FlashWriteFailedError, NoBootableImageError, UnknownSwapStateError
from ota_boot.flash import SimFlash
from ota_boot.layout import BootLayout, SwapMode
from ota_boot.trailer import BOOT_MAGIC, FlagState, MagicState, SwapType, Trailer, decode_trailer
from ota_core.errors import VerificationError
from ota_core.protocols import ImageInfo, ImageValidator

__all__ = ["BootResult", "Bootloader", "FlashSlotReader"]

_log = logging.getLogger(__name__)
_MAX_DECISIONS = 4
_SWAPS = (SwapType.TEST, SwapType.PERM, SwapType.REVERT)


class FlashSlotReader:
    """Read access to the image area of one slot; implements ``SlotReader``."""

    def __init__(self, flash: SimFlash, offset: int, size: int) -> None:
        self._flash = flash
        self._offset = offset
        self._size = size

    @property
    def size(self) -> int:
        """The size of the image area."""
        return self._size

    def read(self, offset: int, length: int) -> bytes:
        """Read ``length`` bytes at ``offset`` of the image area (clamped to the area)."""
        offset = max(0, min(offset, self._size))
        length = max(0, min(length, self._size - offset))
        return self._flash.read(self._offset + offset, length)


@attrs.frozen
class BootResult:
    """What a boot did: the slot started, its image, the swap performed and anything noteworthy."""

    slot: str
    image: ImageInfo
    swap: SwapType
    resumed: bool = False
    notes: tuple[str, ...] = ()


class Bootloader:
    """One start of the bootloader: decide, swap (resumably), validate, boot."""

    def __init__(self, flash: SimFlash, layout: BootLayout, validator: ImageValidator) -> None:
        self.flash = flash
        self.layout = layout
        self.validator = validator
        self._notes: list[str] = []

    # --- reading ---------------------------------------------------------------------------------

    def read_trailer(self, slot: str) -> Trailer:
        """Decode the trailer of ``"primary"`` or ``"secondary"``."""
        raw = self.flash.read(self.layout.trailer_offset(slot), self.layout.trailer.size)
        return decode_trailer(self.layout.trailer, raw)

    def reader(self, slot: str) -> FlashSlotReader:
        """The image area of a slot (the first ``image_sectors`` sectors)."""
        return FlashSlotReader(self.flash, self.layout.slot_offset(slot), self.layout.image_capacity)

    def decide(self) -> tuple[SwapType, bool]:
        """Apply the decision table: the swap to perform and whether it resumes an interrupted one."""
        primary, secondary = self.read_trailer("primary"), self.read_trailer("secondary")
        if primary.magic is MagicState.GOOD and primary.copy_done is FlagState.UNSET and primary.swap_type is not None:
            if primary.swap_type in _SWAPS and primary.swap_size is not None:
                return SwapType(primary.swap_type), True
            if primary.swap_type != SwapType.NONE:
                raise UnknownSwapStateError(
                    f"primary trailer records unknown swap type {primary.swap_type:#x}",
                    details={"swap_type": primary.swap_type, "swap_size": primary.swap_size},
                )
        if secondary.magic is MagicState.GOOD:
            if secondary.image_ok is FlagState.SET:
                return (SwapType.REVERT if secondary.swap_type == SwapType.REVERT else SwapType.PERM), False
            if secondary.image_ok is FlagState.UNSET:
                return SwapType.TEST, False
            raise UnknownSwapStateError(
                "secondary trailer has a bad image_ok flag",
                details={"slot": "secondary", "field": "image_ok"},
            )
        if (
            primary.magic is MagicState.GOOD
            and primary.image_ok is FlagState.UNSET
            and primary.copy_done is FlagState.SET
        ):
            return SwapType.REVERT, False
        return SwapType.NONE, False

    # --- boot ------------------------------------------------------------------------------------

    def boot(self) -> BootResult:
        """Run one start: returns what booted, or raises ``NoBootableImageError``."""
        self._notes = []
        performed, resumed = SwapType.NONE, False
        try:
            performed, resumed = self._decide_and_swap()
        except FlashWriteFailedError as error:
            # A failing flash region: the swap stays recorded and resumes at a later start.
            self._note(f"flash failure during the swap ({error.message}); trying the primary image")
        try:
            image = self.validator.validate(self.reader("primary"))
        except VerificationError as error:
            raise NoBootableImageError(
                f"primary image is not valid: {error.message}", details={"notes": list(self._notes)}
            ) from error
        return BootResult("primary", image, performed, resumed, tuple(self._notes))

    def _decide_and_swap(self) -> tuple[SwapType, bool]:
        for _ in range(_MAX_DECISIONS):
            try:
                swap, resume = self.decide()
            except UnknownSwapStateError as error:
                self._note(f"{error.message}; booting the primary image as it is")
                break
            if swap is SwapType.NONE:
                break
            if resume:
                self._run_swap(self.read_trailer("primary"))
                return swap, True
            if swap is SwapType.REVERT and self.read_trailer("secondary").magic is not MagicState.GOOD:
                if not self._journal_revert():
                    break
                continue  # the journaled revert is now a permanent swap request
            if self._start_swap(swap):
                return swap, False
            break
        return SwapType.NONE, False

    # --- steps -----------------------------------------------------------------------------------

    def _note(self, text: str) -> None:
        _log.warning("bootloader: %s", text)
        self._notes.append(text)

    def _valid(self, slot: str) -> bool:
        try:
            self.validator.validate(self.reader(slot))
        except VerificationError as error:
            self._note(f"{slot} image invalid: {error.message}")
            return False
        return True

    def _journal_revert(self) -> bool:
        """Record the revert in the secondary trailer before anything is destroyed."""
        if not self._valid("secondary"):
            self._note("cannot revert: the previous image is gone; keeping the running image")
            self._write_flag("primary", self.layout.trailer.image_ok_offset)
            return False
        self._erase_trailer("secondary")
        trailer = self.layout.trailer
        base = self.layout.trailer_offset("secondary")
        self.flash.write(base + trailer.swap_info_offset, trailer.swap_info(SwapType.REVERT))
        self.flash.write(base + trailer.image_ok_offset, trailer.flag())
        self.flash.write(base + trailer.magic_offset, trailer.field(BOOT_MAGIC))
        return True

    def _start_swap(self, swap: SwapType) -> bool:
        if not self._valid("secondary"):
            self._note("secondary image rejected; erasing its trailer")
            self._erase_trailer("secondary")
            return False
        if self.layout.mode is SwapMode.OVERWRITE_ONLY:
            if swap is SwapType.TEST:
                self._note("overwrite-only: a test upgrade is installed permanently")
            self._overwrite()
            return True
        used = max(self._used_sectors("primary", self.layout.image_sectors + 1), self._used_sectors("secondary"))
        count = max(1, min(used, self.layout.image_sectors))
        trailer = self.layout.trailer
        base = self.layout.trailer_offset("primary")
        self._erase_trailer("primary")
        self.flash.write(base + trailer.swap_size_offset, trailer.swap_size(count * self.layout.sector_size))
        self.flash.write(base + trailer.swap_info_offset, trailer.swap_info(swap))
        if swap is not SwapType.TEST:
            self.flash.write(base + trailer.image_ok_offset, trailer.flag())
        self.flash.write(base + trailer.magic_offset, trailer.field(BOOT_MAGIC))
        self._run_swap(self.read_trailer("primary"))
        return True

    def _run_swap(self, primary: Trailer) -> None:
        size = primary.swap_size or 0
        sector = self.layout.sector_size
        count = size // sector
        if size % sector or not 1 <= count <= self.layout.image_sectors:
            raise UnknownSwapStateError(
                f"recorded swap size {size} does not fit this layout", details={"swap_size": size}
            )
        p = self.layout.primary_offset
        s = self.layout.secondary_offset
        entry = 0
        for index in reversed(range(count)):  # move the old image up by one sector, top first
            self._step(primary, entry, p + index * sector, p + (index + 1) * sector)
            entry += 1
        for index in range(count):
            self._step(primary, entry, s + index * sector, p + index * sector)
            self._step(primary, entry + 1, p + (index + 1) * sector, s + index * sector)
            entry += 2
        self._erase_if_needed(p + count * sector, sector)
        self._erase_trailer("secondary")
        self._write_flag("primary", self.layout.trailer.copy_done_offset)

    def _step(self, primary: Trailer, entry: int, source: int, destination: int) -> None:
        if primary.status[entry]:
            return
        sector = self.layout.sector_size
        data = self.flash.read(source, sector)
        self._erase_if_needed(destination, sector)
        if data != bytes([self.layout.flash.erased_value]) * sector:
            self.flash.write(destination, data)
        trailer = self.layout.trailer
        self.flash.write(self.layout.trailer_offset("primary") + trailer.status_offset(entry), trailer.flag())

    def _overwrite(self) -> None:
        sector = self.layout.sector_size
        for index in range(self._used_sectors("secondary")):
            source = self.layout.secondary_offset + index * sector
            destination = self.layout.primary_offset + index * sector
            data = self.flash.read(source, sector)
            if self.flash.read(destination, sector) == data:
                continue
            self._erase_if_needed(destination, sector)
            self.flash.write(destination, data)
        self._erase_trailer("secondary")

    # --- internals -------------------------------------------------------------------------------

    def _used_sectors(self, slot: str, limit: int | None = None) -> int:
        sector = self.layout.sector_size
        base = self.layout.slot_offset(slot)
        used = 0
        for index in range(limit or self.layout.image_sectors):
            if not self.flash.is_erased(base + index * sector, sector):
                used = index + 1
        return used

    def _erase_if_needed(self, offset: int, length: int) -> None:
        if not self.flash.is_erased(offset, length):
            self.flash.erase(offset, length)

    def _erase_trailer(self, slot: str) -> None:
        self._erase_if_needed(
            self.layout.trailer_sectors_offset(slot), self.layout.trailer_sectors * self.layout.sector_size
        )

    def _write_flag(self, slot: str, field_offset: int) -> None:
        offset = self.layout.trailer_offset(slot) + field_offset
        if self.flash.is_erased(offset, self.layout.trailer.write_alignment):
            self.flash.write(offset, self.layout.trailer.flag())

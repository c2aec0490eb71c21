"""Where the primary and secondary slots live on a flash device, and how big an image may be.

Each slot ends in whole sectors reserved for the MCUboot trailer, so that a trailer can always be
erased and rewritten without touching image data. In swap-move mode the primary slot has one sector
more than the secondary: the sector the image is moved up into during a swap.
"""

from __future__ import annotations

import enum

import attrs

from ota_boot.errors import BootConfigurationError
from ota_boot.flash import FlashLayout
from ota_boot.trailer import MAX_ALIGN, TrailerLayout

__all__ = ["BootLayout", "SwapMode"]


class SwapMode(enum.StrEnum):
    """How the bootloader installs the secondary image."""

    SWAP_MOVE = "swap-move"
    OVERWRITE_ONLY = "overwrite-only"


@attrs.frozen
class BootLayout:
    """Two slots on one flash device, with the derived sector size, image size and trailer layout."""

    flash: FlashLayout
    primary_offset: int
    primary_size: int
    secondary_offset: int
    secondary_size: int
    mode: SwapMode = SwapMode.SWAP_MOVE
    sector_size: int = attrs.field(init=False)
    image_sectors: int = attrs.field(init=False)
    trailer_sectors: int = attrs.field(init=False)
    trailer: TrailerLayout = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        sector = self._uniform_sector_size()
        primary_count, secondary_count = self.primary_size // sector, self.secondary_size // sector
        if self.mode is SwapMode.SWAP_MOVE and primary_count != secondary_count + 1:
            raise BootConfigurationError("swap-move needs a primary slot exactly one sector larger than the secondary")
        if self.mode is SwapMode.OVERWRITE_ONLY and primary_count < secondary_count:
            raise BootConfigurationError("overwrite-only needs a primary slot at least as large as the secondary")
        for reserved in range(1, secondary_count):
            max_sectors = primary_count - reserved if self.mode is SwapMode.SWAP_MOVE else 0
            trailer = TrailerLayout(max_sectors, min(self.flash.write_alignment, MAX_ALIGN), self.flash.erased_value)
            if trailer.size <= reserved * sector:
                break
        else:
            raise BootConfigurationError("slots too small to hold an image and a trailer")
        object.__setattr__(self, "sector_size", sector)
        object.__setattr__(self, "trailer_sectors", reserved)
        object.__setattr__(self, "image_sectors", secondary_count - reserved)
        object.__setattr__(self, "trailer", trailer)

    def _uniform_sector_size(self) -> int:
        if self.flash.write_alignment > MAX_ALIGN:
            raise BootConfigurationError(f"write alignment above {MAX_ALIGN} is not supported by the trailer")
        sizes: set[int] = set()
        for offset, size in (
            (self.primary_offset, self.primary_size),
            (self.secondary_offset, self.secondary_size),
        ):
            if offset < 0 or size <= 0 or offset + size > self.flash.size:
                raise BootConfigurationError(f"slot {offset:#x}+{size:#x} is outside the flash")
            span = self.flash.sector_span(offset, size)
            if span[0][0] != offset or span[-1][0] + span[-1][1] != offset + size:
                raise BootConfigurationError(f"slot {offset:#x}+{size:#x} does not start and end on sector boundaries")
            sizes |= {sector for _start, sector in span}
        if len(sizes) != 1:
            raise BootConfigurationError("both slots must use sectors of one size")
        first, second = sorted([(self.primary_offset, self.primary_size), (self.secondary_offset, self.secondary_size)])
        if first[0] + first[1] > second[0]:
            raise BootConfigurationError("the slots overlap")
        return sizes.pop()

    @classmethod
    def simple(
        cls,
        *,
        sector_size: int,
        image_sectors: int,
        write_alignment: int = 1,
        erased_value: int = 0xFF,
        mode: SwapMode = SwapMode.SWAP_MOVE,
        boot_sectors: tuple[int, ...] = (),
    ) -> BootLayout:
        """A device holding an optional bootloader region, then the primary slot, then the secondary.

        ``image_sectors`` is the room for an image; trailer sectors are added as needed.
        """
        for reserved in range(1, image_sectors + 64):
            extra = 1 if mode is SwapMode.SWAP_MOVE else 0
            trailer = TrailerLayout(
                image_sectors + extra if mode is SwapMode.SWAP_MOVE else 0,
                min(write_alignment, MAX_ALIGN),
                erased_value,
            )
            if trailer.size <= reserved * sector_size:
                break
        secondary_count = image_sectors + reserved
        primary_count = secondary_count + extra
        flash = FlashLayout(
            (*boot_sectors, *(sector_size,) * (primary_count + secondary_count)),
            write_alignment=write_alignment,
            erased_value=erased_value,
        )
        base = sum(boot_sectors)
        return cls(
            flash,
            base,
            primary_count * sector_size,
            base + primary_count * sector_size,
            secondary_count * sector_size,
            mode,
        )

    @property
    def image_capacity(self) -> int:
        """The largest image the secondary slot takes, in bytes."""
        return self.image_sectors * self.sector_size

    def slot_offset(self, slot: str) -> int:
        """Start offset of ``"primary"`` or ``"secondary"``."""
        return self.primary_offset if slot == "primary" else self.secondary_offset

    def slot_size(self, slot: str) -> int:
        """Size of ``"primary"`` or ``"secondary"``."""
        return self.primary_size if slot == "primary" else self.secondary_size

    def trailer_offset(self, slot: str) -> int:
        """Absolute offset of a slot's trailer."""
        return self.slot_offset(slot) + self.slot_size(slot) - self.trailer.size

    def trailer_sectors_offset(self, slot: str) -> int:
        """Absolute offset of the first sector reserved for a slot's trailer."""
        return self.slot_offset(slot) + self.slot_size(slot) - self.trailer_sectors * self.sector_size

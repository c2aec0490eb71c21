"""MCUboot-compatible slot trailer: layout, encoding and decoding.

The trailer sits at the very end of a slot. From its start: the swap status area (``max_sectors * 3``
entries of one write unit each), then ``swap_size``, ``swap_info``, ``copy_done`` and ``image_ok``,
each padded to ``BOOT_MAX_ALIGN`` (8), then the 16-byte boot magic. So ``image_ok`` is 24 bytes and
``copy_done`` 32 bytes before the end of the slot, as ``imgtool sign --pad --confirm`` writes it.

Flags read ``0x01`` as set and the erased value as unset; anything else is "bad". ``swap_info``
holds the swap type in its low nibble and the image index in its high nibble.
"""

from __future__ import annotations

import enum
import struct

import attrs

from ota_boot.errors import BootConfigurationError, TrailerCorruptedError

__all__ = [
    "BOOT_MAGIC",
    "MAX_ALIGN",
    "FlagState",
    "MagicState",
    "SwapType",
    "Trailer",
    "TrailerLayout",
    "decode_trailer",
    "encode_trailer",
]

BOOT_MAGIC = bytes.fromhex("77c295f360d2ef7f3552500f2cb67980")
"""The 16-byte boot magic MCUboot uses when BOOT_MAX_ALIGN is 8."""

MAX_ALIGN = 8
"""BOOT_MAX_ALIGN: every trailer field is padded to this many bytes."""

_FLAG_SET = 0x01


class SwapType(enum.IntEnum):
    """MCUboot swap types, as stored in ``swap_info`` and returned by the decision table."""

    NONE = 1
    TEST = 2
    PERM = 3
    REVERT = 4
    FAIL = 5
    PANIC = 0xFF


class MagicState(enum.Enum):
    """The boot magic: exactly right, fully erased, or anything else."""

    GOOD = "good"
    UNSET = "unset"
    BAD = "bad"


class FlagState(enum.Enum):
    """A one-byte trailer flag: 0x01, erased, or anything else."""

    SET = "set"
    UNSET = "unset"
    BAD = "bad"


@attrs.frozen
class TrailerLayout:
    """Where each trailer field lives, for a slot of ``max_sectors`` sectors and a write unit."""

    max_sectors: int
    write_alignment: int
    erased_value: int = 0xFF

    def __attrs_post_init__(self) -> None:
        if self.max_sectors < 0:
            raise BootConfigurationError("max_sectors must not be negative")
        if self.write_alignment not in (1, 2, 4, 8):
            raise BootConfigurationError(
                f"trailer write alignment must be 1, 2, 4 or 8 (BOOT_MAX_ALIGN 8), got {self.write_alignment}"
            )
        if self.erased_value not in (0x00, 0xFF):
            raise BootConfigurationError("erased value must be 0x00 or 0xFF")

    @property
    def status_entries(self) -> int:
        """How many swap status entries the trailer holds (three per sector)."""
        return self.max_sectors * 3

    @property
    def size(self) -> int:
        """Trailer size in bytes: ``max_sectors * 3 * align + 4 * max_align + 16``."""
        return self.status_entries * self.write_alignment + 4 * MAX_ALIGN + len(BOOT_MAGIC)

    @property
    def magic_offset(self) -> int:
        """Offset of the magic from the trailer start."""
        return self.size - len(BOOT_MAGIC)

    @property
    def image_ok_offset(self) -> int:
        """Offset of ``image_ok``."""
        return self.magic_offset - MAX_ALIGN

    @property
    def copy_done_offset(self) -> int:
        """Offset of ``copy_done``."""
        return self.magic_offset - 2 * MAX_ALIGN

    @property
    def swap_info_offset(self) -> int:
        """Offset of ``swap_info``."""
        return self.magic_offset - 3 * MAX_ALIGN

    @property
    def swap_size_offset(self) -> int:
        """Offset of ``swap_size`` (u32 little-endian)."""
        return self.magic_offset - 4 * MAX_ALIGN

    def status_offset(self, index: int) -> int:
        """Offset of swap status entry ``index``."""
        if not 0 <= index < self.status_entries:
            raise BootConfigurationError(f"swap status entry {index} outside 0..{self.status_entries - 1}")
        return index * self.write_alignment

    def field(self, value: bytes) -> bytes:
        """``value`` padded with the erased value to a whole number of write units."""
        units = -(-len(value) // self.write_alignment)
        return value + bytes([self.erased_value]) * (units * self.write_alignment - len(value))

    def flag(self) -> bytes:
        """The bytes that set a flag (or mark a status entry done)."""
        return self.field(bytes([_FLAG_SET]))

    def swap_info(self, swap_type: SwapType, image_index: int = 0) -> bytes:
        """The bytes of a ``swap_info`` field."""
        if not 0 <= image_index <= 0x0F:
            raise BootConfigurationError("image index must be 0..15")
        return self.field(bytes([(image_index << 4) | (int(swap_type) & 0x0F)]))

    def swap_size(self, size: int) -> bytes:
        """The bytes of a ``swap_size`` field."""
        if not 0 <= size <= 0xFFFFFFFF:
            raise BootConfigurationError("swap size must fit 32 bits")
        return self.field(struct.pack("<I", size))


@attrs.frozen
class Trailer:
    """A decoded trailer. ``swap_type`` and ``swap_size`` are ``None`` while erased."""

    magic: MagicState
    image_ok: FlagState
    copy_done: FlagState
    swap_type: int | None
    image_index: int
    swap_size: int | None
    status: tuple[bool, ...]

    @property
    def is_erased(self) -> bool:
        """True when nothing at all was written into the trailer."""
        return (
            self.magic is MagicState.UNSET
            and self.image_ok is FlagState.UNSET
            and self.copy_done is FlagState.UNSET
            and self.swap_type is None
            and self.swap_size is None
            and not any(self.status)
        )


def _flag(raw: bytes, offset: int, erased: int) -> FlagState:
    value = raw[offset]
    if value == _FLAG_SET:
        return FlagState.SET
    if value == erased:
        return FlagState.UNSET
    return FlagState.BAD


def decode_trailer(layout: TrailerLayout, raw: bytes) -> Trailer:
    """Decode the last ``layout.size`` bytes of a slot.

    A status entry counts as done when any of its bytes is not erased: a status write torn part-way
    was started only after the step it records had completed.
    """
    if not isinstance(raw, bytes | bytearray) or len(raw) != layout.size:
        raise TrailerCorruptedError(
            f"trailer must be {layout.size} bytes of data",
            details={"expected": layout.size},
        )
    erased = layout.erased_value
    magic_bytes = bytes(raw[layout.magic_offset :])
    if magic_bytes == BOOT_MAGIC:
        magic = MagicState.GOOD
    elif magic_bytes.count(erased) == len(magic_bytes):
        magic = MagicState.UNSET
    else:
        magic = MagicState.BAD
    info = raw[layout.swap_info_offset]
    size_bytes = bytes(raw[layout.swap_size_offset : layout.swap_size_offset + 4])
    align = layout.write_alignment
    unit = bytes([erased]) * align
    status = tuple(raw[index * align : (index + 1) * align] != unit for index in range(layout.status_entries))
    return Trailer(
        magic=magic,
        image_ok=_flag(raw, layout.image_ok_offset, erased),
        copy_done=_flag(raw, layout.copy_done_offset, erased),
        swap_type=None if info == erased else info & 0x0F,
        image_index=0 if info == erased else info >> 4,
        swap_size=None if size_bytes == bytes([erased]) * 4 else struct.unpack("<I", size_bytes)[0],
        status=status,
    )


def encode_trailer(
    layout: TrailerLayout,
    *,
    magic: bool = True,
    image_ok: bool = False,
    copy_done: bool = False,
    swap_type: SwapType | None = None,
    image_index: int = 0,
    swap_size: int | None = None,
    status_done: int = 0,
) -> bytes:
    """Build a whole trailer (erased where nothing is set), e.g. to pad an image as ``--pad --confirm``."""
    if not 0 <= status_done <= layout.status_entries:
        raise BootConfigurationError("status_done outside the status area")
    out = bytearray([layout.erased_value]) * layout.size
    for index in range(status_done):
        offset = layout.status_offset(index)
        out[offset : offset + layout.write_alignment] = layout.flag()
    if swap_size is not None:
        out[layout.swap_size_offset : layout.swap_size_offset + 4] = struct.pack("<I", swap_size)
    if swap_type is not None:
        out[layout.swap_info_offset] = layout.swap_info(swap_type, image_index)[0]
    if copy_done:
        out[layout.copy_done_offset] = _FLAG_SET
    if image_ok:
        out[layout.image_ok_offset] = _FLAG_SET
    if magic:
        out[layout.magic_offset :] = BOOT_MAGIC
    return bytes(out)

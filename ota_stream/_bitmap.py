"""Received-blocks bitmap and block arithmetic for stream files.

One bit per block, LSB first inside each byte (bit ``k`` is byte ``k >> 3``, mask ``1 << (k & 7)``),
which is also how the GetStream request bitmap is laid out relative to its offset. Sizes are checked
so that a file larger than the service can stream is refused up front instead of overflowing later.
"""

from __future__ import annotations

import base64
import binascii

from ota_core.errors import ConfigurationError
from ota_stream._codec import MAX_BLOCK_OFFSET, MAX_BLOCK_SIZE, MIN_BLOCK_SIZE
from ota_stream.errors import StreamMessageError

__all__ = ["BlockBitmap", "block_count", "block_length"]

# The highest block offset the service accepts is 98,304, so a stream file has at most 98,305 blocks.
MAX_BLOCKS = MAX_BLOCK_OFFSET + 1


def block_count(file_size: int, block_size: int) -> int:
    """Blocks of ``block_size`` covering ``file_size`` bytes; refuses what the service cannot serve."""
    if not MIN_BLOCK_SIZE <= block_size <= MAX_BLOCK_SIZE:
        raise ConfigurationError(f"block size {block_size} outside {MIN_BLOCK_SIZE}..{MAX_BLOCK_SIZE}")
    if file_size < 0:
        raise ConfigurationError(f"file size {file_size} is negative")
    count = -(-file_size // block_size)
    if count > MAX_BLOCKS:
        raise ConfigurationError(
            f"a file of {file_size} bytes needs {count} blocks of {block_size}; the service serves at most "
            f"{MAX_BLOCKS} (use larger blocks)"
        )
    return count


def block_length(file_size: int, block_size: int, block_id: int) -> int:
    """The exact size of block ``block_id``: ``block_size`` except for a shorter last block."""
    start = block_id * block_size
    if block_id < 0 or start >= file_size:
        raise ConfigurationError(f"block {block_id} is outside a file of {file_size} bytes")
    return min(block_size, file_size - start)


class BlockBitmap:
    """Which blocks of one file have arrived; persistable as base64 text."""

    def __init__(self, total_blocks: int) -> None:
        if not 0 <= total_blocks <= MAX_BLOCKS:
            raise ConfigurationError(f"block count {total_blocks} outside 0..{MAX_BLOCKS}")
        self._total = total_blocks
        self._bits = bytearray((total_blocks + 7) // 8)
        self._count = 0
        self._first_missing = 0

    @property
    def total(self) -> int:
        """The number of blocks in the file."""
        return self._total

    @property
    def received(self) -> int:
        """How many distinct blocks have arrived."""
        return self._count

    @property
    def complete(self) -> bool:
        """True once every block has arrived."""
        return self._count == self._total

    def __contains__(self, block_id: int) -> bool:
        if not 0 <= block_id < self._total:
            return False
        return bool(self._bits[block_id >> 3] & (1 << (block_id & 7)))

    def add(self, block_id: int) -> bool:
        """Mark a block received; returns False if it already was (a duplicate)."""
        if not 0 <= block_id < self._total:
            raise ConfigurationError(f"block {block_id} outside 0..{self._total - 1}")
        mask = 1 << (block_id & 7)
        if self._bits[block_id >> 3] & mask:
            return False
        self._bits[block_id >> 3] |= mask
        self._count += 1
        return True

    def first_missing(self, start: int = 0) -> int | None:
        """The lowest block id >= ``start`` not yet received, or None."""
        # Every block below the cached lowest gap has arrived, so the scan may start there.
        block = max(start, self._first_missing)
        while block < self._total:
            byte = self._bits[block >> 3]
            if byte == 0xFF and block & 7 == 0:
                block += 8
            elif byte & (1 << (block & 7)):
                block += 1
            else:
                break
        block = min(block, self._total)
        if start <= self._first_missing:
            self._first_missing = block
        return None if block >= self._total else block

    def contiguous_prefix(self) -> int:
        """How many blocks from block 0 have all arrived."""
        missing = self.first_missing(0)
        return self._total if missing is None else missing

    def to_text(self) -> str:
        """Base64 of the bitmap bytes, for the state store."""
        return base64.b64encode(bytes(self._bits)).decode("ascii")

    @classmethod
    def from_text(cls, total_blocks: int, text: str) -> BlockBitmap:
        """Rebuild a bitmap saved with :meth:`to_text`; raises ``StreamMessageError`` if it does not fit."""
        bitmap = cls(total_blocks)
        try:
            raw = base64.b64decode(text.encode("ascii"), validate=True)
        except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
            raise StreamMessageError("saved bitmap is not base64") from exc
        if len(raw) != len(bitmap._bits):
            raise StreamMessageError("saved bitmap has the wrong length for this file")
        spare = len(raw) * 8 - total_blocks
        if spare and raw[-1] >> (8 - spare):
            raise StreamMessageError("saved bitmap marks blocks beyond the end of the file")
        bitmap._bits[:] = raw
        bitmap._count = sum(byte.bit_count() for byte in raw)
        return bitmap

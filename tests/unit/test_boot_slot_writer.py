"""The flash slot writer: unaligned and out-of-order blocks, retransmissions, bounds."""

from __future__ import annotations

import hashlib
import random

import pytest

from ota_boot.errors import FlashNotErasedError, WriteOutOfBoundsError
from ota_boot.flash import FlashLayout, SimFlash
from ota_boot.slot_writer import FlashSlotWriter


def _writer(align: int = 8, erased: int = 0xFF) -> tuple[SimFlash, FlashSlotWriter]:
    flash = SimFlash(FlashLayout.uniform(256, 8, write_alignment=align, erased_value=erased))
    return flash, FlashSlotWriter(flash, 256, 1024, alignment=align, erased_value=erased)


@pytest.mark.parametrize("align", [1, 2, 4, 8])
def test_out_of_order_unaligned_blocks(align: int) -> None:
    flash, writer = _writer(align)
    data = random.Random(align).randbytes(1000)
    blocks = [(offset, data[offset : offset + 37]) for offset in range(0, len(data), 37)]
    random.Random(5).shuffle(blocks)
    for offset, block in blocks:
        writer.write_at(offset, block)
    writer.flush()
    writer.close()
    assert flash.read(256, len(data)) == data
    assert writer.sha256(len(data)) == hashlib.sha256(data).digest()
    assert writer.bytes_written == len(data)
    assert writer.capacity == 1024


def test_retransmitted_blocks_are_accepted_and_conflicts_refused() -> None:
    flash, writer = _writer(4)
    writer.write_at(0, b"abcdefgh")
    writer.write_at(0, b"abcdefgh")  # the same block again
    writer.write_at(4, b"efghijkl")  # overlaps: the programmed part matches
    with pytest.raises(FlashNotErasedError):
        writer.write_at(0, b"zzzzzzzz")
    assert flash.read(256, 12) == b"abcdefghijkl"


def test_partial_unit_is_padded_at_close() -> None:
    flash, writer = _writer(8, erased=0x00)
    writer.write_at(0, b"abc")
    writer.flush()
    assert flash.read(256, 3) == b"\x00\x00\x00"  # still held: a write unit is incomplete
    writer.close()
    assert flash.read(256, 8) == b"abc\x00\x00\x00\x00\x00"


def test_bounds() -> None:
    _flash, writer = _writer()
    with pytest.raises(WriteOutOfBoundsError):
        writer.write_at(1020, b"12345678")
    with pytest.raises(WriteOutOfBoundsError):
        writer.write_at(-1, b"1")
    with pytest.raises(WriteOutOfBoundsError):
        writer.sha256(2000)


def test_flush_programs_the_last_partial_unit_of_a_complete_region() -> None:
    # A writer sized to the image: after flush the whole image is on the flash, even before close
    # (a power cut between the download and the activation must not lose the unaligned tail).
    flash = SimFlash(FlashLayout.uniform(256, 8, write_alignment=8))
    writer = FlashSlotWriter(flash, 256, 1003, alignment=8, erased_value=0xFF)
    data = random.Random(3).randbytes(1003)
    writer.write_at(0, data[:500])
    writer.write_at(500, data[500:])
    writer.flush()
    assert flash.read(256, 1003) == data
    assert flash.read(256 + 1003, 5) == b"\xff" * 5

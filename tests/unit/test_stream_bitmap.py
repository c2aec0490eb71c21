"""Unit tests of the received-blocks bitmap and block arithmetic."""

from __future__ import annotations

import base64

import pytest

from ota_core.errors import ConfigurationError
from ota_stream import BlockBitmap, block_count, block_length
from ota_stream.errors import StreamMessageError


def test_block_count_and_length() -> None:
    assert block_count(0, 256) == 0
    assert block_count(1, 256) == 1
    assert block_count(256, 256) == 1
    assert block_count(257, 256) == 2
    assert block_length(257, 256, 0) == 256
    assert block_length(257, 256, 1) == 1
    assert block_count(98305 * 256, 256) == 98305
    with pytest.raises(ConfigurationError):
        block_count(98305 * 256 + 1, 256)
    for bad in (255, 131073):
        with pytest.raises(ConfigurationError):
            block_count(10, bad)
    with pytest.raises(ConfigurationError):
        block_count(-1, 256)
    with pytest.raises(ConfigurationError):
        block_length(257, 256, 2)
    with pytest.raises(ConfigurationError):
        block_length(257, 256, -1)


def test_lsb_first_layout_matches_the_aws_doc_example() -> None:
    bitmap = BlockBitmap(24)
    for block in (0, 1, 4, 23):
        assert bitmap.add(block)
    assert BlockBitmap.from_text(24, bitmap.to_text()).received == 4
    assert base64.b64decode(bitmap.to_text()) == b"\x13\x00\x80"


def test_add_duplicates_and_first_missing() -> None:
    bitmap = BlockBitmap(20)
    assert bitmap.first_missing() == 0
    for block in range(9):
        bitmap.add(block)
    assert not bitmap.add(3)
    assert bitmap.received == 9
    assert 3 in bitmap
    assert 9 not in bitmap
    assert -1 not in bitmap
    assert 20 not in bitmap
    assert bitmap.first_missing() == 9
    assert bitmap.first_missing(12) == 12
    bitmap.add(12)
    assert bitmap.first_missing(12) == 13
    assert bitmap.contiguous_prefix() == 9
    for block in range(20):
        bitmap.add(block)
    assert bitmap.complete
    assert bitmap.first_missing() is None
    assert bitmap.contiguous_prefix() == 20
    with pytest.raises(ConfigurationError):
        bitmap.add(20)


def test_bitmap_limits_and_restore_errors() -> None:
    with pytest.raises(ConfigurationError):
        BlockBitmap(98306)
    with pytest.raises(ConfigurationError):
        BlockBitmap(-1)
    with pytest.raises(StreamMessageError):
        BlockBitmap.from_text(10, "!!")
    with pytest.raises(StreamMessageError):
        BlockBitmap.from_text(10, "AAAA")  # 3 bytes for a 2-byte bitmap
    with pytest.raises(StreamMessageError):
        BlockBitmap.from_text(10, "AAQ=")  # bit 10 set in a 10-block file
    with pytest.raises(StreamMessageError):
        BlockBitmap.from_text(10, "é")
    assert BlockBitmap.from_text(10, "/wM=").complete


def test_largest_file_the_service_allows() -> None:
    total = block_count(98305 * 131072, 131072)
    bitmap = BlockBitmap(total)
    bitmap.add(total - 1)
    assert bitmap.first_missing(total - 1) is None
    assert bitmap.first_missing() == 0

"""MCUboot trailer layout, encoding and decoding, checked against imgtool's documented bytes."""

from __future__ import annotations

import pytest

from ota_boot.errors import BootConfigurationError, TrailerCorruptedError
from ota_boot.trailer import (
    BOOT_MAGIC,
    FlagState,
    MagicState,
    SwapType,
    TrailerLayout,
    decode_trailer,
    encode_trailer,
)


def test_size_formula_matches_imgtool() -> None:
    assert TrailerLayout(128, 4).size == 128 * 3 * 4 + 4 * 8 + 16 == 1584
    assert TrailerLayout(0, 8).size == 48


def test_confirmed_pad_puts_image_ok_24_bytes_before_the_end() -> None:
    layout = TrailerLayout(128, 4)
    raw = encode_trailer(layout, image_ok=True)
    assert raw[-16:] == BOOT_MAGIC
    assert raw[-24] == 0x01
    assert raw[-23:-16] == b"\xff" * 7
    trailer = decode_trailer(layout, raw)
    assert trailer.magic is MagicState.GOOD
    assert trailer.image_ok is FlagState.SET
    assert trailer.copy_done is FlagState.UNSET
    assert trailer.swap_type is None and trailer.swap_size is None


@pytest.mark.parametrize("align", [1, 2, 4, 8])
@pytest.mark.parametrize("erased", [0xFF, 0x00])
def test_round_trip(align: int, erased: int) -> None:
    layout = TrailerLayout(5, align, erased)
    raw = encode_trailer(
        layout, image_ok=True, copy_done=True, swap_type=SwapType.REVERT, image_index=3, swap_size=4096, status_done=7
    )
    trailer = decode_trailer(layout, raw)
    assert trailer.swap_type == SwapType.REVERT
    assert trailer.image_index == 3
    assert trailer.swap_size == 4096
    assert trailer.status == (True,) * 7 + (False,) * 8
    assert not trailer.is_erased
    assert decode_trailer(layout, bytes([erased]) * layout.size).is_erased


def test_bad_values_decode_as_bad() -> None:
    layout = TrailerLayout(2, 1)
    raw = bytearray(encode_trailer(layout))
    raw[layout.image_ok_offset] = 0x55
    raw[layout.copy_done_offset] = 0x02
    raw[-1] ^= 0x01
    trailer = decode_trailer(layout, bytes(raw))
    assert trailer.magic is MagicState.BAD
    assert trailer.image_ok is FlagState.BAD
    assert trailer.copy_done is FlagState.BAD


def test_torn_status_entry_counts_as_done() -> None:
    layout = TrailerLayout(2, 8)
    raw = bytearray(b"\xff" * layout.size)
    raw[3] = 0x01  # one byte of an eight-byte entry
    assert decode_trailer(layout, bytes(raw)).status[0]


def test_field_encoders() -> None:
    layout = TrailerLayout(1, 4)
    assert layout.flag() == b"\x01\xff\xff\xff"
    assert layout.swap_info(SwapType.TEST, 1) == b"\x12\xff\xff\xff"
    assert layout.swap_size(1) == b"\x01\x00\x00\x00"
    assert layout.status_offset(2) == 8
    for bad in (lambda: layout.status_offset(3), lambda: layout.swap_info(SwapType.TEST, 16)):
        with pytest.raises(BootConfigurationError):
            bad()
    with pytest.raises(BootConfigurationError):
        layout.swap_size(1 << 32)
    with pytest.raises(BootConfigurationError):
        encode_trailer(layout, status_done=4)


@pytest.mark.parametrize(
    "make",
    [lambda: TrailerLayout(-1, 1), lambda: TrailerLayout(1, 16), lambda: TrailerLayout(1, 1, 0x10)],
)
def test_layout_rejects_bad_settings(make: object) -> None:
    with pytest.raises(BootConfigurationError):
        make()  # type: ignore[operator]


def test_wrong_length_is_a_typed_error() -> None:
    layout = TrailerLayout(1, 1)
    with pytest.raises(TrailerCorruptedError):
        decode_trailer(layout, b"\xff" * (layout.size - 1))
    with pytest.raises(TrailerCorruptedError):
        decode_trailer(layout, "text")  # type: ignore[arg-type]

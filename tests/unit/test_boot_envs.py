"""U-Boot and GRUB environment codecs, without files: good and bad input."""

from __future__ import annotations

import zlib

import pytest

from ota_boot.errors import BootConfigurationError, EnvironmentCorruptedError
from ota_boot.grub_env import decode_grub_env, encode_grub_env
from ota_boot.uboot_env import _newer, decode_uboot_env, encode_uboot_env


def test_uboot_round_trip_single_and_redundant() -> None:
    variables = {"b": "2", "a": "x=y", "empty": ""}
    single = encode_uboot_env(variables, 256)
    assert single[4:].startswith(b"a=x=y\0b=2\0empty=\0\0")
    assert decode_uboot_env(single) == (variables, 0)
    redundant = encode_uboot_env(variables, 256, redundant=True, flag=7, pad=0x00)
    assert decode_uboot_env(redundant, redundant=True) == (variables, 7)
    assert int.from_bytes(redundant[:4], "little") == zlib.crc32(redundant[5:])


def _with_crc(data: bytes) -> bytes:
    return zlib.crc32(data).to_bytes(4, "little") + data


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\x00\x00", "too short"),
        (b"\x00\x00\x00\x00a=1\0\0", "CRC mismatch"),
        (_with_crc(b"a=1"), "not terminated"),
        (_with_crc(b"novalue\0\0"), "without a name"),
        (_with_crc(b"=1\0\0"), "without a name"),
        (_with_crc(b"a=\xff\xfe\0\0"), "not UTF-8"),
    ],
)
def test_uboot_bad_input(raw: bytes, message: str) -> None:
    with pytest.raises(EnvironmentCorruptedError) as caught:
        decode_uboot_env(raw)
    assert message in caught.value.message


@pytest.mark.parametrize("variables", [{"": "1"}, {"a=b": "1"}, {"a": "x\0y"}, {"a": "x" * 300}])
def test_uboot_refuses_bad_variables(variables: dict[str, str]) -> None:
    with pytest.raises(BootConfigurationError):
        encode_uboot_env(variables, 256)


def test_flag_order_wraps() -> None:
    assert _newer(2, 1)
    assert not _newer(1, 2)
    assert _newer(0, 255)
    assert not _newer(255, 0)


def test_grub_round_trip_and_escapes() -> None:
    variables = {"ORDER": "A B", "text": "a\\b\nc"}
    block = encode_grub_env(variables)
    assert len(block) == 1024 and block.endswith(b"#")
    assert b"text=a\\\\b\\\nc\n" in block
    assert decode_grub_env(block) == variables


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not a block", "bad signature"),
        (b"# GRUB Environment Block\nnovalue\n###", "without '='"),
        (b"# GRUB Environment Block\na=\xff\n###", "not UTF-8"),
    ],
)
def test_grub_bad_input(raw: bytes, message: str) -> None:
    with pytest.raises(EnvironmentCorruptedError) as caught:
        decode_grub_env(raw)
    assert message in caught.value.message


@pytest.mark.parametrize("variables", [{"a=b": "1"}, {"": "1"}, {"a": "x" * 2000}, {"#c": "1"}])
def test_grub_refuses_bad_variables(variables: dict[str, str]) -> None:
    with pytest.raises(BootConfigurationError):
        encode_grub_env(variables)

"""Streaming digests and CRCs: published vectors, exact size, and refusal by default."""

from __future__ import annotations

import hashlib
import zlib

import pytest

from ota_core.protocols import IncrementalVerifier
from ota_verify.digests import Crc16Xmodem, Crc32, FileChecker, crc16_xmodem, normalize_hash_name, parse_crc16_text
from ota_verify.errors import (
    DigestMismatchError,
    MalformedInputError,
    SizeMismatchError,
    UnsupportedAlgorithmError,
)

DATA = bytes(range(256)) * 40


@pytest.mark.parametrize(
    ("data", "crc"),
    [
        (b"", 0x0000),
        (b"123456789", 0x31C3),
        (b"\x00", 0x0000),
        (b"\xff\xff\xff\xff", 0x99CF),
        (bytes(range(256)), 0x7E55),
        (b"The quick brown fox jumps over the lazy dog", 0xF0C8),
    ],
)
def test_crc16_xmodem_vectors(data: bytes, crc: int) -> None:
    assert crc16_xmodem(data) == crc
    running = Crc16Xmodem()
    for index in range(0, len(data), 3):
        running.update(data[index : index + 3])
    assert running.value == crc
    assert running.digest() == crc.to_bytes(2, "big")


def test_crc32_matches_zlib() -> None:
    running = Crc32()
    running.update(DATA[:100])
    running.update(DATA[100:])
    assert running.value == zlib.crc32(DATA)


@pytest.mark.parametrize(("text", "value"), [("31c3", 0x31C3), ("0x31C3", 0x31C3), (" 0", 0), ("FFFF", 0xFFFF)])
def test_crc_text(text: str, value: int) -> None:
    assert parse_crc16_text(text) == value


@pytest.mark.parametrize("text", ["", "0x", "12345", "zz", "-1", 12])
def test_bad_crc_text(text: object) -> None:
    with pytest.raises(MalformedInputError):
        parse_crc16_text(text)  # type: ignore[arg-type]


@pytest.mark.parametrize(("name", "canonical"), [("SHA256", "sha256"), ("SHA-256", "sha256"), ("sha512", "sha512")])
def test_hash_names(name: str, canonical: str) -> None:
    assert normalize_hash_name(name) == canonical


@pytest.mark.parametrize("name", ["md5", "", "sha3", None])
def test_bad_hash_names(name: object) -> None:
    with pytest.raises(UnsupportedAlgorithmError):
        normalize_hash_name(name)  # type: ignore[arg-type]


def checker(**kwargs: object) -> FileChecker:
    defaults: dict[str, object] = {
        "digests": {"SHA-256": hashlib.sha256(DATA).digest(), "sha512": hashlib.sha512(DATA).digest()},
        "crc16_xmodem": crc16_xmodem(DATA),
        "crc32": zlib.crc32(DATA),
    }
    defaults.update(kwargs)
    return FileChecker(len(DATA), **defaults)  # type: ignore[arg-type]


def test_block_by_block_passes() -> None:
    check = checker()
    assert isinstance(check, IncrementalVerifier)
    for index in range(0, len(DATA), 4096):
        check.update(DATA[index : index + 4096])
    check.finish()
    assert check.received == len(DATA)


def test_one_byte_more_fails_at_once_and_one_less_at_finish() -> None:
    check = checker()
    check.update(DATA)
    with pytest.raises(SizeMismatchError):
        check.update(b"x")
    short = checker()
    short.update(DATA[:-1])
    with pytest.raises(SizeMismatchError):
        short.finish()
    done = checker()
    done.update(DATA)
    done.finish()
    with pytest.raises(SizeMismatchError):
        done.update(b"")


@pytest.mark.parametrize("field", ["digests", "crc16_xmodem", "crc32"])
def test_each_mismatch_is_detected(field: str) -> None:
    wrong: dict[str, object] = {
        "digests": {"sha256": bytes(32)},
        "crc16_xmodem": crc16_xmodem(DATA) ^ 1,
        "crc32": zlib.crc32(DATA) ^ 1,
    }
    check = checker(**{field: wrong[field]})
    check.update(DATA)
    with pytest.raises(DigestMismatchError):
        check.finish()


def test_nothing_to_check_is_refused_unless_asked() -> None:
    with pytest.raises(DigestMismatchError, match="refusing by default"):
        FileChecker(10)
    unchecked = FileChecker(3, allow_unchecked=True)
    unchecked.update(b"abc")
    unchecked.finish()
    with pytest.raises(SizeMismatchError):
        FileChecker(-1, allow_unchecked=True)


def test_final_checks_see_the_computed_digests() -> None:
    seen: dict[str, bytes] = {}
    check = FileChecker(len(DATA), compute=["sha384"], final_checks=[seen.update])
    check.update(DATA)
    check.finish()
    assert seen["sha384"] == hashlib.sha384(DATA).digest()

"""Streaming digests and checksums, fed block by block, with the exact size enforced.

``FileChecker`` is the workhorse of download-time verification: it hashes every byte once, refuses
the first byte past the announced size (so an endless stream never fills a slot) and, at ``finish``,
compares every configured digest and CRC in constant time. Nothing passes by default: a checker with
no expectation at all refuses to finish unless it was built with ``allow_unchecked=True``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import zlib
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from ota_verify.errors import (
    DigestMismatchError,
    MalformedInputError,
    SizeMismatchError,
    UnsupportedAlgorithmError,
)

__all__ = [
    "Crc16Xmodem",
    "Crc32",
    "FileChecker",
    "HashFunction",
    "crc16_xmodem",
    "normalize_hash_name",
    "parse_crc16_text",
]

_log = logging.getLogger(__name__)

_HASH_NAMES = {
    "sha256": "sha256",
    "sha-256": "sha256",
    "sha_256": "sha256",
    "sha384": "sha384",
    "sha-384": "sha384",
    "sha512": "sha512",
    "sha-512": "sha512",
    "sha1": "sha1",
    "sha-1": "sha1",
}


def normalize_hash_name(name: str) -> str:
    """Map the spellings seen in job documents (``SHA256``, ``SHA-256``, ``sha256``) to one hashlib name."""
    if not isinstance(name, str):
        raise UnsupportedAlgorithmError(f"hash algorithm name must be text, got {type(name).__name__}")
    canonical = _HASH_NAMES.get(name.strip().lower())
    if canonical is None:
        raise UnsupportedAlgorithmError(f"unsupported hash algorithm {name!r:.40}")
    return canonical


def _crc16_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return tuple(table)


_CRC16_TABLE = _crc16_table()


def crc16_xmodem(data: bytes, crc: int = 0) -> int:
    """CRC-16/XMODEM (poly 0x1021, init 0, no reflection, no final xor); ``crc`` continues a running value."""
    table = _CRC16_TABLE
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ table[((crc >> 8) ^ byte) & 0xFF]
    return crc


def parse_crc16_text(text: str) -> int:
    """Parse a CRC-16 written as hex the way MXChip firmware reads it (``"31c3"``, ``"0x31C3"``, ``" 0"``)."""
    if not isinstance(text, str):
        raise MalformedInputError(f"CRC-16 check value must be text, got {type(text).__name__}")
    cleaned = text.strip().lower().removeprefix("0x")
    if not cleaned or len(cleaned) > 4 or any(c not in "0123456789abcdef" for c in cleaned):
        raise MalformedInputError(f"CRC-16 check value is not 1-4 hex digits: {text!r:.40}")
    return int(cleaned, 16)


class HashFunction(Protocol):
    """The part of a hashlib object that the checker uses."""

    def update(self, data: bytes, /) -> None:
        """Add bytes."""
        ...

    def digest(self) -> bytes:
        """The value so far."""
        ...


class Crc16Xmodem:
    """A running CRC-16/XMODEM with the hashlib ``update``/``digest`` shape (digest is 2 bytes big-endian)."""

    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes, /) -> None:
        """Continue the CRC over ``data``."""
        self.value = crc16_xmodem(data, self.value)

    def digest(self) -> bytes:
        """The CRC as 2 big-endian bytes."""
        return self.value.to_bytes(2, "big")


class Crc32:
    """A running CRC-32 (zlib / IEEE 802.3) with the hashlib ``update``/``digest`` shape."""

    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes, /) -> None:
        """Continue the CRC over ``data``."""
        self.value = zlib.crc32(data, self.value)

    def digest(self) -> bytes:
        """The CRC as 4 big-endian bytes."""
        return self.value.to_bytes(4, "big")


FinalCheck = Callable[[Mapping[str, bytes]], None]
"""Run at ``finish`` with the computed digests by name; raises a ``VerificationError`` to refuse."""


class FileChecker:
    """Checks one file as its bytes go by: exact size, digests, CRCs and final checks (signatures).

    ``digests`` maps algorithm names (any spelling ``normalize_hash_name`` accepts) to expected values;
    ``compute`` names extra digests to compute for ``final_checks`` (a signature over the SHA-256 of
    the file, say). Implements ``ota_core.protocols.IncrementalVerifier``.
    """

    def __init__(
        self,
        size: int,
        *,
        digests: Mapping[str, bytes] | None = None,
        crc16_xmodem: int | None = None,
        crc32: int | None = None,
        compute: Iterable[str] = (),
        final_checks: Iterable[FinalCheck] = (),
        allow_unchecked: bool = False,
        name: str = "file",
    ) -> None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise SizeMismatchError(f"{name}: announced size must be a non-negative integer, got {size!r}")
        self._name = name
        self._size = size
        self._received = 0
        self._expected: dict[str, bytes] = {}
        for algorithm, value in (digests or {}).items():
            if not isinstance(value, bytes | bytearray | memoryview):
                raise MalformedInputError(
                    f"{name}: expected {algorithm} digest must be bytes, got {type(value).__name__}"
                )
            self._expected[normalize_hash_name(algorithm)] = bytes(value)
        self._hashers: dict[str, HashFunction] = {}
        for algorithm in [*self._expected, *(normalize_hash_name(a) for a in compute)]:
            if algorithm not in self._hashers:
                self._hashers[algorithm] = hashlib.new(algorithm)
        if crc16_xmodem is not None:
            self._expected["crc16-xmodem"] = (crc16_xmodem & 0xFFFF).to_bytes(2, "big")
            self._hashers["crc16-xmodem"] = Crc16Xmodem()
        if crc32 is not None:
            self._expected["crc32"] = (crc32 & 0xFFFFFFFF).to_bytes(4, "big")
            self._hashers["crc32"] = Crc32()
        self._final_checks = tuple(final_checks)
        if not self._expected and not self._final_checks and not allow_unchecked:
            raise DigestMismatchError(
                f"{name}: nothing to verify it against (no digest, CRC or signature); refusing by default"
            )
        self._updates = tuple(hasher.update for hasher in self._hashers.values())
        self._finished = False

    @property
    def received(self) -> int:
        """The number of bytes fed so far."""
        return self._received

    def update(self, data: bytes) -> None:
        """Feed the next bytes of the file, in order; refuses the first byte past the announced size."""
        if self._finished:
            raise SizeMismatchError(f"{self._name}: data fed after finish()")
        received = self._received + len(data)
        if received > self._size:
            raise SizeMismatchError(
                f"{self._name}: more data than the announced {self._size} bytes (at least {received})",
                details={"expected": self._size, "received": received},
            )
        self._received = received
        for update in self._updates:
            update(data)

    def digests(self) -> dict[str, bytes]:
        """The digests computed so far (final once every byte was fed)."""
        return {name: hasher.digest() for name, hasher in self._hashers.items()}

    def finish(self) -> None:
        """Raise unless the size is exact and every digest, CRC and final check matches."""
        self._finished = True
        if self._received != self._size:
            raise SizeMismatchError(
                f"{self._name}: received {self._received} bytes, expected exactly {self._size}",
                details={"expected": self._size, "received": self._received},
            )
        computed = self.digests()
        for algorithm, expected in self._expected.items():
            if not hmac.compare_digest(computed[algorithm], expected):
                raise DigestMismatchError(
                    f"{self._name}: {algorithm} mismatch (expected {expected.hex()}, got {computed[algorithm].hex()})",
                    details={"algorithm": algorithm},
                )
        for check in self._final_checks:
            check(computed)
        _log.debug("%s: %d bytes verified (%s)", self._name, self._size, ", ".join(computed))

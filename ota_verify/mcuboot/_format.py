"""MCUboot image format: header, protected and unprotected TLV areas (as written by imgtool 2.5).

Layout, all little-endian: a 32-byte header (magic ``0x96f3b83d``) padded to ``hdr_size``; the
payload (``img_size`` bytes); optionally a protected TLV area (info magic ``0x6908``, covered by the
hash); then the unprotected TLV area (info magic ``0x6907``) holding the hash, the key (hash) and the
signature. The parser only reads; every length is checked against the bytes that exist before any
slice is taken.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import attrs

from ota_core.versions import Version
from ota_verify.errors import ImageFormatError

__all__ = [
    "FLAG_NAMES",
    "HEADER_STRUCT",
    "IMAGE_MAGIC",
    "TLV_INFO_MAGIC",
    "TLV_NAMES",
    "TLV_PROT_INFO_MAGIC",
    "ImageHeader",
    "McubootVersion",
    "ParsedImage",
    "Reader",
    "Tlv",
    "TlvType",
    "parse_image",
]

IMAGE_MAGIC = 0x96F3B83D
TLV_INFO_MAGIC = 0x6907
TLV_PROT_INFO_MAGIC = 0x6908
HEADER_STRUCT = struct.Struct("<IIHHII BBHI I")
TLV_HEADER = struct.Struct("<HH")
MAX_TLVS = 64


class TlvType:
    """TLV type ids used by MCUboot and imgtool (``boot/bootutil/include/bootutil/image.h``)."""

    KEYHASH = 0x01
    PUBKEY = 0x02
    SHA256 = 0x10
    SHA384 = 0x11
    SHA512 = 0x12
    RSA2048_PSS = 0x20
    ECDSA_SIG = 0x22
    RSA3072_PSS = 0x23
    ED25519 = 0x24
    SIG_PURE = 0x25
    DEPENDENCY = 0x40
    SEC_CNT = 0x50
    BOOT_RECORD = 0x60
    UUID_VID = 0x74
    UUID_CID = 0x75


TLV_NAMES = {
    TlvType.KEYHASH: "KEYHASH",
    TlvType.PUBKEY: "PUBKEY",
    TlvType.SHA256: "SHA256",
    TlvType.SHA384: "SHA384",
    TlvType.SHA512: "SHA512",
    TlvType.RSA2048_PSS: "RSA2048_PSS",
    TlvType.ECDSA_SIG: "ECDSA_SIG",
    TlvType.RSA3072_PSS: "RSA3072_PSS",
    TlvType.ED25519: "ED25519",
    TlvType.SIG_PURE: "SIG_PURE",
    TlvType.DEPENDENCY: "DEPENDENCY",
    TlvType.SEC_CNT: "SEC_CNT",
    TlvType.BOOT_RECORD: "BOOT_RECORD",
    TlvType.UUID_VID: "UUID_VID",
    TlvType.UUID_CID: "UUID_CID",
}

FLAG_NAMES = {
    0x001: "PIC",
    0x004: "ENCRYPTED_AES128",
    0x008: "ENCRYPTED_AES256",
    0x010: "NON_BOOTABLE",
    0x020: "RAM_LOAD",
    0x100: "ROM_FIXED",
    0x200: "COMPRESSED_LZMA1",
    0x400: "COMPRESSED_LZMA2",
    0x800: "COMPRESSED_ARM_THUMB",
}


@attrs.frozen(order=True)
class McubootVersion:
    """An MCUboot image version: ``major.minor.revision+build`` (u8, u8, u16, u32)."""

    major: int = attrs.field(validator=attrs.validators.and_(attrs.validators.ge(0), attrs.validators.le(0xFF)))
    minor: int = attrs.field(validator=attrs.validators.and_(attrs.validators.ge(0), attrs.validators.le(0xFF)))
    revision: int = attrs.field(validator=attrs.validators.and_(attrs.validators.ge(0), attrs.validators.le(0xFFFF)))
    build: int = attrs.field(
        default=0, validator=attrs.validators.and_(attrs.validators.ge(0), attrs.validators.le(0xFFFFFFFF))
    )

    @classmethod
    def parse(cls, text: str) -> McubootVersion:
        """Parse imgtool's version spelling: ``1``, ``1.2``, ``1.2.3`` or ``1.2.3+4``."""
        if not isinstance(text, str):
            raise ImageFormatError(f"version must be text, got {type(text).__name__}")
        main, _, build = text.strip().partition("+")
        parts = main.split(".")
        try:
            if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts) or (build and not build.isdigit()):
                raise ValueError("malformed")
            numbers = [int(p) for p in parts] + [0] * (3 - len(parts))
            return cls(numbers[0], numbers[1], numbers[2], int(build) if build else 0)
        except (ValueError, TypeError) as error:
            raise ImageFormatError(f"not an MCUboot version (M.m.r+b with 8.8.16+32 bits): {text!r:.40}") from error

    def to_version(self) -> Version:
        """As a semantic version; the build number becomes build metadata (not ordered, as in MCUboot)."""
        return Version(self.major, self.minor, self.revision, build=str(self.build) if self.build else "")

    def as_security_counter(self) -> int:
        """imgtool's ``-s auto`` value: ``major<<24 | minor<<16 | revision``."""
        return (self.major << 24) | (self.minor << 16) | self.revision

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.revision}+{self.build}"


@attrs.frozen
class ImageHeader:
    """The 32-byte MCUboot image header."""

    load_addr: int
    hdr_size: int
    protect_tlv_size: int
    img_size: int
    flags: int
    version: McubootVersion

    def pack(self) -> bytes:
        """The header's 32 bytes."""
        v = self.version
        return HEADER_STRUCT.pack(
            IMAGE_MAGIC,
            self.load_addr,
            self.hdr_size,
            self.protect_tlv_size,
            self.img_size,
            self.flags,
            v.major,
            v.minor,
            v.revision,
            v.build,
            0,
        )


@attrs.frozen
class Tlv:
    """One TLV entry: type, value and the offset of its 4-byte header in the image."""

    type: int
    value: bytes
    offset: int

    @property
    def name(self) -> str:
        """The TLV's name, or its hex id when unknown."""
        return TLV_NAMES.get(self.type, f"0x{self.type:04x}")


@attrs.frozen
class ParsedImage:
    """An MCUboot image's structure; nothing in it is verified yet."""

    header: ImageHeader
    protected: tuple[Tlv, ...]
    unprotected: tuple[Tlv, ...]
    hashed_size: int
    """Bytes covered by the hash and signature: header + payload + protected TLV area."""
    total_size: int
    """Bytes up to the end of the unprotected TLV area."""


Reader = Callable[[int, int], "bytes | memoryview"]
"""Reads ``length`` bytes at ``offset``; a memoryview avoids copying large regions while hashing."""


def _read_exact(read: Reader, offset: int, length: int, size: int, what: str) -> bytes:
    if offset < 0 or length < 0 or offset + length > size:
        raise ImageFormatError(f"{what} at offset {offset} (+{length}) runs past the end of the image ({size} bytes)")
    data = read(offset, length)
    if len(data) != length:
        raise ImageFormatError(f"{what}: short read at offset {offset}")
    return bytes(data)


def _parse_area(read: Reader, offset: int, size: int, magic: int, what: str) -> tuple[tuple[Tlv, ...], int]:
    info = _read_exact(read, offset, TLV_HEADER.size, size, f"{what} info")
    found_magic, total = TLV_HEADER.unpack(info)
    if found_magic != magic:
        raise ImageFormatError(f"{what}: bad info magic 0x{found_magic:04x} (expected 0x{magic:04x}) at {offset}")
    if total < TLV_HEADER.size:
        raise ImageFormatError(f"{what}: total length {total} is smaller than its info header")
    body = _read_exact(read, offset + TLV_HEADER.size, total - TLV_HEADER.size, size, what)
    tlvs: list[Tlv] = []
    position = 0
    while position < len(body):
        if len(tlvs) >= MAX_TLVS:
            raise ImageFormatError(f"{what}: more than {MAX_TLVS} TLVs")
        if position + TLV_HEADER.size > len(body):
            raise ImageFormatError(f"{what}: TLV header at {offset + 4 + position} cut by the end of the area")
        kind, length = TLV_HEADER.unpack_from(body, position)
        start = position + TLV_HEADER.size
        if start + length > len(body):
            raise ImageFormatError(
                f"{what}: TLV 0x{kind:04x} of {length} bytes at {offset + 4 + position} runs past the end of the area"
            )
        tlvs.append(Tlv(kind, body[start : start + length], offset + TLV_HEADER.size + position))
        position = start + length
    return tuple(tlvs), offset + total


def parse_image(read: Reader, size: int, *, allow_trailing: bool = False) -> ParsedImage:
    """Parse the header and TLV areas of an image of ``size`` bytes read through ``read(offset, length)``.

    ``allow_trailing`` accepts bytes after the TLV area (slot padding and trailer); otherwise the image
    must end exactly where the TLV area ends.
    """
    raw = _read_exact(read, 0, HEADER_STRUCT.size, size, "image header")
    magic, load_addr, hdr_size, protect_size, img_size, flags, major, minor, revision, build, _pad = (
        HEADER_STRUCT.unpack(raw)
    )
    if magic != IMAGE_MAGIC:
        raise ImageFormatError(f"not an MCUboot image (magic 0x{magic:08x})")
    if hdr_size < HEADER_STRUCT.size:
        raise ImageFormatError(f"header size {hdr_size} is smaller than the 32-byte header")
    header = ImageHeader(
        load_addr, hdr_size, protect_size, img_size, flags, McubootVersion(major, minor, revision, build)
    )
    offset = hdr_size + img_size
    if offset > size:
        raise ImageFormatError(f"header claims {img_size} payload bytes; the image has only {size - hdr_size}")
    protected: tuple[Tlv, ...] = ()
    if protect_size:
        protected, end = _parse_area(read, offset, size, TLV_PROT_INFO_MAGIC, "protected TLV area")
        if end - offset != protect_size:
            raise ImageFormatError(f"protected TLV area is {end - offset} bytes; the header says {protect_size}")
        offset = end
    hashed_size = offset
    unprotected, end = _parse_area(read, offset, size, TLV_INFO_MAGIC, "TLV area")
    if end != size and not allow_trailing:
        raise ImageFormatError(f"{size - end} extra bytes after the end of the image (at {end})")
    return ParsedImage(header, protected, unprotected, hashed_size, end)

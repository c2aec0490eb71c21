"""The trailer and bootloader model against images signed and padded by MCUboot's own imgtool."""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from ota_boot.bootloader import Bootloader
from ota_boot.flash import SimFlash
from ota_boot.layout import BootLayout
from ota_boot.trailer import FlagState, MagicState, SwapType, TrailerLayout, decode_trailer, encode_trailer
from ota_core.errors import VerificationError
from ota_core.protocols import ImageInfo, SlotReader
from ota_core.versions import Version

_HEADER = struct.Struct("<IIHHIIBBHI")
_IMAGE_MAGIC = 0x96F3B83D
_TLV_INFO_MAGIC = 0x6907
_TLV_SHA256 = 0x10


class Sha256McubootValidator:
    """Test-only check of an MCUboot image's SHA-256 TLV (signatures are the verify package's job)."""

    def validate(self, slot: SlotReader) -> ImageInfo:
        magic, _load, hdr_size, protect, img_size, _flags, major, minor, rev, _build = _HEADER.unpack(
            slot.read(0, _HEADER.size)
        )
        if magic != _IMAGE_MAGIC:
            raise VerificationError("no MCUboot image")
        covered = hdr_size + img_size + protect
        info_magic, total = struct.unpack("<HH", slot.read(covered, 4))
        if info_magic != _TLV_INFO_MAGIC:
            raise VerificationError("no TLV area")
        offset = covered + 4
        while offset < covered + total:
            kind, length = struct.unpack("<HH", slot.read(offset, 4))
            if kind == _TLV_SHA256:
                digest = hashlib.sha256(slot.read(0, covered)).digest()
                if slot.read(offset + 4, length) != digest:
                    raise VerificationError("hash mismatch")
                return ImageInfo(Version(major, minor, rev), digest)
            offset += 4 + length
        raise VerificationError("no SHA256 TLV")


def _imgtool() -> list[str]:
    found = shutil.which("imgtool", path=os.path.dirname(sys.executable))
    if found is None:  # pragma: no cover - imgtool is in the test extra
        pytest.fail("imgtool is missing: pip install -e '.[test]'")
    return [found]


def _sign(tmp_path: Path, version: str, slot_size: int, *extra: str) -> bytes:
    key = tmp_path / "key.pem"
    if not key.exists():
        subprocess.run([*_imgtool(), "keygen", "-k", str(key), "-t", "ecdsa-p256"], check=True, timeout=60)
    source = tmp_path / f"app-{version}.bin"
    source.write_bytes(hashlib.sha256(version.encode()).digest() * 90)
    out = tmp_path / f"signed-{version}{''.join(extra)}.bin"
    subprocess.run(
        [
            *_imgtool(),
            "sign",
            "-k",
            str(key),
            "--version",
            version,
            "--header-size",
            "0x200",
            "--pad-header",
            "--slot-size",
            hex(slot_size),
            "--align",
            "4",
            *extra,
            str(source),
            str(out),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return out.read_bytes()


def test_our_trailer_matches_imgtool_pad_confirm_byte_for_byte(tmp_path: Path) -> None:
    padded = _sign(tmp_path, "1.2.3", 0x4000, "--pad", "--confirm")
    layout = TrailerLayout(128, 4)  # imgtool's default maximum sector count
    assert padded[-layout.size :] == encode_trailer(layout, image_ok=True)
    test_only = _sign(tmp_path, "1.2.3", 0x4000, "--pad")
    assert test_only[-layout.size :] == encode_trailer(layout)
    trailer = decode_trailer(layout, padded[-layout.size :])
    assert (trailer.magic, trailer.image_ok) == (MagicState.GOOD, FlagState.SET)


@pytest.mark.parametrize(("extra", "expected"), [(("--pad",), SwapType.TEST), (("--pad", "--confirm"), SwapType.PERM)])
def test_bootloader_model_swaps_imgtool_images(tmp_path: Path, extra: tuple[str, ...], expected: SwapType) -> None:
    layout = BootLayout.simple(sector_size=1024, image_sectors=6, write_alignment=4)
    validator = Sha256McubootValidator()
    flash = SimFlash(layout.flash)
    old = _sign(tmp_path, "1.0.0", layout.primary_size)
    flash.write(layout.primary_offset, old + b"\xff" * (-len(old) % 4))
    new = _sign(tmp_path, "1.2.3", layout.secondary_size, *extra)
    assert len(new) == layout.secondary_size
    flash.write(layout.secondary_offset, new)
    loader = Bootloader(flash, layout, validator)
    assert loader.decide() == (expected, False)
    result = loader.boot()
    assert result.swap is expected
    assert result.image.version == Version(1, 2, 3)
    assert Bootloader(flash, layout, validator).boot().image.version == (
        Version(1, 2, 3) if expected is SwapType.PERM else Version(1, 0, 0)
    )

"""A tiny self-describing image format and its SHA-256 validator, for demos and tests.

Real devices validate MCUboot images (signature and hash) through the validator that the verify
package provides; the bootloader model only needs *an* ``ImageValidator``. This one checks a 16-byte
header (magic ``OTAD``, payload length, version) followed by the payload and a SHA-256 of both.
"""

from __future__ import annotations

import hashlib
import struct

from ota_core.errors import VerificationError
from ota_core.protocols import ImageInfo, SlotReader
from ota_core.versions import Version

__all__ = ["DEMO_MAGIC", "DemoImageValidator", "build_demo_image"]

DEMO_MAGIC = b"OTAD"
_HEADER = struct.Struct("<4sIBBHI")
_DIGEST = 32


def build_demo_image(payload: bytes, version: Version | str) -> bytes:
    """Wrap ``payload`` into a demo image of the given version."""
    parsed = Version.parse(version) if isinstance(version, str) else version
    header = _HEADER.pack(DEMO_MAGIC, len(payload), parsed.major, parsed.minor, parsed.patch, 0)
    body = header + payload
    return body + hashlib.sha256(body).digest()


class DemoImageValidator:
    """Validates a demo image at the start of a slot; implements ``ImageValidator``."""

    def validate(self, slot: SlotReader) -> ImageInfo:
        """Return the image's version and digest, or raise ``VerificationError``."""
        if slot.size < _HEADER.size + _DIGEST:
            raise VerificationError("slot too small for an image")
        header = slot.read(0, _HEADER.size)
        if len(header) < _HEADER.size:
            raise VerificationError("no image in slot (too short)")
        magic, length, major, minor, patch, _reserved = _HEADER.unpack(header)
        if magic != DEMO_MAGIC:
            raise VerificationError("no image in slot (bad magic)", details={"magic": magic.hex()})
        if _HEADER.size + length + _DIGEST > slot.size:
            raise VerificationError("image length runs past the end of the slot", details={"length": length})
        body = slot.read(0, _HEADER.size + length)
        digest = hashlib.sha256(body).digest()
        if slot.read(_HEADER.size + length, _DIGEST) != digest:
            raise VerificationError("image hash mismatch")
        return ImageInfo(version=Version(major, minor, patch), digest=digest)

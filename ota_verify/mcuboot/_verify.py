"""Verification of MCUboot images: hash, key, signature, flags, TLV allow-list, device class, dependencies.

``McubootVerifier`` implements ``ota_core.protocols.ImageValidator``: a bootloader model hands it a
slot, it returns the image's version, digest and security counter, or raises a typed error. It reads
the slot through ``read(offset, length)`` only, hashing in bounded chunks, so a large slot never sits
in memory at once.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import struct
import uuid
from collections.abc import Callable, Mapping
from typing import Protocol

import attrs
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ota_core.errors import ConfigurationError
from ota_core.protocols import ImageInfo, SlotReader
from ota_core.versions import Version
from ota_verify.errors import (
    DependencyError,
    DigestMismatchError,
    ImageFormatError,
    IncompatibleDeviceError,
    KeyFormatError,
    SignatureInvalidError,
    SizeMismatchError,
    UnsupportedAlgorithmError,
    UntrustedKeyError,
)
from ota_verify.keys import KeyRing, PublicKey, TrustedKey, load_mcuboot_public_key
from ota_verify.mcuboot._format import (
    FLAG_NAMES,
    HEADER_STRUCT,
    IMAGE_MAGIC,
    McubootVersion,
    ParsedImage,
    Reader,
    Tlv,
    TlvType,
    parse_image,
)
from ota_verify.signatures import SignatureAlgorithm, SignatureScheme, verify_signature

__all__ = [
    "DEFAULT_ALLOWED_FLAGS",
    "Dependency",
    "McubootStreamChecker",
    "McubootVerifier",
    "VerifiedImage",
    "parse_dependencies",
]

_log = logging.getLogger(__name__)

DEFAULT_ALLOWED_FLAGS = 0x020 | 0x100
"""RAM_LOAD and ROM_FIXED: layout flags that do not change how the payload is read."""

_CHUNK = 256 * 1024
_HASH_TLVS = {TlvType.SHA256: "sha256", TlvType.SHA384: "sha384", TlvType.SHA512: "sha512"}
_SIG_TLVS = {TlvType.ECDSA_SIG, TlvType.ED25519, TlvType.RSA2048_PSS, TlvType.RSA3072_PSS}
_KEY_TLVS = {TlvType.KEYHASH, TlvType.PUBKEY}
_PROTECTED_ONLY = {
    TlvType.SEC_CNT,
    TlvType.DEPENDENCY,
    TlvType.UUID_VID,
    TlvType.UUID_CID,
    TlvType.BOOT_RECORD,
}
_UNIQUE_PROTECTED = {TlvType.SEC_CNT, TlvType.UUID_VID, TlvType.UUID_CID, TlvType.BOOT_RECORD}


class BootRollbackCheck(Protocol):
    """What the image validator needs from an anti-rollback policy (``AntiRollbackPolicy`` fits)."""

    def check(self, version: Version, *, security_counter: int | None = None, for_boot: bool = False) -> None:
        """Raise a ``PolicyError`` if ``version`` / ``security_counter`` may not run."""
        ...


@attrs.frozen
class Dependency:
    """A DEPENDENCY TLV: this image needs image ``image_id`` at ``min_version`` or later."""

    image_id: int
    min_version: McubootVersion


@attrs.frozen
class VerifiedImage:
    """What a successful verification established about an image."""

    version: McubootVersion
    digest: bytes
    hash_algorithm: str
    security_counter: int | None
    key: TrustedKey | None
    flags: int
    load_addr: int
    dependencies: tuple[Dependency, ...]
    vendor_uuid: bytes | None
    class_uuid: bytes | None
    size: int

    def to_image_info(self) -> ImageInfo:
        """As the ``ImageInfo`` the image-validator protocol returns."""
        return ImageInfo(self.version.to_version(), self.digest, self.security_counter)


def _uuid_bytes(value: bytes | str | uuid.UUID | None) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, uuid.UUID):
        return value.bytes
    if isinstance(value, str):
        try:
            return uuid.UUID(value).bytes
        except ValueError as error:
            raise ConfigurationError(f"not a UUID: {value!r:.60}") from error
    if len(value) != 16:
        raise ConfigurationError("a device class / vendor UUID is 16 bytes")
    return bytes(value)


class McubootVerifier:
    """Verifies MCUboot images against trusted keys and a policy; an ``ImageValidator``.

    Options: ``allowed_flags`` (any other ``ih_flags`` bit is refused, known or not);
    ``allow_unknown_unprotected`` (default refuses unprotected TLVs outside hash/key/signature);
    ``require_signature`` (default True; False accepts hash-only images, for development);
    ``vendor_uuid``/``class_uuid`` (when set, the protected UUID_VID/UUID_CID TLVs must be present and
    equal); ``load_addr`` (when set, ``ih_load_addr`` must equal it); ``installed_versions`` (image id
    to running version, used for DEPENDENCY TLVs: an image with dependencies is refused when this is
    not given or the dependency is unmet; ``check_dependencies=False`` only reports them, for
    inspection tools); ``boot_rollback`` (e.g. ``AntiRollbackPolicy``) is asked at ``validate`` time
    whether the slot's version and security counter are still acceptable to boot (``for_boot=True``:
    the confirmed floor itself boots, anything older does not).
    """

    def __init__(
        self,
        key_ring: KeyRing,
        *,
        allowed_flags: int = DEFAULT_ALLOWED_FLAGS,
        allow_unknown_unprotected: bool = False,
        require_signature: bool = True,
        vendor_uuid: bytes | str | uuid.UUID | None = None,
        class_uuid: bytes | str | uuid.UUID | None = None,
        load_addr: int | None = None,
        installed_versions: Mapping[int, McubootVersion] | None = None,
        check_dependencies: bool = True,
        boot_rollback: BootRollbackCheck | None = None,
    ) -> None:
        self._keys = key_ring
        self._boot_rollback = boot_rollback
        self._allowed_flags = allowed_flags
        self._allow_unknown_unprotected = allow_unknown_unprotected
        self._require_signature = require_signature
        self._vendor = _uuid_bytes(vendor_uuid)
        self._class = _uuid_bytes(class_uuid)
        self._load_addr = load_addr
        self._installed = dict(installed_versions) if installed_versions is not None else None
        self._check_dependencies = check_dependencies

    # --- ImageValidator --------------------------------------------------------------------------

    def validate(self, slot: SlotReader) -> ImageInfo:
        """Validate the image in ``slot`` (trailing slot bytes allowed); implements ``ImageValidator``."""
        result = self.verify_reader(slot.read, slot.size, allow_trailing=True)
        if self._boot_rollback is not None:
            self._boot_rollback.check(
                result.version.to_version(), security_counter=result.security_counter, for_boot=True
            )
        return result.to_image_info()

    # --- entry points ----------------------------------------------------------------------------

    def verify_bytes(self, image: bytes, *, allow_trailing: bool = False) -> VerifiedImage:
        """Verify a complete image held in memory; by default no byte may follow the TLV area."""
        view = memoryview(image)

        def read(offset: int, length: int) -> memoryview:
            return view[offset : offset + length]

        return self.verify_reader(read, len(image), allow_trailing=allow_trailing)

    def verify_reader(self, read: Reader, size: int, *, allow_trailing: bool = True) -> VerifiedImage:
        """Verify an image read through ``read(offset, length)`` from a store of ``size`` bytes."""
        parsed = parse_image(read, size, allow_trailing=allow_trailing)
        return self.verify_parsed(parsed, lambda algorithm: self._hash(read, parsed.hashed_size, algorithm))

    def begin(self, size: int, *, name: str = "image") -> McubootStreamChecker:
        """An ``IncrementalVerifier`` that checks an image of exactly ``size`` bytes as it streams in."""
        return McubootStreamChecker(self, size, name=name)

    def needs_sha384(self) -> bool:
        """Whether a trusted key signs SHA-384 images (ECDSA P-384), so streaming must compute it too."""
        trusted_keys = self._keys.keys()
        return any(
            isinstance(trusted.key, ec.EllipticCurvePublicKey) and trusted.key.curve.key_size == 384
            for trusted in trusted_keys
        )

    def verify_parsed(self, parsed: ParsedImage, digest_of: Callable[[str], bytes]) -> VerifiedImage:
        """Apply every check to a parsed image; ``digest_of(algorithm)`` hashes its signed region."""
        self._check_flags(parsed)
        protected = self._check_protected(parsed.protected)
        hash_tlv, key_tlv, sig_tlv = self._check_unprotected(parsed.unprotected)
        algorithm = _HASH_TLVS[hash_tlv.type]
        digest = digest_of(algorithm)
        if not hmac.compare_digest(digest, hash_tlv.value):
            raise DigestMismatchError(
                f"image {algorithm} mismatch: the image was modified after signing",
                details={"expected": hash_tlv.value.hex(), "computed": digest.hex()},
            )
        trusted = self._check_signature(digest, algorithm, key_tlv, sig_tlv)
        header = parsed.header
        if self._load_addr is not None and header.load_addr != self._load_addr:
            raise IncompatibleDeviceError(
                f"image load address 0x{header.load_addr:08x} differs from the slot's 0x{self._load_addr:08x}"
            )
        self._check_device(protected)
        dependencies = parse_dependencies(parsed.protected)
        self.check_dependencies(dependencies)
        counter_tlv = protected.get(TlvType.SEC_CNT)
        counter = struct.unpack("<I", counter_tlv.value)[0] if counter_tlv else None
        vid = protected.get(TlvType.UUID_VID)
        cid = protected.get(TlvType.UUID_CID)
        _log.debug("MCUboot image %s verified (%s)", header.version, digest.hex()[:16])
        return VerifiedImage(
            version=header.version,
            digest=digest,
            hash_algorithm=algorithm,
            security_counter=counter,
            key=trusted,
            flags=header.flags,
            load_addr=header.load_addr,
            dependencies=dependencies,
            vendor_uuid=vid.value if vid else None,
            class_uuid=cid.value if cid else None,
            size=parsed.total_size,
        )

    # --- checks ----------------------------------------------------------------------------------

    def _check_flags(self, parsed: ParsedImage) -> None:
        refused = parsed.header.flags & ~self._allowed_flags
        if refused:
            names = [FLAG_NAMES.get(1 << bit, f"unknown 0x{1 << bit:x}") for bit in range(32) if refused >> bit & 1]
            raise ImageFormatError(f"image flags refused by policy: {', '.join(names)}", details={"flags": refused})

    @staticmethod
    def _check_protected(tlvs: tuple[Tlv, ...]) -> dict[int, Tlv]:
        unique: dict[int, Tlv] = {}
        for tlv in tlvs:
            if tlv.type in _HASH_TLVS or tlv.type in _SIG_TLVS or tlv.type in _KEY_TLVS:
                raise ImageFormatError(f"{tlv.name} TLV in the protected area")
            if tlv.type in _UNIQUE_PROTECTED:
                if tlv.type in unique:
                    raise ImageFormatError(f"duplicate {tlv.name} TLV")
                unique[tlv.type] = tlv
            expected = {
                TlvType.SEC_CNT: 4,
                TlvType.UUID_VID: 16,
                TlvType.UUID_CID: 16,
                TlvType.DEPENDENCY: 12,
            }
            if tlv.type in expected and len(tlv.value) != expected[tlv.type]:
                raise ImageFormatError(f"{tlv.name} TLV is {len(tlv.value)} bytes, expected {expected[tlv.type]}")
        return unique

    def _check_unprotected(self, tlvs: tuple[Tlv, ...]) -> tuple[Tlv, Tlv | None, Tlv | None]:
        hash_tlv: Tlv | None = None
        key_tlv: Tlv | None = None
        sig_tlv: Tlv | None = None
        for tlv in tlvs:
            if tlv.type in _HASH_TLVS:
                if hash_tlv is not None:
                    raise ImageFormatError("more than one hash TLV")
                hash_tlv = tlv
            elif tlv.type in _KEY_TLVS:
                if key_tlv is not None:
                    raise ImageFormatError("more than one KEYHASH/PUBKEY TLV")
                key_tlv = tlv
            elif tlv.type in _SIG_TLVS:
                if sig_tlv is not None:
                    raise ImageFormatError("more than one signature TLV")
                sig_tlv = tlv
            elif tlv.type == TlvType.SIG_PURE:
                raise UnsupportedAlgorithmError("pure signatures (SIG_PURE TLV) are not supported")
            elif tlv.type in _PROTECTED_ONLY:
                raise ImageFormatError(f"{tlv.name} TLV outside the protected area")
            elif not self._allow_unknown_unprotected:
                raise ImageFormatError(f"unexpected unprotected TLV {tlv.name} (not covered by the signature)")
        if hash_tlv is None:
            raise ImageFormatError("image has no hash TLV")
        expected_size = hashlib.new(_HASH_TLVS[hash_tlv.type]).digest_size
        if len(hash_tlv.value) != expected_size:
            raise ImageFormatError(f"{hash_tlv.name} TLV is {len(hash_tlv.value)} bytes, expected {expected_size}")
        if key_tlv is not None and sig_tlv is None:
            raise ImageFormatError(f"{key_tlv.name} TLV without a signature TLV")
        return hash_tlv, key_tlv, sig_tlv

    @staticmethod
    def _hash(read: Reader, length: int, algorithm: str) -> bytes:
        hasher = hashlib.new(algorithm)
        offset = 0
        while offset < length:
            chunk = read(offset, min(_CHUNK, length - offset))
            if not chunk:
                raise ImageFormatError(f"short read at offset {offset} while hashing")
            hasher.update(chunk)
            offset += len(chunk)
        return hasher.digest()

    def _candidate_keys(self, key_tlv: Tlv | None, algorithm: str) -> list[TrustedKey]:
        if key_tlv is None:
            return self._keys.keys()
        if key_tlv.type == TlvType.KEYHASH:
            size = hashlib.new(algorithm).digest_size
            if len(key_tlv.value) != size:
                raise ImageFormatError(f"KEYHASH TLV is {len(key_tlv.value)} bytes, expected {size}")
            return [self._keys.by_mcuboot_hash(key_tlv.value, algorithm)]
        try:
            embedded = load_mcuboot_public_key(key_tlv.value)
        except KeyFormatError as error:
            raise ImageFormatError(error.message) from error
        return [self._keys.require_trusted(embedded)]

    def _check_signature(
        self, digest: bytes, algorithm: str, key_tlv: Tlv | None, sig_tlv: Tlv | None
    ) -> TrustedKey | None:
        if sig_tlv is None:
            if self._require_signature:
                raise SignatureInvalidError("image is not signed (no signature TLV)")
            _log.warning("accepting an unsigned MCUboot image (require_signature=False)")
            return None
        candidates = self._candidate_keys(key_tlv, algorithm)
        if not candidates:
            raise UntrustedKeyError("no trusted MCUboot signing key is configured")
        last_error: SignatureInvalidError | None = None
        for trusted in candidates:
            try:
                scheme = _scheme_for(sig_tlv.type, trusted.key, algorithm)
                verify_signature(trusted.key, sig_tlv.value, scheme, digest=digest)
            except SignatureInvalidError as error:
                last_error = error
                continue
            return trusted
        raise SignatureInvalidError(
            f"{sig_tlv.name} signature does not verify under "
            f"{'the named key' if key_tlv is not None else f'any of {len(candidates)} trusted keys'}"
        ) from last_error

    def _check_device(self, protected: Mapping[int, Tlv]) -> None:
        for expected, kind, what in (
            (self._vendor, TlvType.UUID_VID, "vendor"),
            (self._class, TlvType.UUID_CID, "device class"),
        ):
            if expected is None:
                continue
            tlv = protected.get(kind)
            if tlv is None:
                raise IncompatibleDeviceError(f"image carries no {what} UUID; this device requires one")
            if tlv.value != expected:
                raise IncompatibleDeviceError(
                    f"image is for {what} {uuid.UUID(bytes=tlv.value)}, this device is {uuid.UUID(bytes=expected)}"
                )

    def check_dependencies(self, dependencies: tuple[Dependency, ...]) -> None:
        """Refuse unmet dependencies (or any dependency when no installed versions are known)."""
        if not self._check_dependencies:
            return
        for dependency in dependencies:
            if self._installed is None:
                raise DependencyError(
                    f"image depends on image {dependency.image_id} >= {dependency.min_version}; "
                    "no installed versions were given to check it"
                )
            installed = self._installed.get(dependency.image_id)
            if installed is None or installed < dependency.min_version:
                raise DependencyError(
                    f"image depends on image {dependency.image_id} >= {dependency.min_version}, "
                    f"installed: {installed if installed is not None else 'none'}",
                    details={"image_id": dependency.image_id},
                )


def parse_dependencies(tlvs: tuple[Tlv, ...]) -> tuple[Dependency, ...]:
    """Decode every DEPENDENCY TLV (``<B3xBBHI``: image id, then the minimum version)."""
    found = []
    for tlv in tlvs:
        if tlv.type == TlvType.DEPENDENCY:
            image_id, major, minor, revision, build = struct.unpack("<B3xBBHI", tlv.value)
            found.append(Dependency(image_id, McubootVersion(major, minor, revision, build)))
    return tuple(found)


def _scheme_for(sig_type: int, key: PublicKey, algorithm: str) -> SignatureScheme:
    if sig_type == TlvType.ECDSA_SIG:
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise SignatureInvalidError("ECDSA signature TLV but the key is not an EC key")
        wanted = "sha384" if key.curve.key_size == 384 else "sha256"
        if algorithm != wanted:
            raise SignatureInvalidError(f"ECDSA {key.curve.name} needs a {wanted} hash TLV, image has {algorithm}")
        return SignatureScheme(SignatureAlgorithm.ECDSA, algorithm, encoding="der")
    if sig_type == TlvType.ED25519:
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise SignatureInvalidError("ED25519 signature TLV but the key is not an Ed25519 key")
        return SignatureScheme(SignatureAlgorithm.ED25519, algorithm, ed25519_signs_digest=True)
    bits = 2048 if sig_type == TlvType.RSA2048_PSS else 3072
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size != bits:
        raise SignatureInvalidError(f"RSA{bits}_PSS signature TLV but the key is not an RSA-{bits} key")
    if algorithm != "sha256":
        raise SignatureInvalidError(f"RSA-PSS images use SHA-256, image has {algorithm}")
    return SignatureScheme(SignatureAlgorithm.RSA_PSS, "sha256", pss_salt_length=32)


_MAX_TLV_BYTES = 2 * 0x10000
"""The protected and unprotected TLV areas together can never be longer than this."""


class McubootStreamChecker:
    """Verifies an MCUboot image while it downloads; an ``IncrementalVerifier``.

    The header (first 32 bytes) is checked as soon as it arrives, so garbage is refused at the first
    block; the signed region is hashed on the fly and only the TLV areas at the end are kept (at most
    128 KiB). ``finish`` requires exactly ``size`` bytes, with nothing after the TLV area, then applies
    every check of the ``McubootVerifier``; the result is in ``result``.
    """

    def __init__(self, verifier: McubootVerifier, size: int, *, name: str = "image") -> None:
        if not isinstance(size, int) or isinstance(size, bool) or size < HEADER_STRUCT.size:
            raise SizeMismatchError(f"{name}: an MCUboot image has at least {HEADER_STRUCT.size} bytes, got {size!r}")
        self._verifier = verifier
        self._size = size
        self._name = name
        self._received = 0
        self._prefix = bytearray()
        self._header: bytes | None = None
        self._hashed_size = 0
        self._tail_start = 0
        self._tail = bytearray()
        algorithms = ["sha256", "sha384"] if verifier.needs_sha384() else ["sha256"]
        self._hashers = {algorithm: hashlib.new(algorithm) for algorithm in algorithms}
        self._finished = False
        self.result: VerifiedImage | None = None

    def update(self, data: bytes) -> None:
        """Feed the next bytes of the image, in order."""
        if self._finished:
            raise SizeMismatchError(f"{self._name}: data fed after finish()")
        offset = self._received
        end = offset + len(data)
        if end > self._size:
            raise SizeMismatchError(f"{self._name}: more data than the announced {self._size} bytes")
        self._received = end
        if self._header is None:
            self._prefix += data
            if len(self._prefix) < HEADER_STRUCT.size:
                return
            self._start(bytes(self._prefix[: HEADER_STRUCT.size]))
            data, offset = bytes(self._prefix), 0
            self._prefix = bytearray()
        self._consume(offset, data)

    def _start(self, header: bytes) -> None:
        magic, _load, hdr_size, protect_size, img_size = struct.unpack_from("<IIHHI", header)
        if magic != IMAGE_MAGIC:
            raise ImageFormatError(f"{self._name}: not an MCUboot image (magic 0x{magic:08x})")
        tail_start = hdr_size + img_size
        if hdr_size < HEADER_STRUCT.size or tail_start > self._size or self._size - tail_start > _MAX_TLV_BYTES:
            raise ImageFormatError(
                f"{self._name}: header sizes (header {hdr_size}, payload {img_size}) "
                f"do not fit a {self._size}-byte file"
            )
        self._header = header
        self._tail_start = tail_start
        self._hashed_size = tail_start + protect_size

    def _consume(self, offset: int, data: bytes) -> None:
        hashed = self._hashed_size - offset
        if hashed > 0:
            part = data if hashed >= len(data) else memoryview(data)[:hashed]
            for hasher in self._hashers.values():
                hasher.update(part)
        keep_from = self._tail_start - offset
        if keep_from < len(data):
            self._tail += data[max(0, keep_from) :]

    def finish(self) -> None:
        """Raise unless exactly ``size`` bytes formed an image that passes every check."""
        self._finished = True
        if self._received != self._size or self._header is None:
            raise SizeMismatchError(f"{self._name}: received {self._received} bytes, expected exactly {self._size}")
        header, tail, tail_start = self._header, bytes(self._tail), self._tail_start

        def read(offset: int, length: int) -> bytes:
            if offset + length <= len(header):
                return header[offset : offset + length]
            if offset >= tail_start:
                return tail[offset - tail_start : offset - tail_start + length]
            raise ImageFormatError(f"{self._name}: TLV area overlaps the payload")  # pragma: no cover

        parsed = parse_image(read, self._size, allow_trailing=False)
        if parsed.hashed_size != self._hashed_size:  # pragma: no cover - both come from the same header
            raise ImageFormatError(f"{self._name}: inconsistent protected TLV size")

        def digest_of(algorithm: str) -> bytes:
            hasher = self._hashers.get(algorithm)
            if hasher is None:
                raise UnsupportedAlgorithmError(f"{self._name}: {algorithm} images cannot be checked while streaming")
            return hasher.digest()

        self.result = self._verifier.verify_parsed(parsed, digest_of)

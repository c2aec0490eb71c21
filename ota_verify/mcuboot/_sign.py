"""Producing MCUboot images the way imgtool 2.5 does, so that ``imgtool verify`` accepts them.

The signer builds the header, the protected TLV area (security counter, dependencies, vendor and
class UUIDs), hashes header + payload + protected area, signs the digest and appends the unprotected
TLV area (hash, key hash or full key, signature). ``--pad``/``--confirm`` fill the rest of the slot the
way imgtool does (erased bytes, the boot magic and ``image_ok``); reading and changing that trailer on
a device is the boot component's business, not this module's.
"""

from __future__ import annotations

import hashlib
import struct
import uuid
from collections.abc import Iterable

import attrs
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

from ota_core.errors import ConfigurationError, VerificationError
from ota_verify.keys import PrivateKey, PublicKey, mcuboot_key_bytes, mcuboot_key_hash
from ota_verify.mcuboot._format import (
    HEADER_STRUCT,
    TLV_HEADER,
    TLV_INFO_MAGIC,
    TLV_PROT_INFO_MAGIC,
    ImageHeader,
    McubootVersion,
    TlvType,
)
from ota_verify.mcuboot._verify import Dependency
from ota_verify.signatures import SignatureAlgorithm, SignatureScheme, verify_signature

__all__ = ["BOOT_MAGIC", "BuiltImage", "SignOptions", "build_image", "imgtool_trailer_size", "sign_image"]

BOOT_MAGIC = bytes.fromhex("77c295f360d2ef7f3552500f2cb67980")
_DEFAULT_MAX_SECTORS = 128


@attrs.frozen
class SignOptions:
    """imgtool ``sign`` options, with imgtool's defaults.

    ``security_counter`` is an int, ``"auto"`` (derived from the version) or ``None`` (no SEC_CNT TLV).
    ``public_key_format`` is ``"hash"`` (KEYHASH TLV) or ``"full"`` (PUBKEY TLV).
    """

    version: McubootVersion
    header_size: int = 0x200
    slot_size: int = 0
    pad_header: bool = False
    pad: bool = False
    confirm: bool = False
    align: int = 1
    max_align: int | None = None
    max_sectors: int = _DEFAULT_MAX_SECTORS
    overwrite_only: bool = False
    erased_val: int = 0xFF
    load_addr: int = 0
    flags: int = 0
    security_counter: int | str | None = None
    dependencies: tuple[Dependency, ...] = ()
    vendor_uuid: bytes | None = None
    class_uuid: bytes | None = None
    public_key_format: str = "hash"
    custom_protected: tuple[tuple[int, bytes], ...] = ()


def _tlv_area(magic: int, entries: Iterable[tuple[int, bytes]]) -> bytes:
    entries = list(entries)
    for kind, value in entries:
        if not 0 <= kind <= 0xFFFF or len(value) > 0xFFFF:
            raise ConfigurationError(f"TLV 0x{kind:x} of {len(value)} bytes does not fit a TLV header")
    body = b"".join(TLV_HEADER.pack(kind, len(value)) + value for kind, value in entries)
    if len(body) + TLV_HEADER.size > 0xFFFF:
        raise ConfigurationError("TLV area larger than 65535 bytes")
    return TLV_HEADER.pack(magic, len(body) + TLV_HEADER.size) + body


def _max_align(options: SignOptions) -> int:
    return max(8, options.align) if options.max_align is None else options.max_align


def imgtool_trailer_size(options: SignOptions) -> int:
    """The trailer size imgtool reserves at the end of the slot (no encryption keys)."""
    if options.align not in (1, 2, 4, 8, 16, 32):
        raise ConfigurationError(f"--align must be 1, 2, 4, 8, 16 or 32, got {options.align}")
    max_align = _max_align(options)
    magic_size = -(-16 // max_align) * max_align
    if options.overwrite_only:
        return max_align * 2 + magic_size
    return options.max_sectors * 3 * options.align + max_align * 4 + magic_size


def _boot_magic(options: SignOptions) -> bytes:
    max_align = _max_align(options)
    if max_align == 8:
        return BOOT_MAGIC
    return struct.pack("<H", max_align) + BOOT_MAGIC[2:]


def _signature_tlv(key: PrivateKey, digest: bytes, hash_name: str) -> tuple[int, bytes]:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        algorithm: hashes.HashAlgorithm = hashes.SHA384() if hash_name == "sha384" else hashes.SHA256()
        return TlvType.ECDSA_SIG, key.sign(digest, ec.ECDSA(utils.Prehashed(algorithm)))
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return TlvType.ED25519, key.sign(digest)
    if isinstance(key, rsa.RSAPrivateKey):
        kind = {2048: TlvType.RSA2048_PSS, 3072: TlvType.RSA3072_PSS}.get(key.key_size)
        if kind is None:
            raise ConfigurationError(f"MCUboot signs with RSA-2048 or RSA-3072, not RSA-{key.key_size}")
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        return kind, key.sign(digest, pss, utils.Prehashed(hashes.SHA256()))
    raise ConfigurationError(f"unsupported signing key {type(key).__name__}")  # pragma: no cover - checked earlier


@attrs.frozen
class BuiltImage:
    """A built image and what an external signing flow needs: the signed region, its digest, the signature."""

    image: bytes
    signed_region: bytes
    digest: bytes
    hash_algorithm: str
    signature: bytes | None


def sign_image(payload: bytes, key: PrivateKey | None, options: SignOptions) -> bytes:
    """Build a signed (or, with ``key=None``, hash-only) MCUboot image from a firmware binary.

    Without ``pad_header`` the first ``header_size`` bytes of ``payload`` must be zero (space left for
    the header by the build), as imgtool requires.
    """
    return build_image(payload, key, options).image


def build_image(
    payload: bytes,
    key: PrivateKey | None,
    options: SignOptions,
    *,
    fixed_signature: bytes | None = None,
    fixed_public_key: PublicKey | None = None,
    signer_public_key: PublicKey | None = None,
) -> BuiltImage:
    """Build an image, signed with ``key`` or with a signature made elsewhere (an HSM, a signing service).

    External signing in two steps, as with imgtool's ``--vector-to-sign`` and ``--fix-sig``: build once
    without a key and sign ``signed_region`` (or ``digest``) elsewhere; build again with the same options,
    ``fixed_signature`` and the signer's ``fixed_public_key``. The fixed signature is verified before it
    is written into the image. ``signer_public_key`` (first step, no key at hand) picks the hash the
    signer needs: SHA-384 for an ECDSA P-384 key, SHA-256 otherwise.
    """
    if options.header_size < HEADER_STRUCT.size:
        raise ConfigurationError(f"header size must be at least {HEADER_STRUCT.size}, got {options.header_size}")
    if options.public_key_format not in ("hash", "full"):
        raise ConfigurationError("public key format must be 'hash' or 'full'")
    if key is not None and not isinstance(
        key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
    ):
        raise ConfigurationError(f"unsupported signing key {type(key).__name__}")
    if (fixed_signature is None) != (fixed_public_key is None):
        raise ConfigurationError("a fixed signature needs the public key of its signer, and the other way round")
    if fixed_signature is not None and key is not None:
        raise ConfigurationError("sign with a key or provide a fixed signature, not both")
    public: PublicKey | None = key.public_key() if key is not None else fixed_public_key
    if options.header_size > 0xFFFF or not 0 <= options.load_addr <= 0xFFFFFFFF or not 0 <= options.flags <= 0xFFFFFFFF:
        raise ConfigurationError("header size, load address or flags out of range for the MCUboot header")
    if options.pad_header:
        body = bytes([options.erased_val]) * options.header_size + payload
    else:
        if len(payload) < options.header_size or any(payload[: options.header_size]):
            raise ConfigurationError(
                "header padding was not requested (--pad-header) and the image does not start with "
                f"{options.header_size} zero bytes"
            )
        body = payload
    hash_name = "sha256"
    hash_key = public if public is not None else signer_public_key
    if isinstance(hash_key, ec.EllipticCurvePublicKey) and hash_key.curve.key_size == 384:
        hash_name = "sha384"

    protected: list[tuple[int, bytes]] = []
    counter = options.security_counter
    if counter == "auto":
        counter = options.version.as_security_counter()
    if counter is not None:
        if not isinstance(counter, int) or not 0 <= counter <= 0xFFFFFFFF:
            raise ConfigurationError(f"security counter must be a u32 or 'auto', got {counter!r}")
        protected.append((TlvType.SEC_CNT, struct.pack("<I", counter)))
    for dependency in options.dependencies:
        v = dependency.min_version
        protected.append(
            (
                TlvType.DEPENDENCY,
                struct.pack("<B3xBBHI", dependency.image_id, v.major, v.minor, v.revision, v.build),
            )
        )
    if options.vendor_uuid is not None:
        protected.append((TlvType.UUID_VID, uuid.UUID(bytes=options.vendor_uuid).bytes))
    if options.class_uuid is not None:
        protected.append((TlvType.UUID_CID, uuid.UUID(bytes=options.class_uuid).bytes))
    protected.extend(options.custom_protected)
    protected_area = _tlv_area(TLV_PROT_INFO_MAGIC, protected) if protected else b""

    if len(body) - options.header_size > 0xFFFFFFFF:
        raise ConfigurationError("payload larger than 4 GiB")  # pragma: no cover - not testable in memory
    header = ImageHeader(
        load_addr=options.load_addr,
        hdr_size=options.header_size,
        protect_tlv_size=len(protected_area),
        img_size=len(body) - options.header_size,
        flags=options.flags,
        version=options.version,
    )
    signed_region = header.pack() + body[HEADER_STRUCT.size :] + protected_area
    digest = hashlib.new(hash_name, signed_region).digest()
    unprotected: list[tuple[int, bytes]] = [(TlvType.SHA384 if hash_name == "sha384" else TlvType.SHA256, digest)]
    signature: bytes | None = None
    if public is not None:
        if options.public_key_format == "full":
            unprotected.append((TlvType.PUBKEY, mcuboot_key_bytes(public)))
        else:
            unprotected.append((TlvType.KEYHASH, mcuboot_key_hash(public, hash_name)))
        if key is not None:
            kind, signature = _signature_tlv(key, digest, hash_name)
        else:
            assert fixed_signature is not None
            kind, signature = _fixed_signature_tlv(public, fixed_signature, digest, hash_name)
        unprotected.append((kind, signature))
    image = signed_region + _tlv_area(TLV_INFO_MAGIC, unprotected)

    if options.slot_size:
        trailer = imgtool_trailer_size(options)
        if len(image) + trailer > options.slot_size:
            raise ConfigurationError(
                f"image ({len(image)} bytes) + trailer ({trailer} bytes) exceeds the slot size {options.slot_size}"
            )
        if options.pad or options.confirm:
            fill = bytearray([options.erased_val]) * (options.slot_size - len(image) - len(_boot_magic(options)))
            fill += _boot_magic(options)
            if options.confirm and not options.overwrite_only:
                max_align = _max_align(options)
                fill[-(-(-16 // max_align) * max_align + max_align)] = 0x01
            image += bytes(fill)
    elif options.pad or options.confirm:
        raise ConfigurationError("--pad/--confirm need a slot size")
    return BuiltImage(image, signed_region, digest, hash_name, signature)


def _fixed_signature_tlv(public: PublicKey, signature: bytes, digest: bytes, hash_name: str) -> tuple[int, bytes]:
    """The TLV for a signature made elsewhere, after checking that it signs this image's digest."""
    if isinstance(public, ec.EllipticCurvePublicKey):
        kind, scheme = TlvType.ECDSA_SIG, SignatureScheme(SignatureAlgorithm.ECDSA, hash_name, encoding="der")
    elif isinstance(public, ed25519.Ed25519PublicKey):
        kind, scheme = TlvType.ED25519, SignatureScheme(SignatureAlgorithm.ED25519, hash_name)
    else:
        bits = public.key_size
        if bits not in (2048, 3072):
            raise ConfigurationError(f"MCUboot signs with RSA-2048 or RSA-3072, not RSA-{bits}")
        kind = TlvType.RSA2048_PSS if bits == 2048 else TlvType.RSA3072_PSS
        scheme = SignatureScheme(SignatureAlgorithm.RSA_PSS, "sha256", pss_salt_length=32)
    try:
        verify_signature(public, signature, scheme, digest=digest)
    except VerificationError as error:
        raise ConfigurationError(f"the fixed signature does not sign this image: {error.message}") from error
    return kind, signature

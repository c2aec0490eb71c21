"""MCUboot images: round trips for every key type, tamper detection at every byte, and policy refusals."""

from __future__ import annotations

import struct
import uuid
from pathlib import Path

import attrs
import pytest

from ota_core.errors import OtaError, VerificationError
from ota_core.protocols import ImageValidator
from ota_core.versions import Version
from ota_verify.errors import (
    DependencyError,
    DigestMismatchError,
    ImageFormatError,
    IncompatibleDeviceError,
    KeyRevokedError,
    SignatureInvalidError,
    UnsupportedAlgorithmError,
    UntrustedKeyError,
)
from ota_verify.keys import KeyRing, key_hash
from ota_verify.mcuboot import (
    BOOT_MAGIC,
    Dependency,
    McubootVerifier,
    McubootVersion,
    TlvType,
    parse_image,
)
from tests.verify_fixtures import FIRMWARE, KEY_KINDS, private_key, signed_image


def ring(*kinds: str) -> KeyRing:
    return KeyRing([private_key(kind).public_key() for kind in kinds])


def tlv_offset(image: bytes, kind: int) -> int:
    parsed = parse_image(lambda o, n: image[o : o + n], len(image))
    for tlv in (*parsed.protected, *parsed.unprotected):
        if tlv.type == kind:
            return tlv.offset
    raise AssertionError(f"no TLV {kind:#x}")


def append_unprotected(image: bytes, kind: int, value: bytes) -> bytes:
    parsed = parse_image(lambda o, n: image[o : o + n], len(image))
    start = parsed.hashed_size
    magic, total = struct.unpack_from("<HH", image, start)
    extra = struct.pack("<HH", kind, len(value)) + value
    return image[:start] + struct.pack("<HH", magic, total + len(extra)) + image[start + 4 :] + extra


@attrs.frozen
class Slot:
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    def read(self, offset: int, length: int) -> bytes:
        return self.data[offset : offset + length]


@pytest.mark.parametrize("kind", KEY_KINDS)
def test_round_trip_every_key_type(kind: str) -> None:
    image = signed_image(kind, security_counter="auto")
    result = McubootVerifier(ring(kind)).verify_bytes(image)
    assert result.version == McubootVersion(1, 2, 3, 4)
    assert result.security_counter == (1 << 24) | (2 << 16) | 3
    assert result.hash_algorithm == ("sha384" if kind == "ecdsa-p384" else "sha256")
    assert result.key is not None and result.key.key_hash == key_hash(private_key(kind).public_key())


@pytest.mark.parametrize("kind", ["ecdsa-p256", "ed25519", "rsa-2048"])
def test_full_public_key_format(kind: str) -> None:
    image = signed_image(kind, public_key_format="full")
    assert McubootVerifier(ring(kind)).verify_bytes(image).version.major == 1
    with pytest.raises(UntrustedKeyError):
        McubootVerifier(ring("ecdsa-p384")).verify_bytes(image)


def test_image_validator_protocol_with_slot_padding() -> None:
    image = signed_image(pad=True, confirm=True)
    assert image.endswith(BOOT_MAGIC) and len(image) == 0x4000
    assert image[-24] == 0x01
    verifier = McubootVerifier(ring("ecdsa-p256"))
    assert isinstance(verifier, ImageValidator)
    info = verifier.validate(Slot(image))
    assert info.version == Version(1, 2, 3, build="4")
    assert info.security_counter is None


def test_every_single_byte_flip_is_rejected() -> None:
    image = signed_image("ed25519", payload=b"tiny firmware!", security_counter=7)
    verifier = McubootVerifier(ring("ed25519"))
    verifier.verify_bytes(image)
    for index in range(len(image)):
        tampered = bytearray(image)
        tampered[index] ^= 0x01
        with pytest.raises(VerificationError):
            verifier.verify_bytes(bytes(tampered))


def test_payload_flip_is_a_digest_mismatch_and_signature_flip_an_invalid_signature() -> None:
    image = signed_image()
    verifier = McubootVerifier(ring("ecdsa-p256"))
    tampered = bytearray(image)
    tampered[0x40] ^= 0xFF
    with pytest.raises(DigestMismatchError):
        verifier.verify_bytes(bytes(tampered))
    tampered = bytearray(image)
    tampered[-3] ^= 0xFF
    with pytest.raises(SignatureInvalidError):
        verifier.verify_bytes(bytes(tampered))


def test_wrong_key_and_no_keys() -> None:
    image = signed_image("ecdsa-p256")
    with pytest.raises(UntrustedKeyError):
        McubootVerifier(ring("ed25519")).verify_bytes(image)
    with pytest.raises(UntrustedKeyError):
        McubootVerifier(KeyRing()).verify_bytes(image)


def test_rotated_keys_and_revocation() -> None:
    old, new = private_key("ecdsa-p256", 1), private_key("ecdsa-p256", 2)
    keys = KeyRing([old.public_key(), new.public_key()])
    from ota_verify.mcuboot import SignOptions, sign_image

    options = SignOptions(version=McubootVersion(2, 0, 0), header_size=0x20, pad_header=True)
    by_old, by_new = sign_image(FIRMWARE, old, options), sign_image(FIRMWARE, new, options)
    McubootVerifier(keys).verify_bytes(by_old)
    keys.revoke(key_hash(old.public_key()).hex())
    with pytest.raises(KeyRevokedError):
        McubootVerifier(keys).verify_bytes(by_old)
    assert McubootVerifier(keys).verify_bytes(by_new).version.major == 2


def test_revoked_key_without_keyhash_is_not_tried() -> None:
    image = signed_image("rsa-2048")
    stripped = _remove_tlv(image, TlvType.KEYHASH)
    keys = ring("rsa-2048")
    assert McubootVerifier(keys).verify_bytes(stripped).version.minor == 2
    keys.revoke(key_hash(private_key("rsa-2048").public_key()))
    with pytest.raises(UntrustedKeyError):
        McubootVerifier(keys).verify_bytes(stripped)


def _remove_tlv(image: bytes, kind: int) -> bytes:
    parsed = parse_image(lambda o, n: image[o : o + n], len(image))
    keep = [t for t in parsed.unprotected if t.type != kind]
    body = b"".join(struct.pack("<HH", t.type, len(t.value)) + t.value for t in keep)
    return image[: parsed.hashed_size] + struct.pack("<HH", 0x6907, len(body) + 4) + body


def test_truncated_and_extended_images() -> None:
    image = signed_image()
    verifier = McubootVerifier(ring("ecdsa-p256"))
    for cut in (0, 10, 31, 32, 0x20 + 5, len(image) - 1):
        with pytest.raises(ImageFormatError):
            verifier.verify_bytes(image[:cut])
    with pytest.raises(ImageFormatError, match="extra bytes"):
        verifier.verify_bytes(image + b"\xff" * 16)
    assert verifier.verify_bytes(image + b"\xff" * 16, allow_trailing=True).size == len(image)


def test_unknown_and_unsupported_flags_are_refused() -> None:
    verifier = McubootVerifier(ring("ecdsa-p256"))
    with pytest.raises(ImageFormatError, match="unknown 0x80000"):
        verifier.verify_bytes(signed_image(flags=0x80000))
    with pytest.raises(ImageFormatError, match="ENCRYPTED_AES128"):
        verifier.verify_bytes(signed_image(flags=0x04))
    assert verifier.verify_bytes(signed_image(flags=0x100)).flags == 0x100
    assert McubootVerifier(ring("ecdsa-p256"), allowed_flags=0x10).verify_bytes(signed_image(flags=0x10)).flags


def test_device_class_and_vendor() -> None:
    vendor, klass, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    image = signed_image(vendor_uuid=vendor.bytes, class_uuid=klass.bytes)
    keys = ring("ecdsa-p256")
    result = McubootVerifier(keys, vendor_uuid=vendor, class_uuid=str(klass)).verify_bytes(image)
    assert result.class_uuid == klass.bytes and result.vendor_uuid == vendor.bytes
    with pytest.raises(IncompatibleDeviceError, match="device class"):
        McubootVerifier(keys, class_uuid=other).verify_bytes(image)
    with pytest.raises(IncompatibleDeviceError, match="carries no vendor"):
        McubootVerifier(keys, vendor_uuid=vendor).verify_bytes(signed_image())
    from ota_core.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        McubootVerifier(keys, vendor_uuid=b"short")
    with pytest.raises(ConfigurationError):
        McubootVerifier(keys, class_uuid="not-a-uuid")


def test_load_address() -> None:
    keys = ring("ecdsa-p256")
    image = signed_image(load_addr=0x8000)
    assert McubootVerifier(keys, load_addr=0x8000).verify_bytes(image).load_addr == 0x8000
    with pytest.raises(IncompatibleDeviceError):
        McubootVerifier(keys, load_addr=0).verify_bytes(image)


def test_dependencies() -> None:
    keys = ring("ecdsa-p256")
    image = signed_image(dependencies=(Dependency(1, McubootVersion(2, 1, 0)),))
    with pytest.raises(DependencyError, match="no installed versions"):
        McubootVerifier(keys).verify_bytes(image)
    with pytest.raises(DependencyError, match=r"installed: 2\.0\.9"):
        McubootVerifier(keys, installed_versions={1: McubootVersion(2, 0, 9)}).verify_bytes(image)
    with pytest.raises(DependencyError, match="installed: none"):
        McubootVerifier(keys, installed_versions={0: McubootVersion(9, 0, 0)}).verify_bytes(image)
    result = McubootVerifier(keys, installed_versions={1: McubootVersion(2, 1, 0)}).verify_bytes(image)
    assert result.dependencies == (Dependency(1, McubootVersion(2, 1, 0)),)
    assert McubootVerifier(keys, check_dependencies=False).verify_bytes(image).dependencies


def test_unexpected_unprotected_tlvs() -> None:
    keys = ring("ecdsa-p256")
    image = signed_image()
    injected = append_unprotected(image, 0x00A0, b"vendor data")
    with pytest.raises(ImageFormatError, match="unexpected unprotected TLV"):
        McubootVerifier(keys).verify_bytes(injected)
    assert McubootVerifier(keys, allow_unknown_unprotected=True).verify_bytes(injected)
    with pytest.raises(ImageFormatError, match="outside the protected area"):
        McubootVerifier(keys).verify_bytes(append_unprotected(image, TlvType.SEC_CNT, b"\x00\x00\x00\x09"))
    signature = image[tlv_offset(image, TlvType.ECDSA_SIG) + 4 :]
    with pytest.raises(ImageFormatError, match="more than one signature"):
        McubootVerifier(keys).verify_bytes(append_unprotected(image, TlvType.ECDSA_SIG, signature))
    with pytest.raises(ImageFormatError, match="more than one hash"):
        McubootVerifier(keys).verify_bytes(append_unprotected(image, TlvType.SHA256, bytes(32)))
    with pytest.raises(ImageFormatError, match="more than one KEYHASH"):
        McubootVerifier(keys).verify_bytes(append_unprotected(image, TlvType.KEYHASH, bytes(32)))
    with pytest.raises(UnsupportedAlgorithmError):
        McubootVerifier(keys).verify_bytes(append_unprotected(image, TlvType.SIG_PURE, b"\x01"))


def test_protected_area_rules() -> None:
    keys = ring("ecdsa-p256")
    with pytest.raises(ImageFormatError, match="duplicate SEC_CNT"):
        McubootVerifier(keys).verify_bytes(
            signed_image(security_counter=1, custom_protected=((TlvType.SEC_CNT, b"\x02\x00\x00\x00"),))
        )
    with pytest.raises(ImageFormatError, match="in the protected area"):
        McubootVerifier(keys).verify_bytes(signed_image(custom_protected=((TlvType.SHA256, bytes(32)),)))
    with pytest.raises(ImageFormatError, match="expected 4"):
        McubootVerifier(keys).verify_bytes(signed_image(custom_protected=((TlvType.SEC_CNT, b"\x01"),)))


def test_unsigned_images() -> None:
    from ota_verify.mcuboot import SignOptions, sign_image

    image = sign_image(FIRMWARE, None, SignOptions(version=McubootVersion(1, 0, 0), header_size=32, pad_header=True))
    with pytest.raises(SignatureInvalidError, match="not signed"):
        McubootVerifier(ring("ecdsa-p256")).verify_bytes(image)
    assert McubootVerifier(KeyRing(), require_signature=False).verify_bytes(image).key is None


def test_hash_and_key_tlv_size_and_shape_errors() -> None:
    keys = ring("ecdsa-p256")
    image = _remove_tlv(signed_image(), TlvType.SHA256)
    with pytest.raises(ImageFormatError, match="no hash TLV"):
        McubootVerifier(keys).verify_bytes(image)
    image = signed_image()
    only_hash = _remove_tlv(_remove_tlv(image, TlvType.ECDSA_SIG), TlvType.KEYHASH)
    with pytest.raises(ImageFormatError, match="without a signature"):
        McubootVerifier(keys).verify_bytes(append_unprotected(only_hash, TlvType.KEYHASH, bytes(32)))
    short_hash = append_unprotected(_remove_tlv(image, TlvType.SHA256), TlvType.SHA256, bytes(31))
    with pytest.raises(ImageFormatError, match="expected 32"):
        McubootVerifier(keys).verify_bytes(short_hash)
    bad_keyhash = append_unprotected(_remove_tlv(image, TlvType.KEYHASH), TlvType.KEYHASH, bytes(20))
    with pytest.raises(ImageFormatError, match="KEYHASH TLV is 20"):
        McubootVerifier(keys).verify_bytes(bad_keyhash)
    bad_pubkey = append_unprotected(_remove_tlv(image, TlvType.KEYHASH), TlvType.PUBKEY, b"not a key")
    with pytest.raises(ImageFormatError, match="PUBKEY"):
        McubootVerifier(keys).verify_bytes(bad_pubkey)


@pytest.mark.parametrize(
    ("signer", "trusted"),
    [("ed25519", "ecdsa-p256"), ("ecdsa-p256", "rsa-2048"), ("rsa-2048", "rsa-3072"), ("rsa-3072", "ed25519")],
)
def test_signature_tlv_type_must_fit_the_key(signer: str, trusted: str) -> None:
    image = _remove_tlv(signed_image(signer), TlvType.KEYHASH)
    with pytest.raises(SignatureInvalidError):
        McubootVerifier(ring(trusted)).verify_bytes(image)


def test_p384_image_with_sha256_is_refused() -> None:
    image = signed_image("ecdsa-p384")
    parsed = parse_image(lambda o, n: image[o : o + n], len(image))
    signature = next(t for t in parsed.unprotected if t.type == TlvType.ECDSA_SIG).value
    import hashlib

    body = image[: parsed.hashed_size]
    forged = (
        struct.pack("<HH", TlvType.SHA256, 32)
        + hashlib.sha256(body).digest()
        + struct.pack("<HH", TlvType.ECDSA_SIG, len(signature))
        + signature
    )
    with pytest.raises(SignatureInvalidError) as caught:
        McubootVerifier(ring("ecdsa-p384")).verify_bytes(body + struct.pack("<HH", 0x6907, len(forged) + 4) + forged)
    assert "needs a sha384" in str(caught.value.__cause__)


def test_header_errors() -> None:
    image = bytearray(signed_image())
    verifier = McubootVerifier(ring("ecdsa-p256"))
    bad = bytearray(image)
    bad[0] ^= 1
    with pytest.raises(ImageFormatError, match="magic"):
        verifier.verify_bytes(bytes(bad))
    bad = bytearray(image)
    struct.pack_into("<H", bad, 8, 16)
    with pytest.raises(ImageFormatError, match="smaller than the 32-byte"):
        verifier.verify_bytes(bytes(bad))
    bad = bytearray(image)
    struct.pack_into("<I", bad, 12, 0xFFFFFF)
    with pytest.raises(ImageFormatError, match="payload bytes"):
        verifier.verify_bytes(bytes(bad))
    bad = bytearray(signed_image(security_counter=3))
    struct.pack_into("<H", bad, 10, 16)
    with pytest.raises(ImageFormatError, match="header says 16"):
        verifier.verify_bytes(bytes(bad))


def test_tlv_length_running_past_the_end() -> None:
    image = bytearray(signed_image())
    offset = tlv_offset(bytes(image), TlvType.ECDSA_SIG)
    struct.pack_into("<H", image, offset + 2, 0xFFF0)
    with pytest.raises(ImageFormatError, match="runs past the end"):
        McubootVerifier(ring("ecdsa-p256")).verify_bytes(bytes(image))
    info = bytearray(signed_image())
    start = len(info) - len(_tlv_tail(bytes(info)))
    struct.pack_into("<H", info, start + 2, 2)
    with pytest.raises(ImageFormatError, match="smaller than its info"):
        McubootVerifier(ring("ecdsa-p256")).verify_bytes(bytes(info))


def _tlv_tail(image: bytes) -> bytes:
    parsed = parse_image(lambda o, n: image[o : o + n], len(image))
    return image[parsed.hashed_size :]


def test_versions() -> None:
    assert McubootVersion.parse("1") == McubootVersion(1, 0, 0)
    assert McubootVersion.parse("1.2.3+4") == McubootVersion(1, 2, 3, 4)
    assert str(McubootVersion(1, 2, 3, 4)) == "1.2.3+4"
    assert McubootVersion(1, 2, 3, 5) > McubootVersion(1, 2, 3, 4)
    for text in ("", "1.2.3.4", "a.b", "1.2.3+x", "256.0.0", "1.2.70000"):
        with pytest.raises(OtaError):
            McubootVersion.parse(text)
    with pytest.raises(ImageFormatError):
        McubootVersion.parse(5)  # type: ignore[arg-type]


def test_signer_option_errors() -> None:
    from ota_core.errors import ConfigurationError
    from ota_verify.mcuboot import SignOptions, imgtool_trailer_size, sign_image

    key = private_key("ecdsa-p256")
    version = McubootVersion(1, 0, 0)
    bad = [
        SignOptions(version=version, header_size=16, pad_header=True),
        SignOptions(version=version, header_size=32, pad_header=True, public_key_format="pem"),
        SignOptions(version=version, header_size=32),  # no zeroed header space in the payload
        SignOptions(version=version, header_size=32, pad_header=True, security_counter=-1),
        SignOptions(version=version, header_size=32, pad_header=True, pad=True),  # --pad needs a slot size
        SignOptions(version=version, header_size=32, pad_header=True, slot_size=64),  # does not fit
        SignOptions(version=version, header_size=32, pad_header=True, slot_size=0x4000, align=3),
    ]
    for options in bad:
        with pytest.raises(ConfigurationError):
            sign_image(FIRMWARE, key, options)
    with pytest.raises(ConfigurationError):
        sign_image(
            FIRMWARE,
            private_key("ecdsa-p256"),
            SignOptions(version=version, header_size=32, pad_header=True, custom_protected=((0x99, bytes(70000)),)),
        )
    import cryptography.hazmat.primitives.asymmetric.rsa as rsa_module

    rsa4096 = rsa_module.generate_private_key(public_exponent=65537, key_size=4096)
    with pytest.raises(ConfigurationError, match="RSA-2048 or RSA-3072"):
        sign_image(FIRMWARE, rsa4096, SignOptions(version=version, header_size=32, pad_header=True))
    with pytest.raises(ConfigurationError):
        sign_image(FIRMWARE, object(), SignOptions(version=version, header_size=32, pad_header=True))  # type: ignore[arg-type]
    overwrite = SignOptions(version=version, header_size=32, slot_size=0x4000, overwrite_only=True, max_align=16)
    assert imgtool_trailer_size(overwrite) == 16 * 2 + 16
    padded = sign_image(b"\x00" * 32 + FIRMWARE, key, attrs.evolve(overwrite, confirm=True))
    assert padded[-16:] == struct.pack("<H", 16) + BOOT_MAGIC[2:]
    assert McubootVerifier(ring("ecdsa-p256")).verify_bytes(padded, allow_trailing=True)


def test_header_fields_out_of_range() -> None:
    from ota_core.errors import ConfigurationError
    from ota_verify.mcuboot import SignOptions, sign_image

    for options in (
        SignOptions(version=McubootVersion(1, 0, 0), header_size=0x10000, pad_header=True),
        SignOptions(version=McubootVersion(1, 0, 0), header_size=32, pad_header=True, load_addr=-1),
        SignOptions(version=McubootVersion(1, 0, 0), header_size=32, pad_header=True, flags=1 << 32),
    ):
        with pytest.raises(ConfigurationError):
            sign_image(FIRMWARE, None, options)


@pytest.mark.parametrize("kind", ["ecdsa-p256", "ecdsa-p384", "ed25519", "rsa-2048", "rsa-3072"])
def test_external_signature_flow(kind: str) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, utils

    from ota_core.errors import ConfigurationError
    from ota_verify.mcuboot import SignOptions, build_image

    options = SignOptions(version=McubootVersion(4, 0, 0), header_size=32, pad_header=True, security_counter=4)
    key = private_key(kind)
    unsigned = build_image(FIRMWARE, None, options)
    assert unsigned.signature is None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        # Without a key the image hash is SHA-256; a P-384 signer signs the SHA-384 of the same region.
        algorithm = hashes.SHA384() if key.curve.key_size == 384 else hashes.SHA256()
        signature = key.sign(unsigned.signed_region, ec.ECDSA(algorithm))
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        signature = key.sign(unsigned.digest)
    else:
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        signature = key.sign(unsigned.digest, pss, utils.Prehashed(hashes.SHA256()))
    built = build_image(FIRMWARE, None, options, fixed_signature=signature, fixed_public_key=key.public_key())
    assert built.signature == signature
    assert McubootVerifier(ring(kind)).verify_bytes(built.image).security_counter == 4
    with pytest.raises(ConfigurationError, match="does not sign"):
        build_image(FIRMWARE + b"!", None, options, fixed_signature=signature, fixed_public_key=key.public_key())
    with pytest.raises(ConfigurationError, match="other way round"):
        build_image(FIRMWARE, None, options, fixed_signature=signature)
    with pytest.raises(ConfigurationError, match="not both"):
        build_image(FIRMWARE, key, options, fixed_signature=signature, fixed_public_key=key.public_key())


def test_external_signature_with_unsupported_rsa_size() -> None:
    import cryptography.hazmat.primitives.asymmetric.rsa as rsa_module

    from ota_core.errors import ConfigurationError
    from ota_verify.mcuboot import SignOptions, build_image

    big = rsa_module.generate_private_key(public_exponent=65537, key_size=4096)
    options = SignOptions(version=McubootVersion(1, 0, 0), header_size=32, pad_header=True)
    with pytest.raises(ConfigurationError, match="RSA-4096"):
        build_image(FIRMWARE, None, options, fixed_signature=b"x" * 512, fixed_public_key=big.public_key())


def test_boot_time_rollback_check(tmp_path: Path) -> None:
    from ota_core.state_store import FileStateStore
    from ota_verify.errors import DowngradeError
    from ota_verify.rollback import AntiRollbackPolicy

    policy = AntiRollbackPolicy(FileStateStore(tmp_path))
    policy.confirm(Version(2, 0, 0), security_counter=2)
    verifier = McubootVerifier(ring("ecdsa-p256"), boot_rollback=policy)
    assert verifier.validate(Slot(signed_image(version=McubootVersion(2, 0, 0), security_counter=2))).version.major == 2
    assert verifier.validate(Slot(signed_image(version=McubootVersion(3, 0, 0), security_counter=3))).version.major == 3
    with pytest.raises(DowngradeError):
        verifier.validate(Slot(signed_image(version=McubootVersion(1, 9, 9))))
    with pytest.raises(DowngradeError):
        verifier.validate(Slot(signed_image(version=McubootVersion(3, 0, 0), security_counter=1)))

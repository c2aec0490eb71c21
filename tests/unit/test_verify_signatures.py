"""Signatures: every algorithm and encoding, AWS ``sig-<hash>-<alg>`` names, keys and bad input."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from ota_core.errors import OtaError
from ota_verify.errors import (
    KeyFormatError,
    KeyRevokedError,
    MalformedInputError,
    SignatureInvalidError,
    UnsupportedAlgorithmError,
    UntrustedKeyError,
)
from ota_verify.keys import (
    KeyRing,
    TrustedKey,
    describe_key,
    key_hash,
    load_mcuboot_public_key,
    load_private_key,
    load_public_key,
    mcuboot_key_bytes,
)
from ota_verify.signatures import (
    SignatureAlgorithm,
    SignatureScheme,
    decode_base64,
    scheme_from_aws_key,
    scheme_from_names,
    verify_any,
    verify_signature,
)
from ota_verify.tools import private_key_pem, public_key_pem, sign_detached, verify_detached
from tests.verify_fixtures import KEY_KINDS, make_certificate, private_key

MESSAGE = b"firmware bytes" * 100


def test_ecdsa_der_and_raw() -> None:
    for kind, hash_name, algorithm in (
        ("ecdsa-p256", "sha256", hashes.SHA256()),
        ("ecdsa-p384", "sha384", hashes.SHA384()),
    ):
        key = private_key(kind)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        der = key.sign(MESSAGE, ec.ECDSA(algorithm))
        r, s = utils.decode_dss_signature(der)
        width = key.curve.key_size // 8
        raw = r.to_bytes(width, "big") + s.to_bytes(width, "big")
        public = key.public_key()
        for encoding in ("auto", "der"):
            verify_signature(
                public, der, SignatureScheme(SignatureAlgorithm.ECDSA, hash_name, encoding), message=MESSAGE
            )
        for encoding in ("auto", "raw"):
            scheme = SignatureScheme(SignatureAlgorithm.ECDSA, hash_name, encoding)
            verify_signature(public, raw, scheme, digest=hashlib.new(hash_name, MESSAGE).digest())
        with pytest.raises(SignatureInvalidError):
            verify_signature(public, raw, SignatureScheme(SignatureAlgorithm.ECDSA, hash_name, "der"), message=MESSAGE)
        with pytest.raises(SignatureInvalidError):
            verify_signature(
                public, raw[:-1], SignatureScheme(SignatureAlgorithm.ECDSA, hash_name, "raw"), message=MESSAGE
            )
        with pytest.raises(SignatureInvalidError):
            verify_signature(public, der, SignatureScheme(SignatureAlgorithm.ECDSA, hash_name), message=MESSAGE + b"!")


@pytest.mark.parametrize("kind", ["rsa-2048", "rsa-3072"])
def test_rsa_pkcs1v15_and_pss(kind: str) -> None:
    key = private_key(kind)
    assert isinstance(key, rsa.RSAPrivateKey)
    public = key.public_key()
    v15 = key.sign(MESSAGE, padding.PKCS1v15(), hashes.SHA256())
    verify_signature(public, v15, SignatureScheme(SignatureAlgorithm.RSA_PKCS1V15), message=MESSAGE)
    pss = key.sign(MESSAGE, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
    verify_signature(public, pss, SignatureScheme(SignatureAlgorithm.RSA_PSS), message=MESSAGE)
    verify_signature(public, pss, SignatureScheme(SignatureAlgorithm.RSA_PSS, pss_salt_length=32), message=MESSAGE)
    with pytest.raises(SignatureInvalidError):
        verify_signature(public, pss, SignatureScheme(SignatureAlgorithm.RSA_PSS, pss_salt_length=20), message=MESSAGE)
    with pytest.raises(SignatureInvalidError):
        verify_signature(public, v15, SignatureScheme(SignatureAlgorithm.RSA_PSS), message=MESSAGE)


def test_ed25519_message_and_digest_modes() -> None:
    key = private_key("ed25519")
    public = key.public_key()
    digest = hashlib.sha256(MESSAGE).digest()
    over_digest = key.sign(digest)  # type: ignore[call-arg]
    verify_signature(public, over_digest, SignatureScheme(SignatureAlgorithm.ED25519), digest=digest)
    verify_signature(public, over_digest, SignatureScheme(SignatureAlgorithm.ED25519), message=MESSAGE)
    pure = key.sign(MESSAGE)  # type: ignore[call-arg]
    scheme = SignatureScheme(SignatureAlgorithm.ED25519, ed25519_signs_digest=False)
    verify_signature(public, pure, scheme, message=MESSAGE)
    with pytest.raises(UnsupportedAlgorithmError):
        verify_signature(public, pure, scheme, digest=digest)


@pytest.mark.parametrize(
    ("algorithm", "kind"),
    [
        (SignatureAlgorithm.ECDSA, "ed25519"),
        (SignatureAlgorithm.RSA_PSS, "ecdsa-p256"),
        (SignatureAlgorithm.ED25519, "rsa-2048"),
    ],
)
def test_wrong_key_type_is_an_invalid_signature(algorithm: SignatureAlgorithm, kind: str) -> None:
    with pytest.raises(SignatureInvalidError):
        verify_signature(
            private_key(kind).public_key(),
            b"\x30\x06\x02\x01\x01\x02\x01\x01",
            SignatureScheme(algorithm),
            message=b"x",
        )


def test_argument_errors() -> None:
    public = private_key("ed25519").public_key()
    scheme = SignatureScheme(SignatureAlgorithm.ED25519)
    with pytest.raises(SignatureInvalidError):
        verify_signature(public, b"sig", scheme)
    with pytest.raises(SignatureInvalidError):
        verify_signature(public, b"sig", scheme, message=b"a", digest=bytes(32))
    with pytest.raises(SignatureInvalidError):
        verify_signature(public, b"", scheme, message=b"a")
    with pytest.raises(SignatureInvalidError):
        verify_signature(public, b"sig", scheme, digest=b"short")
    with pytest.raises(UnsupportedAlgorithmError):
        SignatureScheme(SignatureAlgorithm.ECDSA, "md5")
    with pytest.raises(UnsupportedAlgorithmError):
        SignatureScheme(SignatureAlgorithm.ECDSA, encoding="hex")


@pytest.mark.parametrize(
    ("key", "algorithm", "hash_name"),
    [
        ("sig-sha256-ecdsa", SignatureAlgorithm.ECDSA, "sha256"),
        ("sig-sha256-rsa", SignatureAlgorithm.RSA_PKCS1V15, "sha256"),
        ("SIG-SHA384-ECDSA", SignatureAlgorithm.ECDSA, "sha384"),
        ("sig-sha256-rsa-pss", SignatureAlgorithm.RSA_PSS, "sha256"),
        ("sig-sha512-ed25519", SignatureAlgorithm.ED25519, "sha512"),
    ],
)
def test_aws_signature_keys(key: str, algorithm: SignatureAlgorithm, hash_name: str) -> None:
    scheme = scheme_from_aws_key(key)
    assert (scheme.algorithm, scheme.hash) == (algorithm, hash_name)


@pytest.mark.parametrize(
    "key", ["sig--", "sig-sha256", "signature", "sig-md5-rsa", "sig-sha256-dsa", "sig-sha1-rsa", 5]
)
def test_bad_aws_signature_keys(key: object) -> None:
    with pytest.raises(UnsupportedAlgorithmError):
        scheme_from_aws_key(key)  # type: ignore[arg-type]


def test_sha1_only_when_allowed() -> None:
    assert scheme_from_aws_key("sig-sha1-ecdsa", allow_sha1=True).hash == "sha1"
    with pytest.raises(UnsupportedAlgorithmError):
        scheme_from_names("SHA1", "ECDSA")
    with pytest.raises(UnsupportedAlgorithmError):
        scheme_from_names("SHA256", None)  # type: ignore[arg-type]


def test_base64() -> None:
    assert decode_base64("Zm9v") == b"foo"
    assert decode_base64(" Zm9\nv ") == b"foo"
    assert decode_base64(b"Zm8") == b"fo"
    for junk in ("Zg===x", "Z!==", "", "é", "====", 5):
        with pytest.raises(MalformedInputError):
            decode_base64(junk)  # type: ignore[arg-type]


def test_aws_style_detached_round_trip() -> None:
    data = b"\x00firmware" * 1000
    for kind in ("ecdsa-p256", "rsa-2048", "ed25519"):
        key = private_key(kind)
        signature = sign_detached(data, key)
        verify_detached(data, signature.value, key.public_key())
        verify_detached(data, base64.b64decode(signature.base64), key.public_key())
        with pytest.raises(SignatureInvalidError):
            verify_detached(data + b"x", signature.value, key.public_key())
        assert scheme_from_aws_key(signature.aws_key).algorithm == signature.scheme.algorithm


@pytest.mark.parametrize("kind", KEY_KINDS)
def test_key_loading_forms(kind: str) -> None:
    key = private_key(kind)
    public = key.public_key()
    expected = key_hash(public)
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    certificate = make_certificate("signer", key).public_bytes(serialization.Encoding.PEM)
    for material in (public_key_pem(public), der, private_key_pem(key), certificate):
        assert key_hash(load_public_key(material)) == expected
    assert key_hash(load_mcuboot_public_key(mcuboot_key_bytes(public))) == expected
    encrypted = private_key_pem(key, b"secret")
    assert key_hash(load_private_key(encrypted, password=b"secret").public_key()) == expected
    with pytest.raises(KeyFormatError):
        load_private_key(encrypted, password=b"wrong")
    assert describe_key(public) == kind


@pytest.mark.parametrize(
    "material",
    [b"", b"garbage", b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "text", bytes(91)],
)
def test_not_a_key(material: object) -> None:
    with pytest.raises(KeyFormatError):
        load_public_key(material)  # type: ignore[arg-type]
    with pytest.raises(KeyFormatError):
        load_private_key(material if isinstance(material, bytes) else b"")


def test_weak_or_odd_keys_are_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(KeyFormatError, match="too small"):
        load_public_key(public_key_pem(small.public_key()))
    k1 = ec.generate_private_key(ec.SECP256K1())
    with pytest.raises(KeyFormatError, match="curve"):
        load_public_key(public_key_pem(k1.public_key()))
    with pytest.raises(KeyFormatError):
        load_private_key(private_key_pem(k1))
    from cryptography.hazmat.primitives.asymmetric import x25519

    xkey = x25519.X25519PrivateKey.generate()
    with pytest.raises(KeyFormatError, match="unsupported"):
        load_public_key(
            xkey.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
    with pytest.raises(KeyFormatError, match="unsupported private"):
        load_private_key(
            xkey.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    with pytest.raises(KeyFormatError):
        load_mcuboot_public_key(b"nope")


def test_key_ring() -> None:
    a, b = private_key("ecdsa-p256", 1).public_key(), private_key("ed25519", 1).public_key()
    ring = KeyRing([a, TrustedKey(b, "release")])
    assert len(ring) == 2
    assert ring.by_hash(key_hash(b)).name == "release"
    assert ring.require_trusted(a).key_hash == key_hash(a)
    ring.revoke(key_hash(a))
    assert ring.is_revoked(a) and len(ring) == 1
    with pytest.raises(KeyRevokedError):
        ring.check_not_revoked(a)
    ring.check_not_revoked(b)
    with pytest.raises(KeyRevokedError):
        ring.by_hash(key_hash(a))
    with pytest.raises(UntrustedKeyError):
        ring.by_hash(bytes(32))
    with pytest.raises(UntrustedKeyError):
        ring.by_mcuboot_hash(bytes(32))
    for bad in ("zz", b"short"):
        with pytest.raises(KeyFormatError):
            ring.revoke(bad)
    with pytest.raises(OtaError):
        ring.add(object())  # type: ignore[arg-type]


def test_verify_any() -> None:
    key = private_key("ecdsa-p256", 3)
    other = private_key("ecdsa-p256", 4)
    signature = sign_detached(MESSAGE, key)
    digest = hashlib.sha256(MESSAGE).digest()
    trusted = verify_any(
        [TrustedKey(other.public_key()), TrustedKey(key.public_key(), "k")],
        signature.value,
        signature.scheme,
        digest=digest,
    )
    assert trusted.name == "k"
    with pytest.raises(SignatureInvalidError, match="none of 1"):
        verify_any([TrustedKey(other.public_key())], signature.value, signature.scheme, digest=digest)
    with pytest.raises(UntrustedKeyError):
        verify_any([], signature.value, signature.scheme, digest=digest)


def test_raw_signature_that_looks_like_der_falls_back_to_raw() -> None:
    from ota_verify.signatures import _ecdsa_der

    public = private_key("ecdsa-p256").public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    raw = b"\x30\x3e" + bytes(range(1, 63))  # 64 bytes that start like a DER sequence of 62 bytes
    r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    assert _ecdsa_der(raw, public, "auto") == utils.encode_dss_signature(r, s)
    with pytest.raises(SignatureInvalidError, match="not valid DER"):
        _ecdsa_der(raw, public, "der")
    with pytest.raises(SignatureInvalidError, match="not valid DER"):
        _ecdsa_der(raw + b"\x00", public, "auto")


def test_digest_values_must_be_bytes() -> None:
    from ota_verify.digests import FileChecker

    with pytest.raises(MalformedInputError):
        FileChecker(1, digests={"sha256": "00" * 32})  # type: ignore[dict-item]

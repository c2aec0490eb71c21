"""Keys, certificates and images shared by the ota_verify tests (generated once per test run)."""

from __future__ import annotations

import datetime
import functools

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ota_verify.keys import PrivateKey
from ota_verify.mcuboot import McubootVersion, SignOptions, sign_image
from ota_verify.tools import generate_private_key

KEY_KINDS = ("ecdsa-p256", "ecdsa-p384", "ed25519", "rsa-2048", "rsa-3072")
FIRMWARE = bytes(range(256)) * 3 + b"modular-ota test firmware"


@functools.cache
def private_key(kind: str, index: int = 0) -> PrivateKey:
    """A signing key of ``kind``; ``index`` gives distinct keys of the same kind."""
    return generate_private_key(kind)


def signed_image(kind: str = "ecdsa-p256", payload: bytes = FIRMWARE, **options: object) -> bytes:
    """A small MCUboot image signed with ``private_key(kind)``."""
    defaults: dict[str, object] = {
        "version": McubootVersion(1, 2, 3, 4),
        "header_size": 0x20,
        "pad_header": True,
        "slot_size": 0x4000,
    }
    defaults.update(options)
    return sign_image(payload, private_key(kind), SignOptions(**defaults))  # type: ignore[arg-type]


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


NOW = datetime.datetime(2026, 6, 1, tzinfo=datetime.UTC)


def make_certificate(
    subject: str,
    key: PrivateKey,
    *,
    issuer: tuple[str, PrivateKey] | None = None,
    ca: bool = False,
    code_signing: bool | None = True,
    digital_signature: bool = True,
    not_before: datetime.datetime = NOW - datetime.timedelta(days=30),
    not_after: datetime.datetime = NOW + datetime.timedelta(days=365),
    basic_constraints: bool = True,
) -> x509.Certificate:
    """A certificate for ``key``, self-signed unless ``issuer`` (name, key) is given."""
    issuer_name, issuer_key = issuer if issuer is not None else (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if basic_constraints:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    builder = builder.add_extension(
        x509.KeyUsage(
            digital_signature=digital_signature,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=ca,
            crl_sign=ca,
            encipher_only=False,
            decipher_only=False,
        ),
        critical=True,
    )
    if code_signing is not None and not ca:
        usage = ExtendedKeyUsageOID.CODE_SIGNING if code_signing else ExtendedKeyUsageOID.SERVER_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    algorithm = None if not isinstance(issuer_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) else hashes.SHA256()
    return builder.sign(issuer_key, algorithm)


def rsa_key(kind: str = "rsa-2048", index: int = 0) -> rsa.RSAPrivateKey:
    """``private_key`` narrowed to RSA (Device Update keys are RSA)."""
    key = private_key(kind, index)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key

"""Signing tools behind ``ota keygen``, ``ota sign`` and ``ota verify``: keys, detached AWS-style
signatures with their ``afr_ota`` file entry, and imgtool-compatible option parsing.

Detached signatures follow AWS code signing: ECDSA signs the file with SHA-256 (DER signature), RSA uses
PKCS#1 v1.5 with SHA-256. Ed25519, which AWS does not offer, signs the file's SHA-256 digest (the
MCUboot convention) so that it can be checked while streaming.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from typing import Any

import attrs
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from ota_core.errors import ConfigurationError
from ota_verify.keys import PrivateKey, PublicKey
from ota_verify.signatures import SignatureAlgorithm, SignatureScheme, verify_signature

__all__ = [
    "KEY_TYPES",
    "DetachedSignature",
    "afr_ota_file_entry",
    "generate_private_key",
    "imgtool_uuid",
    "private_key_pem",
    "public_key_pem",
    "scheme_for_key",
    "sign_detached",
    "verify_detached",
]

KEY_TYPES = ("ecdsa-p256", "ecdsa-p384", "ed25519", "rsa-2048", "rsa-3072")
"""The key types ``ota keygen -t`` accepts (imgtool's names)."""

_UUID_TEXT = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def generate_private_key(kind: str) -> PrivateKey:
    """Generate a new signing key of one of ``KEY_TYPES``."""
    if kind == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ecdsa-p384":
        return ec.generate_private_key(ec.SECP384R1())
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind in ("rsa-2048", "rsa-3072"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(kind[4:]))
    raise ConfigurationError(f"unknown key type {kind!r}; choose one of {', '.join(KEY_TYPES)}")


def private_key_pem(key: PrivateKey, password: bytes | None = None) -> bytes:
    """PKCS#8 PEM of ``key``, encrypted with ``password`` if given (imgtool reads both)."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def public_key_pem(key: PublicKey) -> bytes:
    """SubjectPublicKeyInfo PEM of ``key``."""
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def scheme_for_key(key: PublicKey | PrivateKey) -> tuple[SignatureScheme, str]:
    """The detached-signature scheme for a key, and its AWS job-document key (``sig-sha256-ecdsa``...)."""
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        return SignatureScheme(SignatureAlgorithm.ECDSA, "sha256", encoding="der"), "sig-sha256-ecdsa"
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        return SignatureScheme(SignatureAlgorithm.RSA_PKCS1V15, "sha256"), "sig-sha256-rsa"
    return SignatureScheme(SignatureAlgorithm.ED25519, "sha256"), "sig-sha256-ed25519"


@attrs.frozen
class DetachedSignature:
    """A detached signature over a file, with what a job document needs to carry it."""

    value: bytes
    scheme: SignatureScheme
    aws_key: str
    size: int
    sha256: bytes

    @property
    def base64(self) -> str:
        """The signature as standard base64 (the job-document spelling)."""
        return base64.b64encode(self.value).decode("ascii")


def sign_detached(data: bytes, key: PrivateKey) -> DetachedSignature:
    """Sign ``data`` the AWS code-signing way (see the module docstring for Ed25519)."""
    digest = hashlib.sha256(data).digest()
    scheme, aws_key = scheme_for_key(key)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        value = key.sign(data, ec.ECDSA(hashes.SHA256()))
    elif isinstance(key, rsa.RSAPrivateKey):
        value = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    else:
        value = key.sign(digest)
    return DetachedSignature(value, scheme, aws_key, len(data), digest)


def verify_detached(data: bytes, signature: bytes, key: PublicKey) -> None:
    """Verify a detached signature made by ``sign_detached`` (or AWS code signing); raise if invalid."""
    scheme, _ = scheme_for_key(key)
    verify_signature(key, signature, scheme, digest=hashlib.sha256(data).digest())


def afr_ota_file_entry(
    signature: DetachedSignature,
    *,
    filepath: str,
    certfile: str | None,
    fileid: int = 0,
    file_type: int | None = None,
) -> dict[str, Any]:
    """The ``afr_ota.files[]`` entry for a signed file (the streaming/URL fields are the job's business)."""
    entry: dict[str, Any] = {
        "filepath": filepath,
        "filesize": signature.size,
        "fileid": fileid,
        "certfile": certfile,
        signature.aws_key: signature.base64,
    }
    if file_type is not None:
        entry["fileType"] = file_type
    return entry


def imgtool_uuid(value: str, namespace: uuid.UUID | None) -> bytes:
    """Read a ``--vid``/``--cid`` value as imgtool does: a UUID, 32 hex digits, or a name hashed with UUIDv5."""
    text = value.strip()
    if _UUID_TEXT.match(text):
        return uuid.UUID(text).bytes
    if len(text) == 32 and all(c in "0123456789abcdefABCDEF" for c in text):
        return bytes.fromhex(text)
    if namespace is None:
        raise ConfigurationError(f"{value!r:.40} is not a UUID and there is no namespace to derive one")
    return uuid.uuid5(namespace, text).bytes

"""Public and private keys: loading from PEM/DER, key hashes, and the set of trusted keys.

A key's identity is the SHA-256 of its DER SubjectPublicKeyInfo, the same value MCUboot puts in its
KEYHASH TLV; trust and revocation are both expressed with it, so one list serves every anchor.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator
from typing import Union

import attrs
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ota_verify.errors import KeyFormatError, KeyRevokedError, UntrustedKeyError

__all__ = [
    "KeyRing",
    "PrivateKey",
    "PublicKey",
    "TrustedKey",
    "describe_key",
    "key_hash",
    "load_mcuboot_public_key",
    "load_private_key",
    "load_public_key",
    "mcuboot_key_bytes",
    "mcuboot_key_hash",
    "public_key_der",
]

_log = logging.getLogger(__name__)

PublicKey = Union[ec.EllipticCurvePublicKey, rsa.RSAPublicKey, ed25519.Ed25519PublicKey]  # noqa: UP007
"""The public key types a signature can be checked with."""

PrivateKey = Union[ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey]  # noqa: UP007
"""The private key types the signing tools use."""

_SUPPORTED_CURVES = (ec.SECP256R1, ec.SECP384R1)
_MIN_RSA_BITS = 2048


def _check_public(key: object, source: str) -> PublicKey:
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, _SUPPORTED_CURVES):
            raise KeyFormatError(f"{source}: unsupported elliptic curve {key.curve.name}")
        return key
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < _MIN_RSA_BITS:
            raise KeyFormatError(f"{source}: RSA key of {key.key_size} bits is too small")
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise KeyFormatError(f"{source}: unsupported key type {type(key).__name__}")


def load_public_key(data: bytes, *, source: str = "key") -> PublicKey:
    """Load a public key from PEM or DER: a public key, an X.509 certificate, or a private key's public half.

    A certificate is accepted here for convenience only; use ``ota_verify.certificates`` to check that
    it chains to a trusted root.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise KeyFormatError(f"{source}: key material must be bytes")
    raw = bytes(data)
    loaders = (
        serialization.load_pem_public_key,
        serialization.load_der_public_key,
        lambda b: x509.load_pem_x509_certificate(b).public_key(),
        lambda b: x509.load_der_x509_certificate(b).public_key(),
        lambda b: serialization.load_pem_private_key(b, password=None).public_key(),
        lambda b: serialization.load_der_private_key(b, password=None).public_key(),
    )
    for loader in loaders:
        try:
            key = loader(raw)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            continue
        return _check_public(key, source)
    raise KeyFormatError(f"{source}: not a PEM/DER public key, certificate or unencrypted private key")


def load_private_key(data: bytes, *, password: bytes | None = None, source: str = "key") -> PrivateKey:
    """Load a private signing key from PEM or DER (PKCS#8, traditional OpenSSL or SEC1)."""
    raw = bytes(data)
    for loader in (serialization.load_pem_private_key, serialization.load_der_private_key):
        try:
            key = loader(raw, password=password)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            continue
        if isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
            _check_public(key.public_key(), source)
            return key
        raise KeyFormatError(f"{source}: unsupported private key type {type(key).__name__}")
    raise KeyFormatError(f"{source}: not a PEM/DER private key (or the password is wrong)")


def public_key_der(key: PublicKey) -> bytes:
    """The DER SubjectPublicKeyInfo of ``key``."""
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_hash(key: PublicKey) -> bytes:
    """SHA-256 of the DER SubjectPublicKeyInfo: the key's identity (MCUboot KEYHASH)."""
    return hashlib.sha256(public_key_der(key)).digest()


def describe_key(key: PublicKey) -> str:
    """A short human name for a key type: ``ecdsa-p256``, ``rsa-3072``, ``ed25519``."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ecdsa-p256" if isinstance(key.curve, ec.SECP256R1) else "ecdsa-p384"
    if isinstance(key, rsa.RSAPublicKey):
        return f"rsa-{key.key_size}"
    return "ed25519"


@attrs.frozen
class TrustedKey:
    """One trusted public key with a name for logs and reports."""

    key: PublicKey
    name: str = ""

    @property
    def key_hash(self) -> bytes:
        """The key's identity (SHA-256 of its SubjectPublicKeyInfo)."""
        return key_hash(self.key)


class KeyRing:
    """The device's trusted signing keys plus a revocation list by key hash.

    Several keys may be trusted at once (key rotation); a revoked key is refused even if it is also
    listed as trusted, so revocation always wins.
    """

    def __init__(self, keys: Iterable[PublicKey | TrustedKey] = (), *, revoked: Iterable[bytes | str] = ()) -> None:
        self._keys: dict[bytes, TrustedKey] = {}
        self._revoked: set[bytes] = set()
        for item in keys:
            self.add(item)
        for digest in revoked:
            self.revoke(digest)

    def add(self, key: PublicKey | TrustedKey, name: str = "") -> None:
        """Trust another key."""
        trusted = key if isinstance(key, TrustedKey) else TrustedKey(_check_public(key, name or "key"), name)
        self._keys[trusted.key_hash] = trusted

    def revoke(self, digest: bytes | str) -> None:
        """Revoke a key by its hash (32 bytes, or 64 hex characters)."""
        if isinstance(digest, str):
            try:
                digest = bytes.fromhex(digest)
            except ValueError as error:
                raise KeyFormatError(f"revoked key hash is not hex: {digest!r:.80}") from error
        if len(digest) != 32:
            raise KeyFormatError(f"a key hash is 32 bytes, got {len(digest)}")
        self._revoked.add(bytes(digest))

    def is_revoked(self, key: PublicKey) -> bool:
        """Whether ``key`` is on the revocation list."""
        return key_hash(key) in self._revoked

    def check_not_revoked(self, key: PublicKey) -> None:
        """Raise ``KeyRevokedError`` if ``key`` is revoked."""
        digest = key_hash(key)
        if digest in self._revoked:
            raise KeyRevokedError(f"signing key {digest.hex()[:16]}... is revoked", details={"key": digest.hex()})

    def keys(self) -> list[TrustedKey]:
        """The trusted keys that are not revoked."""
        return [trusted for digest, trusted in self._keys.items() if digest not in self._revoked]

    def by_hash(self, digest: bytes) -> TrustedKey:
        """The trusted key with this hash; ``KeyRevokedError`` or ``UntrustedKeyError`` otherwise."""
        if digest in self._revoked:
            raise KeyRevokedError(f"signing key {digest.hex()[:16]}... is revoked", details={"key": digest.hex()})
        trusted = self._keys.get(bytes(digest))
        if trusted is None:
            raise UntrustedKeyError(f"signing key {digest.hex()[:16]}... is not trusted", details={"key": digest.hex()})
        return trusted

    def by_mcuboot_hash(self, digest: bytes, algorithm: str = "sha256") -> TrustedKey:
        """The trusted key whose MCUboot KEYHASH is ``digest`` (PKCS#1 for RSA); revocation applies."""
        for trusted in self._keys.values():
            if mcuboot_key_hash(trusted.key, algorithm) == digest:
                return self.by_hash(trusted.key_hash)
        raise UntrustedKeyError(
            f"image signing key {digest.hex()[:16]}... is not trusted", details={"key": digest.hex()}
        )

    def require_trusted(self, key: PublicKey) -> TrustedKey:
        """The trust entry for ``key`` itself (e.g. a key embedded in an image); refuses unknown keys."""
        return self.by_hash(key_hash(key))

    def __len__(self) -> int:
        return len(self.keys())

    def __iter__(self) -> Iterator[TrustedKey]:
        return iter(self.keys())


def mcuboot_key_bytes(key: PublicKey) -> bytes:
    """The key encoding MCUboot embeds and hashes: PKCS#1 for RSA, SubjectPublicKeyInfo otherwise."""
    if isinstance(key, rsa.RSAPublicKey):
        return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    return public_key_der(key)


def mcuboot_key_hash(key: PublicKey, algorithm: str = "sha256") -> bytes:
    """The value MCUboot's KEYHASH TLV carries for ``key`` (hashed with the image's hash algorithm)."""
    return hashlib.new(algorithm, mcuboot_key_bytes(key)).digest()


def load_mcuboot_public_key(data: bytes) -> PublicKey:
    """Load the key of a PUBKEY TLV: SubjectPublicKeyInfo DER, or PKCS#1 DER for RSA."""
    try:
        return _check_public(serialization.load_der_public_key(bytes(data)), "PUBKEY TLV")
    except (ValueError, TypeError, UnsupportedAlgorithm):
        pass
    try:
        return _check_public(serialization.load_der_public_key(_wrap_pkcs1(bytes(data))), "PUBKEY TLV")
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise KeyFormatError(f"PUBKEY TLV: not a DER public key ({error})") from error


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(encoded)]) + encoded


def _wrap_pkcs1(pkcs1: bytes) -> bytes:
    """Wrap a PKCS#1 RSAPublicKey DER into a SubjectPublicKeyInfo DER."""
    algorithm = bytes.fromhex("300d06092a864886f70d0101010500")
    bit_string = b"\x03" + _der_length(len(pkcs1) + 1) + b"\x00" + pkcs1
    body = algorithm + bit_string
    return b"\x30" + _der_length(len(body)) + body

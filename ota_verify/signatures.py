"""Signature schemes and their verification: ECDSA (DER or raw r||s), RSA PKCS#1 v1.5 and PSS, Ed25519.

A ``SignatureScheme`` says how a signature was made (algorithm, hash, padding, encoding). Signatures
are checked either over the message or over its precomputed digest (what streaming verification
has at the end of a download). AWS job documents name the scheme in the key, ``sig-<hash>-<alg>``;
``scheme_from_aws_key`` maps it.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
from collections.abc import Iterable

import attrs
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

from ota_verify.digests import normalize_hash_name
from ota_verify.errors import (
    MalformedInputError,
    SignatureInvalidError,
    UnsupportedAlgorithmError,
    UntrustedKeyError,
)
from ota_verify.keys import PublicKey, TrustedKey

__all__ = [
    "SignatureAlgorithm",
    "SignatureScheme",
    "decode_base64",
    "scheme_from_aws_key",
    "scheme_from_names",
    "verify_any",
    "verify_signature",
]


class SignatureAlgorithm(enum.StrEnum):
    """The signature algorithms the library verifies."""

    ECDSA = "ecdsa"
    RSA_PKCS1V15 = "rsa-pkcs1v15"
    RSA_PSS = "rsa-pss"
    ED25519 = "ed25519"


_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
    "sha1": hashes.SHA1,
}


@attrs.frozen
class SignatureScheme:
    """How a signature was made.

    ``hash`` is the hashlib name of the digest that was signed. ``encoding`` applies to ECDSA only:
    ``der`` (ASN.1, what AWS and MCUboot use), ``raw`` (r||s, fixed width) or ``auto`` (raw when the
    length is exactly two coordinates and it does not parse as DER). ``pss_salt_length`` applies to
    RSA-PSS; ``None`` accepts any salt length (the signer's choice is then not pinned).
    Ed25519 signs the message itself; with ``ed25519_signs_digest`` (MCUboot, detached signatures
    made by ``ota sign``) the message is the digest bytes.
    """

    algorithm: SignatureAlgorithm
    hash: str = "sha256"
    encoding: str = "auto"
    pss_salt_length: int | None = None
    ed25519_signs_digest: bool = True

    def __attrs_post_init__(self) -> None:
        if self.hash not in _HASHES:
            raise UnsupportedAlgorithmError(f"unsupported hash {self.hash!r}")
        if self.encoding not in {"auto", "der", "raw"}:
            raise UnsupportedAlgorithmError(f"unknown ECDSA signature encoding {self.encoding!r}")

    def hash_algorithm(self) -> hashes.HashAlgorithm:
        """The ``cryptography`` hash object for this scheme."""
        return _HASHES[self.hash]()


def scheme_from_names(hash_name: str, algorithm_name: str, *, allow_sha1: bool = False) -> SignatureScheme:
    """Build a scheme from the names a job document uses (``SHA256`` + ``ECDSA``, ``sha256`` + ``rsa``...).

    ``rsa`` means PKCS#1 v1.5 (what AWS code signing produces); ``rsa-pss`` and ``ed25519`` are also
    accepted. SHA-1 is refused unless ``allow_sha1``.
    """
    hash_ = normalize_hash_name(hash_name)
    if hash_ == "sha1" and not allow_sha1:
        raise UnsupportedAlgorithmError("SHA-1 signatures are refused (allow_sha1=True to accept them)")
    name = algorithm_name.strip().lower() if isinstance(algorithm_name, str) else ""
    mapping = {
        "ecdsa": SignatureAlgorithm.ECDSA,
        "rsa": SignatureAlgorithm.RSA_PKCS1V15,
        "rsa-pkcs1v15": SignatureAlgorithm.RSA_PKCS1V15,
        "rsa-pss": SignatureAlgorithm.RSA_PSS,
        "rsapss": SignatureAlgorithm.RSA_PSS,
        "ed25519": SignatureAlgorithm.ED25519,
    }
    if name not in mapping:
        raise UnsupportedAlgorithmError(f"unsupported signature algorithm {algorithm_name!r:.40}")
    return SignatureScheme(mapping[name], hash_)


def scheme_from_aws_key(key: str, *, allow_sha1: bool = False) -> SignatureScheme:
    """Map an AWS ``afr_ota`` signature key (``sig-sha256-ecdsa``, ``sig-sha256-rsa``...) to a scheme."""
    if not isinstance(key, str) or not key.lower().startswith("sig-"):
        raise UnsupportedAlgorithmError(f"not an AWS signature key: {key!r:.40}")
    parts = key[4:].split("-", 1)
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise UnsupportedAlgorithmError(f"AWS signature key names no hash and algorithm: {key!r:.40}")
    return scheme_from_names(parts[0], parts[1], allow_sha1=allow_sha1)


def decode_base64(text: str | bytes, *, what: str = "signature") -> bytes:
    """Strict base64 (standard alphabet, padding optional, whitespace ignored); junk raises a typed error."""
    if isinstance(text, str):
        try:
            raw = text.encode("ascii")
        except UnicodeEncodeError as error:
            raise MalformedInputError(f"{what}: base64 text contains non-ASCII characters") from error
    elif isinstance(text, bytes | bytearray):
        raw = bytes(text)
    else:
        raise MalformedInputError(f"{what}: expected base64 text, got {type(text).__name__}")
    compact = b"".join(raw.split())
    compact += b"=" * (-len(compact) % 4)
    try:
        decoded = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as error:
        raise MalformedInputError(f"{what}: invalid base64 ({error})") from error
    if not decoded:
        raise MalformedInputError(f"{what}: empty")
    return decoded


def _ecdsa_der(signature: bytes, key: ec.EllipticCurvePublicKey, encoding: str) -> bytes:
    width = (key.curve.key_size + 7) // 8
    is_raw_size = len(signature) == 2 * width
    if encoding != "raw":
        looks_der = len(signature) >= 8 and signature[0] == 0x30 and signature[1] == len(signature) - 2
        if encoding == "der" or looks_der or not is_raw_size:
            try:
                utils.decode_dss_signature(signature)
                return signature
            except ValueError as error:
                # In auto mode a raw r||s may happen to start like DER; fall back to raw for that size.
                if encoding == "der" or not is_raw_size:
                    raise SignatureInvalidError(f"ECDSA signature is not valid DER ({error})") from error
    if not is_raw_size:
        raise SignatureInvalidError(f"raw ECDSA signature must be {2 * width} bytes, got {len(signature)}")
    r = int.from_bytes(signature[:width], "big")
    s = int.from_bytes(signature[width:], "big")
    return utils.encode_dss_signature(r, s)


def verify_signature(
    key: PublicKey,
    signature: bytes,
    scheme: SignatureScheme,
    *,
    message: bytes | None = None,
    digest: bytes | None = None,
) -> None:
    """Verify ``signature`` over ``message`` or its precomputed ``digest``; raise ``SignatureInvalidError``.

    Exactly one of ``message`` and ``digest`` is given. A key of the wrong type for the scheme is an
    invalid signature, not a crash.
    """
    if (message is None) == (digest is None):
        raise SignatureInvalidError("verify_signature needs exactly one of message and digest")
    if not isinstance(signature, bytes | bytearray) or not signature:
        raise SignatureInvalidError("empty signature")
    signature = bytes(signature)
    hash_algorithm = scheme.hash_algorithm()
    if digest is not None and len(digest) != hash_algorithm.digest_size:
        raise SignatureInvalidError(f"{scheme.hash} digest must be {hash_algorithm.digest_size} bytes")
    prehashed = utils.Prehashed(hash_algorithm)
    data = message if message is not None else digest
    assert data is not None
    hash_for_call: hashes.HashAlgorithm | utils.Prehashed = hash_algorithm if message is not None else prehashed
    try:
        if scheme.algorithm is SignatureAlgorithm.ECDSA:
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise SignatureInvalidError(f"ECDSA signature but the key is {type(key).__name__}")
            key.verify(_ecdsa_der(signature, key, scheme.encoding), data, ec.ECDSA(hash_for_call))
        elif scheme.algorithm in (SignatureAlgorithm.RSA_PKCS1V15, SignatureAlgorithm.RSA_PSS):
            if not isinstance(key, rsa.RSAPublicKey):
                raise SignatureInvalidError(f"RSA signature but the key is {type(key).__name__}")
            pad: padding.AsymmetricPadding
            if scheme.algorithm is SignatureAlgorithm.RSA_PSS:
                salt = padding.PSS.AUTO if scheme.pss_salt_length is None else scheme.pss_salt_length
                pad = padding.PSS(mgf=padding.MGF1(scheme.hash_algorithm()), salt_length=salt)
            else:
                pad = padding.PKCS1v15()
            key.verify(signature, data, pad, hash_for_call)
        else:
            if not isinstance(key, ed25519.Ed25519PublicKey):
                raise SignatureInvalidError(f"Ed25519 signature but the key is {type(key).__name__}")
            if scheme.ed25519_signs_digest:
                signed = digest if digest is not None else hashlib.new(scheme.hash, data).digest()
            elif message is not None:
                signed = message
            else:
                raise UnsupportedAlgorithmError("Ed25519 over the whole message cannot be checked from a digest")
            key.verify(signature, signed)
    except InvalidSignature as error:
        raise SignatureInvalidError(f"{scheme.algorithm} signature does not verify") from error
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise SignatureInvalidError(f"{scheme.algorithm} signature cannot be checked ({error})") from error


def verify_any(
    keys: Iterable[TrustedKey],
    signature: bytes,
    scheme: SignatureScheme,
    *,
    message: bytes | None = None,
    digest: bytes | None = None,
) -> TrustedKey:
    """Verify under the first trusted key that accepts the signature and return it.

    Raises ``UntrustedKeyError`` when no key is configured and ``SignatureInvalidError`` when none fits.
    """
    tried = 0
    for trusted in keys:
        tried += 1
        try:
            verify_signature(trusted.key, signature, scheme, message=message, digest=digest)
        except SignatureInvalidError:
            continue
        return trusted
    if tried == 0:
        raise UntrustedKeyError("no trusted signing key is configured")
    raise SignatureInvalidError(f"{scheme.algorithm}/{scheme.hash} signature matches none of {tried} trusted keys")

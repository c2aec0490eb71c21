"""Device Update manifest signing as the service does it: JWS RS256 with an ``sjwk`` header.

The signing key's JWK (``n`` in standard base64, as ADU writes it) is itself a compact JWS signed by a
root key (``kid`` = root key id); the manifest JWS payload is ``{"sha256": base64(SHA-256(manifest))}``.
The stand-in generates its own test root and signing keys and keeps them in its state directory; devices
in tests trust that root instead of Microsoft's published ones.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import attrs
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

__all__ = ["SigningKeys", "b64url", "sign_compact", "sign_update_manifest"]

ROOT_KID = "modular-ota.test.R"
SIGNING_KID = "modular-ota.test.R.S"


def b64url(data: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def sign_compact(header: dict[str, Any], payload: bytes, key: rsa.RSAPrivateKey) -> str:
    """A compact JWS (RS256) of ``payload`` with ``header``."""
    signing_input = f"{b64url(_json(header))}.{b64url(payload)}".encode("ascii")
    signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input.decode('ascii')}.{b64url(signature)}"


def _int_bytes(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


@attrs.frozen
class SigningKeys:
    """The stand-in's root key and signing key, with their key ids."""

    root: rsa.RSAPrivateKey
    signing: rsa.RSAPrivateKey
    root_kid: str = ROOT_KID
    signing_kid: str = SIGNING_KID

    @classmethod
    def generate(cls, key_size: int = 3072) -> SigningKeys:
        """New RSA keys (ADU uses 3072 bits, e=65537)."""
        return cls(rsa.generate_private_key(65537, key_size), rsa.generate_private_key(65537, key_size))

    @classmethod
    def load_or_create(cls, directory: Path, key_size: int = 3072) -> SigningKeys:
        """Keys from ``directory`` (root.pem, signing.pem), generated there on first use."""
        directory.mkdir(parents=True, exist_ok=True)
        paths = directory / "root.pem", directory / "signing.pem"
        if all(p.exists() for p in paths):
            loaded = [serialization.load_pem_private_key(p.read_bytes(), password=None) for p in paths]
            if all(isinstance(k, rsa.RSAPrivateKey) for k in loaded):
                return cls(loaded[0], loaded[1])  # type: ignore[arg-type]
        keys = cls.generate(key_size)
        for path, key in zip(paths, (keys.root, keys.signing), strict=True):
            pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
            path.write_bytes(pem)
            path.chmod(0o600)
        return keys

    def root_jwk(self) -> dict[str, str]:
        """The root public key as a JWK (base64url ``n``, like Microsoft's root key list)."""
        numbers = self.root.public_key().public_numbers()
        return {"kty": "RSA", "kid": self.root_kid, "alg": "RS256",
                "n": b64url(_int_bytes(numbers.n)), "e": b64url(_int_bytes(numbers.e))}

    def root_public_pem(self) -> bytes:
        """The root public key in PEM, for devices that trust this stand-in."""
        return self.root.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)

    def sjwk(self) -> str:
        """The signing key's JWK (standard base64 ``n``, unpadded), signed by the root key."""
        numbers = self.signing.public_key().public_numbers()
        jwk = {"kty": "RSA",
               "n": base64.b64encode(_int_bytes(numbers.n)).decode().rstrip("="),
               "e": base64.b64encode(_int_bytes(numbers.e)).decode().rstrip("="),
               "alg": "RS256", "kid": self.signing_kid}
        return sign_compact({"alg": "RS256", "kid": self.root_kid}, _json(jwk), self.root)


def sign_update_manifest(manifest: str, keys: SigningKeys) -> str:
    """The ``updateManifestSignature`` of a manifest string."""
    digest = base64.b64encode(hashlib.sha256(manifest.encode("utf-8")).digest()).decode("ascii")
    return sign_compact({"alg": "RS256", "sjwk": keys.sjwk()}, _json({"sha256": digest}), keys.signing)

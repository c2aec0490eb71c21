"""Azure Device Update: the update manifest's JWS signature chain and the file hashes it lists.

The service sends ``updateManifest`` (a JSON document as a string) and ``updateManifestSignature``, a
compact JWS (RS256) whose header carries ``sjwk``: the signing key as a JWK, itself wrapped in a
compact JWS signed by a root key named by ``kid``. Verification, in order: the root key signs the
signing key; the signing key signs the payload; the payload's ``sha256`` equals the base64 SHA-256 of
the manifest string exactly as received. Generic JOSE libraries refuse these tokens (oversized
unregistered header, JWK ``n`` in standard base64), so the check is written here on ``cryptography``.

Root keys default to Microsoft's published production roots; tests add their own roots.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ota_verify.errors import KeyRevokedError, ManifestError, SignatureInvalidError, UntrustedKeyError

__all__ = [
    "MAX_MANIFEST_BYTES",
    "MICROSOFT_ADU_ROOT_KEYS",
    "AduFile",
    "AduManifest",
    "AduManifestVerifier",
    "parse_adu_manifest",
    "rsa_key_from_jwk_modulus",
    "sign_adu_manifest",
]

_log = logging.getLogger(__name__)

MAX_MANIFEST_BYTES = 512 * 1024
_MAX_SIGNATURE_CHARS = 64 * 1024
_MIN_RSA_BITS = 2048

# Microsoft's production Device Update root keys (RSA-3072, e = 65537), modulus in base64url, as published
# in the Device Update agent's root key list.
_MICROSOFT_ROOT_MODULI = {
    "ADU.200702.R": (
        "ANVCLq8RVKNQZYeiTVu6GvupMt_pmV8FRcivvTUdiegnJ1ijqO7FxR5P95KmEgZ9PX2wB_Ysf95tKvW8SbwV7_CByz-ITycdiHEoYAi2"
        "GdLSOdAFHzx2hnG7WVi8sYh7q1YovzFzRDIQ_T3Tllz_Tlyza_-LhJuLgLhJ0H361kBYdk3Acid1y5ovm7SfDyXxHMUbC1owfS-476cm"
        "WFOv1R1VAVEN6RuiDz_X6R0gQabmFAqu_vIcKtbkBHv2FH7sD5eD-lj6gTYhuaMr-tlhCxqU98G-f0AUSsn6NX_vZnAAsf3b12ENO1h0"
        "Z5SJdXaWfJGH0o4Rl-57h2yaL0XYZT9ScJgqy8gEY_XJR89w9O1kp3SlI4-27fcc07AcZFcSWqmBhB-g51AZlrSCsaxI4-EygstAH6zE"
        "WbwQNFGC-SiNqB6b9XlFdbLcmhFDCL5hzJrEy3c2_4PdqHFPUY4Oe036eZiNvvyCfkBIqRIBqNl-86Ub8fuQdz5AhxjJq9n3eQ"
    ),
    "ADU.200703.R": (
        "ALKjsnQW-rsg-VJ25ic-gEHG_s8w-ciW9VkKqoHnUYOKxPUXOi8q5lfUcc6KPe-aVXY-meLCrkzuLbh49aJOKPKcTjllvOzkDeXjOKhZ"
        "qwikG7T0oFKjOLNGIRPMPGgG3v4AppJu3kxHENYcnCT1zXDh9Wp8aBMd4cX2qE8hn4Z8RMWKmRzF0wabWnGdCRzDZDFqxReVHV0q8VXH"
        "ZtTo9dmpW4yibGJgBTfXMrBzy_dLNickIYw4CrgY_vUVYDWLNe8eD4imE417fe-z57DJphxwe8zyKYuH972dtohvrHP_cvLvSCeWcoYG"
        "olzjfc6wnuXC2U7E8394B0tliEUMEeWWVjSILRYOWULS99ntHe3JN3dEfuOENp9YE-9v5MNE1HcGis9byIAcophlCzXcc8hp0F7oJUOe"
        "9tirBa9RKSNVQFgQ6rjizV15zOzftFuYx_rj0mwmzi4sVuDPje79kxIvAEmNHII4VqZdeURKGvPcFhCzwS0nEf4bmAXko2AxmQ"
    ),
}


def _b64_any(text: str, what: str) -> bytes:
    """Decode base64 or base64url, padded or not; anything else is a ``ManifestError``."""
    if not isinstance(text, str) or not text:
        raise ManifestError(f"{what}: expected non-empty base64 text")
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError as error:
        raise ManifestError(f"{what}: non-ASCII characters in base64") from error
    raw = raw.replace(b"-", b"+").replace(b"_", b"/").rstrip(b"=")
    raw += b"=" * (-len(raw) % 4)
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ManifestError(f"{what}: invalid base64 ({error})") from error


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def rsa_key_from_jwk_modulus(n: str, e: str = "AQAB") -> rsa.RSAPublicKey:
    """Build an RSA public key from a JWK's ``n`` and ``e`` (base64 or base64url)."""
    modulus = int.from_bytes(_b64_any(n, "JWK n"), "big")
    exponent = int.from_bytes(_b64_any(e, "JWK e"), "big")
    if modulus.bit_length() < _MIN_RSA_BITS or exponent < 3 or exponent % 2 == 0:
        raise ManifestError(f"JWK is not an acceptable RSA key ({modulus.bit_length()} bits, e={exponent})")
    try:
        return rsa.RSAPublicNumbers(exponent, modulus).public_key()
    except ValueError as error:
        raise ManifestError(f"JWK is not a valid RSA key ({error})") from error


MICROSOFT_ADU_ROOT_KEYS: Mapping[str, rsa.RSAPublicKey] = {
    kid: rsa_key_from_jwk_modulus(n) for kid, n in _MICROSOFT_ROOT_MODULI.items()
}
"""The production root keys (``ADU.200702.R``, ``ADU.200703.R``) every Device Update manifest chains to."""


def _json_object(raw: bytes | str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise ManifestError(f"{what} is not JSON ({error})") from error
    if not isinstance(value, dict):
        raise ManifestError(f"{what} is not a JSON object")
    return value


def _split_compact(token: str, what: str) -> tuple[str, str, str]:
    if not isinstance(token, str) or not token or len(token) > _MAX_SIGNATURE_CHARS:
        raise ManifestError(f"{what}: not a compact JWS (empty, not text or too long)")
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        raise ManifestError(f"{what}: a compact JWS has three non-empty dot-separated parts, got {len(parts)}")
    return parts[0], parts[1], parts[2]


def _verify_rs256(key: rsa.RSAPublicKey, signing_input: str, signature: bytes, what: str) -> None:
    try:
        key.verify(signature, signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature as error:
        raise SignatureInvalidError(f"{what}: RS256 signature does not verify") from error
    except (ValueError, UnicodeEncodeError) as error:
        raise SignatureInvalidError(f"{what}: RS256 signature cannot be checked ({error})") from error


@attrs.frozen
class AduFile:
    """One file of a Device Update manifest: id, name, exact size and SHA-256."""

    file_id: str
    name: str
    size: int
    sha256: bytes


@attrs.frozen
class AduManifest:
    """A parsed (and, when returned by ``AduManifestVerifier``, verified) update manifest."""

    raw: str
    provider: str
    name: str
    version: str
    compatibility: tuple[Mapping[str, str], ...]
    files: Mapping[str, AduFile]
    signing_key_id: str = ""
    root_key_id: str = ""

    def file_by_name(self, name: str) -> AduFile | None:
        """The manifest entry whose file name is ``name``, if any."""
        for entry in self.files.values():
            if entry.name == name:
                return entry
        return None


def parse_adu_manifest(manifest: str) -> AduManifest:
    """Parse an update manifest string (versions 4 and 5); signatures are not checked here."""
    if not isinstance(manifest, str):
        raise ManifestError("update manifest must be a string")
    if len(manifest.encode("utf-8", "surrogatepass")) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"update manifest is larger than {MAX_MANIFEST_BYTES} bytes")
    data = _json_object(manifest, "update manifest")
    update_id = data.get("updateId")
    if not isinstance(update_id, dict) or not all(
        isinstance(update_id.get(k), str) for k in ("provider", "name", "version")
    ):
        raise ManifestError("update manifest has no updateId {provider, name, version}")
    compatibility_raw = data.get("compatibility", [])
    if not isinstance(compatibility_raw, list) or not all(
        isinstance(c, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in c.items())
        for c in compatibility_raw
    ):
        raise ManifestError("update manifest compatibility is not a list of string maps")
    files_raw = data.get("files", {})
    if not isinstance(files_raw, dict):
        raise ManifestError("update manifest files is not an object keyed by file id")
    files: dict[str, AduFile] = {}
    for file_id, entry in files_raw.items():
        if not isinstance(entry, dict):
            raise ManifestError(f"manifest file {file_id!r:.40} is not an object")
        name = entry.get("fileName", entry.get("filename"))
        size = entry.get("sizeInBytes")
        hashes_ = entry.get("hashes")
        if not isinstance(name, str) or not name:
            raise ManifestError(f"manifest file {file_id!r:.40} has no fileName")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ManifestError(f"manifest file {file_id!r:.40} has no valid sizeInBytes")
        if not isinstance(hashes_, dict) or not isinstance(hashes_.get("sha256"), str):
            raise ManifestError(f"manifest file {file_id!r:.40} has no sha256 hash")
        digest = _b64_any(hashes_["sha256"], f"sha256 of {file_id!r:.40}")
        if len(digest) != 32:
            raise ManifestError(f"sha256 of {file_id!r:.40} is {len(digest)} bytes, expected 32")
        files[file_id] = AduFile(file_id, name, size, digest)
    return AduManifest(
        raw=manifest,
        provider=update_id["provider"],
        name=update_id["name"],
        version=update_id["version"],
        compatibility=tuple(dict(c) for c in compatibility_raw),
        files=files,
    )


class AduManifestVerifier:
    """Checks ``updateManifestSignature`` against root keys; returns the verified, parsed manifest.

    ``root_keys`` maps root ``kid`` to RSA key (default: Microsoft's production roots); ``extra_roots``
    adds more (test roots). ``disabled_keys`` lists root or signing key ids that must be refused (the
    disabled list of a root key package).
    """

    def __init__(
        self,
        root_keys: Mapping[str, rsa.RSAPublicKey] | None = None,
        *,
        extra_roots: Mapping[str, rsa.RSAPublicKey] | None = None,
        disabled_keys: Iterable[str] = (),
    ) -> None:
        self._roots: dict[str, rsa.RSAPublicKey] = dict(MICROSOFT_ADU_ROOT_KEYS if root_keys is None else root_keys)
        self._roots.update(extra_roots or {})
        self._disabled = set(disabled_keys)

    def verify(self, manifest: str, signature: str) -> AduManifest:
        """Verify root -> signing key -> payload -> manifest hash; raise a typed error if any fails."""
        if not isinstance(manifest, str):
            raise ManifestError("update manifest must be a string")
        header_b64, payload_b64, signature_b64 = _split_compact(signature, "updateManifestSignature")
        header = _json_object(_b64_any(header_b64, "JWS header"), "JWS header")
        if header.get("alg") != "RS256":
            raise ManifestError(f"JWS alg must be RS256, got {header.get('alg')!r:.20}")
        sjwk = header.get("sjwk")
        if not isinstance(sjwk, str):
            raise ManifestError("JWS header carries no sjwk (signed signing key)")
        signing_key, signing_kid, root_kid = self._signing_key(sjwk)
        _verify_rs256(
            signing_key,
            f"{header_b64}.{payload_b64}",
            _b64_any(signature_b64, "JWS signature"),
            "update manifest signature",
        )
        payload = _json_object(_b64_any(payload_b64, "JWS payload"), "JWS payload")
        expected = payload.get("sha256")
        if not isinstance(expected, str):
            raise ManifestError("JWS payload has no sha256")
        try:
            computed = hashlib.sha256(manifest.encode("utf-8")).digest()
        except UnicodeEncodeError as error:
            raise ManifestError("update manifest is not valid Unicode text") from error
        if not hmac.compare_digest(_b64_any(expected, "JWS payload sha256"), computed):
            raise SignatureInvalidError(
                "update manifest does not match its signature (edited after signing)",
                details={"signed": expected, "computed": base64.b64encode(computed).decode()},
            )
        parsed = parse_adu_manifest(manifest)
        _log.debug(
            "ADU manifest %s/%s %s verified (signing key %s, root %s)",
            parsed.provider,
            parsed.name,
            parsed.version,
            signing_kid,
            root_kid,
        )
        return attrs.evolve(parsed, signing_key_id=signing_kid, root_key_id=root_kid)

    def _signing_key(self, sjwk: str) -> tuple[rsa.RSAPublicKey, str, str]:
        header_b64, jwk_b64, signature_b64 = _split_compact(sjwk, "sjwk")
        header = _json_object(_b64_any(header_b64, "sjwk header"), "sjwk header")
        if header.get("alg") != "RS256":
            raise ManifestError(f"sjwk alg must be RS256, got {header.get('alg')!r:.20}")
        root_kid = header.get("kid")
        if not isinstance(root_kid, str):
            raise ManifestError("sjwk header names no root key (kid)")
        if root_kid in self._disabled:
            raise KeyRevokedError(f"root key {root_kid!r:.40} is disabled")
        root = self._roots.get(root_kid)
        if root is None:
            raise UntrustedKeyError(f"root key {root_kid!r:.40} is not trusted", details={"kid": root_kid[:64]})
        _verify_rs256(
            root,
            f"{header_b64}.{jwk_b64}",
            _b64_any(signature_b64, "sjwk signature"),
            f"signing key (signed by root {root_kid})",
        )
        jwk = _json_object(_b64_any(jwk_b64, "sjwk payload"), "signing JWK")
        if jwk.get("kty") != "RSA" or not isinstance(jwk.get("n"), str) or not isinstance(jwk.get("e"), str):
            raise ManifestError("signing JWK is not an RSA key with n and e")
        signing_kid = jwk.get("kid", "")
        if not isinstance(signing_kid, str):
            raise ManifestError("signing JWK kid is not text")
        if signing_kid in self._disabled:
            raise KeyRevokedError(f"signing key {signing_kid!r:.40} is disabled")
        return rsa_key_from_jwk_modulus(jwk["n"], jwk["e"]), signing_kid, root_kid


def sign_adu_manifest(
    manifest: str,
    *,
    root_key: rsa.RSAPrivateKey,
    root_kid: str,
    signing_key: rsa.RSAPrivateKey,
    signing_kid: str,
) -> str:
    """Make an ``updateManifestSignature`` the way the service does, with your own (test) keys."""

    def rs256(key: rsa.RSAPrivateKey, data: str) -> str:
        return _b64url_encode(key.sign(data.encode("ascii"), padding.PKCS1v15(), hashes.SHA256()))

    def segment(value: Mapping[str, Any]) -> str:
        return _b64url_encode(json.dumps(value, separators=(",", ":")).encode())

    numbers = signing_key.public_key().public_numbers()
    jwk = {
        "kty": "RSA",
        "n": base64.b64encode(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")).decode().rstrip("="),
        "e": base64.b64encode(numbers.e.to_bytes(3, "big")).decode().rstrip("="),
        "alg": "RS256",
        "kid": signing_kid,
    }
    inner = f"{segment({'alg': 'RS256', 'kid': root_kid})}.{segment(jwk)}"
    sjwk = f"{inner}.{rs256(root_key, inner)}"
    digest = base64.b64encode(hashlib.sha256(manifest.encode("utf-8")).digest()).decode()
    outer = f"{segment({'alg': 'RS256', 'sjwk': sjwk})}.{segment({'sha256': digest})}"
    return f"{outer}.{rs256(signing_key, outer)}"

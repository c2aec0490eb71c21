"""Device Update manifest signatures: the public vectors, our own test roots, and malformed tokens."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from ota_core.errors import OtaError
from ota_verify.adu import (
    MICROSOFT_ADU_ROOT_KEYS,
    AduManifestVerifier,
    parse_adu_manifest,
    rsa_key_from_jwk_modulus,
    sign_adu_manifest,
)
from ota_verify.errors import KeyRevokedError, ManifestError, SignatureInvalidError, UntrustedKeyError
from tests.verify_fixtures import rsa_key

DATA = Path(__file__).parent.parent / "data" / "verify"


def load(name: str) -> dict[str, str]:
    document = json.loads((DATA / name).read_text())
    return document.get("service", document)  # type: ignore[no-any-return]


MANIFEST = json.dumps(
    {
        "manifestVersion": "5",
        "updateId": {"provider": "Contoso", "name": "Toaster", "version": "1.2"},
        "compatibility": [{"deviceManufacturer": "Contoso", "deviceModel": "Toaster"}],
        "instructions": {"steps": [{"handler": "microsoft/swupdate:1", "files": ["f1"]}]},
        "files": {
            "f1": {
                "fileName": "toaster.bin",
                "sizeInBytes": 11,
                "hashes": {"sha256": base64.b64encode(__import__("hashlib").sha256(b"hello world").digest()).decode()},
            }
        },
    }
)


def test_public_vector_verifies_with_microsoft_roots() -> None:
    service = load("adu_valid_service.json")
    manifest = AduManifestVerifier().verify(service["updateManifest"], service["updateManifestSignature"])
    assert (manifest.provider, manifest.name, manifest.version) == ("Contoso", "Virtual-Vacuum", "20.0")
    assert manifest.root_key_id == "ADU.200702.R"
    assert manifest.signing_key_id == "ADU.210609.R.S"
    assert manifest.files["f483750ebb885d32c"].size == 136
    assert set(MICROSOFT_ADU_ROOT_KEYS) == {"ADU.200702.R", "ADU.200703.R"}
    assert all(key.key_size == 3072 for key in MICROSOFT_ADU_ROOT_KEYS.values())


def test_manifest_edited_after_signing_is_rejected() -> None:
    service = load("adu_edited_request.json")
    with pytest.raises(SignatureInvalidError, match="edited after signing"):
        AduManifestVerifier().verify(service["updateManifest"], service["updateManifestSignature"])


def test_valid_signature_over_a_changed_manifest_is_rejected() -> None:
    service = load("adu_valid_service.json")
    with pytest.raises(SignatureInvalidError):
        AduManifestVerifier().verify(service["updateManifest"] + " ", service["updateManifestSignature"])


def test_public_vector_refused_when_root_is_not_trusted_or_disabled() -> None:
    service = load("adu_valid_service.json")
    with pytest.raises(UntrustedKeyError):
        AduManifestVerifier({}).verify(service["updateManifest"], service["updateManifestSignature"])
    with pytest.raises(KeyRevokedError):
        AduManifestVerifier(disabled_keys=["ADU.210609.R.S"]).verify(
            service["updateManifest"], service["updateManifestSignature"]
        )
    with pytest.raises(KeyRevokedError):
        AduManifestVerifier(disabled_keys=["ADU.200702.R"]).verify(
            service["updateManifest"], service["updateManifestSignature"]
        )


def test_own_test_root_round_trip() -> None:
    root, signer = rsa_key("rsa-3072"), rsa_key("rsa-2048")
    token = sign_adu_manifest(MANIFEST, root_key=root, root_kid="TEST.R", signing_key=signer, signing_kid="TEST.S")
    verifier = AduManifestVerifier(extra_roots={"TEST.R": root.public_key()})
    manifest = verifier.verify(MANIFEST, token)
    assert manifest.file_by_name("toaster.bin") is not None
    assert manifest.file_by_name("other.bin") is None
    assert manifest.compatibility == ({"deviceManufacturer": "Contoso", "deviceModel": "Toaster"},)
    with pytest.raises(UntrustedKeyError):
        AduManifestVerifier().verify(MANIFEST, token)
    # A signing key signed by a root we do not trust under that kid:
    other = rsa_key("rsa-2048", 7)
    forged = sign_adu_manifest(MANIFEST, root_key=other, root_kid="TEST.R", signing_key=signer, signing_kid="TEST.S")
    with pytest.raises(SignatureInvalidError, match="signed by root"):
        verifier.verify(MANIFEST, forged)
    # The outer signature made by a key other than the one in sjwk:
    header, payload, _ = token.split(".")
    _, _, wrong = sign_adu_manifest(
        MANIFEST, root_key=root, root_kid="TEST.R", signing_key=other, signing_kid="X"
    ).split(".")
    with pytest.raises(SignatureInvalidError, match="update manifest signature"):
        verifier.verify(MANIFEST, f"{header}.{payload}.{wrong}")


def _segment(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "token",
    [
        "",
        "a.b",
        "a.b.c.d",
        "..",
        "!!!.e30.e30",
        f"{_segment([1])}.e30.e30",
        f"{_segment({'alg': 'none'})}.e30.e30",
        f"{_segment({'alg': 'RS256'})}.e30.e30",
        f"{_segment({'alg': 'RS256', 'sjwk': 'x.y'})}.e30.e30",
        f"{_segment({'alg': 'RS256', 'sjwk': _segment({'alg': 'HS256'}) + '.e30.e30'})}.e30.e30",
        f"{_segment({'alg': 'RS256', 'sjwk': _segment({'alg': 'RS256'}) + '.e30.e30'})}.e30.e30",
        "é.b.c",
        "x" * 70000,
    ],
)
def test_malformed_tokens_are_typed_errors(token: str) -> None:
    with pytest.raises(OtaError):
        AduManifestVerifier().verify(MANIFEST, token)


def test_malformed_signing_jwk() -> None:
    root = rsa_key("rsa-3072")
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    def signed_sjwk(jwk: object) -> str:
        inner = f"{_segment({'alg': 'RS256', 'kid': 'R'})}.{_segment(jwk)}"
        signature = root.sign(inner.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{inner}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"

    verifier = AduManifestVerifier({"R": root.public_key()})
    for jwk in (
        {"kty": "EC"},
        {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
        {"kty": "RSA", "n": 5, "e": "AQAB"},
        {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": 3},
    ):
        token = f"{_segment({'alg': 'RS256', 'sjwk': signed_sjwk(jwk)})}.e30.e30"
        with pytest.raises(ManifestError):
            verifier.verify(MANIFEST, token)


def test_payload_without_hash_and_non_string_manifest() -> None:
    root, signer = rsa_key("rsa-3072"), rsa_key("rsa-2048")
    token = sign_adu_manifest(MANIFEST, root_key=root, root_kid="R", signing_key=signer, signing_kid="S")
    verifier = AduManifestVerifier({"R": root.public_key()})
    with pytest.raises(ManifestError):
        verifier.verify(b"bytes", token)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "document",
    [
        "not json",
        "[]",
        "{}",
        '{"updateId": {"provider": "a", "name": "b"}}',
        '{"updateId": {"provider": "a", "name": "b", "version": "1"}, "compatibility": {}}',
        '{"updateId": {"provider": "a", "name": "b", "version": "1"}, "files": []}',
        '{"updateId": {"provider": "a", "name": "b", "version": "1"}, "files": {"f": 1}}',
        '{"updateId": {"provider": "a", "name": "b", "version": "1"}, "files": {"f": {"sizeInBytes": 1}}}',
        '{"updateId": {"provider": "a", "name": "b", "version": "1"}, "files": {"f": {"fileName": "x"}}}',
        '{"updateId": {"provider": "a", "name": "b", "version": "1"}, '
        '"files": {"f": {"fileName": "x", "sizeInBytes": 1}}}',
        '{"updateId": {"provider": "a", "name": "b", "version": "1"}, '
        '"files": {"f": {"fileName": "x", "sizeInBytes": 1, "hashes": {"sha256": "AAAA"}}}}',
        '{"updateId": {"provider": "a", "name": "b", "version": "1"}, '
        '"files": {"f": {"fileName": "x", "sizeInBytes": 1, "hashes": {"sha256": "%%%"}}}}',
    ],
)
def test_bad_manifests(document: str) -> None:
    with pytest.raises(ManifestError):
        parse_adu_manifest(document)


def test_manifest_size_limit_and_jwk_modulus() -> None:
    with pytest.raises(ManifestError, match="larger than"):
        parse_adu_manifest(" " * (600 * 1024))
    with pytest.raises(ManifestError):
        parse_adu_manifest(5)  # type: ignore[arg-type]
    with pytest.raises(ManifestError):
        rsa_key_from_jwk_modulus("AQAB", "AA")
    with pytest.raises(ManifestError):
        rsa_key_from_jwk_modulus("")


def test_manifest_with_lone_surrogate_is_a_typed_error() -> None:
    root, signer = rsa_key("rsa-3072"), rsa_key("rsa-2048")
    token = sign_adu_manifest(MANIFEST, root_key=root, root_kid="R", signing_key=signer, signing_kid="S")
    with pytest.raises(ManifestError):
        AduManifestVerifier({"R": root.public_key()}).verify(MANIFEST + "\ud800", token)

"""Code-signing certificates: chains to a trusted root, key usage, expiry policies and revocation."""

from __future__ import annotations

import datetime

import pytest
from cryptography.hazmat.primitives import serialization

from ota_core.clock import ManualClock
from ota_verify.certificates import CertificateVerifier, ExpiryPolicy, load_certificates
from ota_verify.errors import CertificateError, KeyFormatError, KeyRevokedError
from ota_verify.keys import KeyRing, key_hash
from tests.verify_fixtures import NOW, make_certificate, private_key

ROOT_KEY = private_key("ecdsa-p384", 10)
MID_KEY = private_key("ecdsa-p256", 11)
LEAF_KEY = private_key("ecdsa-p256", 12)
ROOT = make_certificate("Root", ROOT_KEY, ca=True)
MID = make_certificate("Intermediate", MID_KEY, issuer=("Root", ROOT_KEY), ca=True)
LEAF = make_certificate("Signer", LEAF_KEY, issuer=("Intermediate", MID_KEY))


def verifier(**kwargs: object) -> CertificateVerifier:
    options: dict[str, object] = {"intermediates": [MID], "clock": ManualClock(NOW)}
    options.update(kwargs)
    return CertificateVerifier([ROOT], **options)  # type: ignore[arg-type]


def pem(*certificates: object) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)  # type: ignore[attr-defined]


def test_chain_to_root_returns_the_signing_key() -> None:
    assert key_hash(verifier().verify(LEAF)) == key_hash(LEAF_KEY.public_key())
    # Leaf + intermediate as one PEM bundle, no configured intermediates:
    assert key_hash(verifier(intermediates=[]).verify(pem(LEAF, MID))) == key_hash(LEAF_KEY.public_key())
    der = LEAF.public_bytes(serialization.Encoding.DER)
    assert key_hash(verifier().verify(der)) == key_hash(LEAF_KEY.public_key())
    direct = make_certificate("Direct", private_key("rsa-2048", 13), issuer=("Root", ROOT_KEY))
    verifier(intermediates=[]).verify(direct)


def test_missing_intermediate_or_foreign_root() -> None:
    with pytest.raises(CertificateError, match="does not chain"):
        verifier(intermediates=[]).verify(LEAF)
    other_root_key = private_key("ecdsa-p256", 14)
    other = make_certificate("Root", other_root_key, ca=True)
    with pytest.raises(CertificateError):
        CertificateVerifier([other], intermediates=[MID], clock=ManualClock(NOW)).verify(LEAF)
    with pytest.raises(KeyFormatError):
        CertificateVerifier([])
    from ota_core.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="expiry policy"):
        CertificateVerifier([ROOT], expiry="sometimes")  # type: ignore[arg-type]


def test_key_usage_rules() -> None:
    no_sign = make_certificate("NoSign", LEAF_KEY, issuer=("Intermediate", MID_KEY), digital_signature=False)
    with pytest.raises(CertificateError, match="key usage"):
        verifier().verify(no_sign)
    tls = make_certificate("Tls", LEAF_KEY, issuer=("Intermediate", MID_KEY), code_signing=False)
    with pytest.raises(CertificateError, match="extended key usage"):
        verifier().verify(tls)
    no_eku = make_certificate("NoEku", LEAF_KEY, issuer=("Intermediate", MID_KEY), code_signing=None)
    verifier().verify(no_eku)
    with pytest.raises(CertificateError, match="no code-signing"):
        verifier(require_code_signing_eku=True).verify(no_eku)


def test_issuer_must_be_a_ca() -> None:
    fake_mid = make_certificate("Intermediate", MID_KEY, issuer=("Root", ROOT_KEY), ca=False, code_signing=None)
    with pytest.raises(CertificateError, match="not a CA"):
        verifier(intermediates=[fake_mid]).verify(LEAF)
    no_constraints = make_certificate("Intermediate", MID_KEY, issuer=("Root", ROOT_KEY), basic_constraints=False)
    with pytest.raises(CertificateError, match="not a CA"):
        verifier(intermediates=[no_constraints]).verify(LEAF)


def test_expiry_policies() -> None:
    expired = make_certificate(
        "Old", LEAF_KEY, issuer=("Intermediate", MID_KEY), not_after=NOW - datetime.timedelta(days=1)
    )
    future = make_certificate(
        "New", LEAF_KEY, issuer=("Intermediate", MID_KEY), not_before=NOW + datetime.timedelta(days=1)
    )
    for policy in (ExpiryPolicy.ENFORCE, ExpiryPolicy.WHEN_CLOCK_PLAUSIBLE):
        with pytest.raises(CertificateError, match="expired"):
            verifier(expiry=policy).verify(expired)
        with pytest.raises(CertificateError, match="not valid before"):
            verifier(expiry=policy).verify(future)
    verifier(expiry=ExpiryPolicy.IGNORE).verify(expired)
    unset_clock = ManualClock(datetime.datetime(1970, 1, 2, tzinfo=datetime.UTC))
    verifier(clock=unset_clock).verify(expired)  # default policy: a clock that is obviously unset is not trusted
    with pytest.raises(CertificateError):
        verifier(clock=unset_clock, expiry="enforce").verify(expired)


def test_revoked_keys_in_the_chain() -> None:
    ring = KeyRing(revoked=[key_hash(MID_KEY.public_key())])
    with pytest.raises(KeyRevokedError):
        verifier(key_ring=ring).verify(LEAF)
    ring = KeyRing(revoked=[key_hash(LEAF_KEY.public_key())])
    with pytest.raises(KeyRevokedError):
        verifier(key_ring=ring).verify(LEAF)


def test_load_certificates_errors() -> None:
    assert len(load_certificates(pem(LEAF, MID))) == 2
    for junk in (b"", b"junk", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"):
        with pytest.raises(KeyFormatError):
            load_certificates(junk)
    with pytest.raises(KeyFormatError):
        verifier().verify(b"not a certificate")

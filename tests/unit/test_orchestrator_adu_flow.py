"""The ``adu`` flow's trusted-root setting (no I/O)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ota_core.errors import ConfigurationError
from ota_orchestrators.simulated_device._adu_flow import trusted_roots


def pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def test_trusted_roots() -> None:
    assert trusted_roots({}) == {}
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    roots = trusted_roots({"root_kid": "TEST.R", "root_pem": pem(key)})
    assert list(roots) == ["TEST.R"]
    with pytest.raises(ConfigurationError):
        trusted_roots({"root_kid": "EC.R", "root_pem": pem(ec.generate_private_key(ec.SECP256R1()))})
    with pytest.raises(ConfigurationError):
        trusted_roots({"root_pem": pem(key)})
    with pytest.raises(ConfigurationError):
        trusted_roots({"root_kid": "X", "root_pem": "not a key"})

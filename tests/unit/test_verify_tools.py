"""Signing tools: key generation, imgtool-style UUIDs and the afr_ota entry."""

from __future__ import annotations

import uuid

import pytest

from ota_core.errors import ConfigurationError
from ota_verify.tools import KEY_TYPES, afr_ota_file_entry, generate_private_key, imgtool_uuid, sign_detached


def test_key_types() -> None:
    assert set(KEY_TYPES) == {"ecdsa-p256", "ecdsa-p384", "ed25519", "rsa-2048", "rsa-3072"}
    with pytest.raises(ConfigurationError):
        generate_private_key("dsa")


def test_imgtool_uuids() -> None:
    text = "12345678-1234-5678-1234-567812345678"
    assert imgtool_uuid(text, None) == uuid.UUID(text).bytes
    assert imgtool_uuid("12345678123456781234567812345678", None) == bytes.fromhex("12345678123456781234567812345678")
    vendor = imgtool_uuid("example.com", uuid.NAMESPACE_DNS)
    assert vendor == uuid.uuid5(uuid.NAMESPACE_DNS, "example.com").bytes
    assert imgtool_uuid("sensor", uuid.UUID(bytes=vendor)) == uuid.uuid5(uuid.UUID(bytes=vendor), "sensor").bytes
    with pytest.raises(ConfigurationError):
        imgtool_uuid("sensor", None)


def test_afr_ota_entry() -> None:
    signature = sign_detached(b"abc", generate_private_key("rsa-2048"))
    entry = afr_ota_file_entry(signature, filepath="/fw", certfile=None, fileid=3, file_type=0)
    assert entry == {
        "filepath": "/fw",
        "filesize": 3,
        "fileid": 3,
        "certfile": None,
        "sig-sha256-rsa": signature.base64,
        "fileType": 0,
    }

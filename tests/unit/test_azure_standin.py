"""Stand-in pieces without a broker: SAS checking, manifest signing, twin storage rules."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from ota_cloud.azure import DeviceNotFoundError, StandInRequestError, TwinRegistry, check_sas_token, merge_json
from ota_cloud.azure._signing import b64url, sign_update_manifest
from ota_cloud.azure._twins import twin_section_error
from ota_jobs.azure import generate_sas_token
from tests.azure_fixtures import session_keys

KEY = "NMgJDvdKTxjLi+xBxxkDDEwDJxEvOE5u8BiT0mVgPeg="


def test_sas_check_accepts_device_tokens_and_rejects_the_rest() -> None:
    token = generate_sas_token("hub.net/devices/dev1", KEY, 2000)
    assert check_sas_token(token, "hub.net", "dev1", KEY, now=1000) is None
    assert check_sas_token(token, "hub.net", "dev1", KEY, now=2000) == "token expired"
    assert check_sas_token(token, "hub.net", "dev2", KEY, now=1000) == "token is for another resource"
    other = base64.b64encode(b"k" * 32).decode()
    assert check_sas_token(token, "hub.net", "dev1", other, now=1000) == "signature mismatch"
    hub_token = generate_sas_token("hub.net", KEY, 2000)
    assert check_sas_token(hub_token, "hub.net", "dev1", KEY, now=1000) is None
    assert check_sas_token("Bearer x", "hub.net", "dev1", KEY, 0) == "not a SharedAccessSignature"
    assert check_sas_token("SharedAccessSignature sr", "h", "d", KEY, 0) == "malformed token"
    assert check_sas_token("SharedAccessSignature sr=h", "h", "d", KEY, 0) == "sr, sig and se are required"
    assert check_sas_token("SharedAccessSignature sr=h%2Fdevices%2Fd&sig=x&se=zz", "h", "d", KEY, 0) == "bad expiry"
    assert (
        check_sas_token("SharedAccessSignature sr=h%2Fdevices%2Fd&sig=!!&se=5", "h", "d", KEY, 0)
        == "bad signature encoding"
    )


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_signature_has_the_adu_shape() -> None:
    keys = session_keys()
    jws = sign_update_manifest('{"manifestVersion":"5"}', keys)
    header_b64, payload_b64, signature_b64 = jws.split(".")
    header = json.loads(_b64url_decode(header_b64))
    assert header["alg"] == "RS256" and set(header) == {"alg", "sjwk"}
    h2, jwk_b64, s2 = header["sjwk"].split(".")
    assert json.loads(_b64url_decode(h2)) == {"alg": "RS256", "kid": keys.root_kid}
    keys.root.public_key().verify(_b64url_decode(s2), f"{h2}.{jwk_b64}".encode(), padding.PKCS1v15(), hashes.SHA256())
    jwk = json.loads(_b64url_decode(jwk_b64))
    assert jwk["kid"] == keys.signing_kid and jwk["e"] == "AQAB" and "=" not in jwk["n"]
    keys.signing.public_key().verify(
        _b64url_decode(signature_b64), f"{header_b64}.{payload_b64}".encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    assert set(json.loads(_b64url_decode(payload_b64))) == {"sha256"}
    root = keys.root_jwk()
    assert root["kid"] == keys.root_kid and root["e"] == "AQAB"
    assert keys.root_public_pem().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert b64url(b"\xff\xfe") == "__4"


def test_merge_and_limits() -> None:
    assert merge_json({"a": {"b": 1, "c": 2}, "d": 1}, {"a": {"b": None, "e": 3}, "d": None, "f": [1]}) == {
        "a": {"c": 2, "e": 3},
        "f": [1],
    }
    assert twin_section_error({"ok": {"fine": 1}}) is None
    deep: dict[str, object] = {}
    node = deep
    for _ in range(11):
        child: dict[str, object] = {}
        node["k"] = child
        node = child
    assert twin_section_error(deep) == "nesting deeper than 10 levels"
    assert "exceeds" in (twin_section_error({"s": "x" * 40000}) or "")
    assert "invalid key" in (twin_section_error({"a.b": 1}) or "")
    assert "invalid key" in (twin_section_error({"x": {"$y": 1}}) or "")


def test_registry_in_memory() -> None:
    registry = TwinRegistry()
    registry.register("d1", "key", {"t": 1})
    registry.register("d1", "key2", {"t": 2})
    assert registry.get("d1").primary_key == "key2" and registry.get("d1").tags == {"t": 2}
    assert registry.patch_desired("d1", {"a": 1}) == 2
    assert registry.patch_reported("d1", {"b": 1}) == (2, None)
    assert registry.patch_reported("d1", {"b.c": 1})[1] is not None
    assert registry.patch_reported("nobody", {})[1] == "unknown device"
    with pytest.raises(StandInRequestError):
        registry.patch_desired("d1", {"$bad": 1})
    with pytest.raises(DeviceNotFoundError):
        registry.patch_desired("nobody", {})
    with pytest.raises(DeviceNotFoundError):
        registry.get("nobody")
    for bad in ("", "a/b", "a+b", "x" * 200):
        with pytest.raises(StandInRequestError):
            registry.register(bad)

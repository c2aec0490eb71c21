"""Checking device SAS tokens on the stand-in side (written from the token description, separately from
the device's generator)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import urllib.parse

__all__ = ["check_sas_token"]


def check_sas_token(token: str, hostname: str, device_id: str, primary_key: str, now: float) -> str | None:
    """Return ``None`` if ``token`` is a valid, unexpired device token for ``hostname/devices/device_id``,
    otherwise a short reason."""
    prefix = "SharedAccessSignature "
    if not isinstance(token, str) or not token.startswith(prefix) or len(token) > 4096:
        return "not a SharedAccessSignature"
    fields: dict[str, str] = {}
    for part in token[len(prefix):].split("&"):
        key, sep, value = part.partition("=")
        if not sep:
            return "malformed token"
        fields[key] = value
    if not {"sr", "sig", "se"} <= set(fields):
        return "sr, sig and se are required"
    resource = urllib.parse.unquote(fields["sr"])
    expected = f"{hostname}/devices/{device_id}"
    if resource.lower() != expected.lower() and not expected.lower().startswith(resource.lower() + "/"):
        return "token is for another resource"
    if not fields["se"].isdigit():
        return "bad expiry"
    if int(fields["se"]) <= now:
        return "token expired"
    try:
        secret = base64.b64decode(primary_key, validate=True)
        given = base64.b64decode(urllib.parse.unquote(fields["sig"]), validate=True)
    except (binascii.Error, ValueError):
        return "bad signature encoding"
    message = f"{fields['sr']}\n{fields['se']}".encode()
    if not hmac.compare_digest(hmac.new(secret, message, hashlib.sha256).digest(), given):
        return "signature mismatch"
    return None

"""Shared access signature (SAS) tokens for IoT Hub device authentication.

The hub accepts ``SharedAccessSignature sr=...&sig=...&se=...`` as the MQTT password, where ``sig`` is
an HMAC-SHA256 over ``sr + "\\n" + se`` keyed with the base64-decoded device key. Tokens expire, so the
provider renews them shortly before expiry; the MQTT connection asks for a fresh password at each reconnect.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
import urllib.parse
from datetime import UTC, datetime

from ota_core.clock import Clock, SystemClock
from ota_jobs.azure._errors import AzureConfigurationError

__all__ = [
    "DEFAULT_SAS_TTL_SECONDS",
    "SAS_RENEWAL_MARGIN_SECONDS",
    "SasTokenProvider",
    "generate_sas_token",
    "sign_sas",
]

DEFAULT_SAS_TTL_SECONDS = 3600
"""Lifetime of a generated token, as the Microsoft SDKs default it."""

SAS_RENEWAL_MARGIN_SECONDS = 120
"""A token this close to its expiry is replaced by a new one at the next reconnect."""


def _decode_key(key_b64: str) -> bytes:
    try:
        key = base64.b64decode(key_b64.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise AzureConfigurationError("the shared access key is not valid base64") from exc
    if not key:
        raise AzureConfigurationError("the shared access key is empty")
    return key


def sign_sas(key_b64: str, message: str) -> str:
    """Return base64(HMAC-SHA256(base64decode(key), message)): a SAS token's ``sig`` before URL-encoding."""
    digest = hmac.new(_decode_key(key_b64), message.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def generate_sas_token(resource_uri: str, key_b64: str, expiry: int, policy_name: str | None = None) -> str:
    """Build a SAS token for ``resource_uri`` (``hub.azure-devices.net/devices/dev1``) valid until ``expiry``.

    ``expiry`` is in seconds since the Unix epoch. ``policy_name`` adds ``skn`` (shared-access-policy tokens
    only; omit it for a device key).
    """
    if not resource_uri:
        raise AzureConfigurationError("the SAS resource URI is empty")
    if isinstance(expiry, bool) or not isinstance(expiry, int) or expiry <= 0:
        raise AzureConfigurationError(f"the SAS expiry must be a positive integer, got {expiry!r}")
    sr = urllib.parse.quote(resource_uri, safe="")
    signature = sign_sas(key_b64, f"{sr}\n{expiry}")
    token = f"SharedAccessSignature sr={sr}&sig={urllib.parse.quote(signature, safe='')}&se={expiry}"
    if policy_name:
        token += f"&skn={urllib.parse.quote(policy_name, safe='')}"
    return token


class SasTokenProvider:
    """Callable that returns a valid SAS token, generating a new one when the current one is near expiry.

    Pass it as the MQTT password: the connection calls it at every (re)connect, so an expired token is
    replaced by reconnecting, as the hub requires.
    """

    def __init__(
        self,
        resource_uri: str,
        key_b64: str,
        *,
        ttl_seconds: int = DEFAULT_SAS_TTL_SECONDS,
        renewal_margin_seconds: int = SAS_RENEWAL_MARGIN_SECONDS,
        policy_name: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        if ttl_seconds <= renewal_margin_seconds:
            raise AzureConfigurationError("the SAS lifetime must be longer than the renewal margin")
        _decode_key(key_b64)
        self._resource_uri = resource_uri
        self._key = key_b64
        self._ttl = ttl_seconds
        self._margin = renewal_margin_seconds
        self._policy = policy_name
        self._clock: Clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expiry = 0

    @property
    def expiry(self) -> int:
        """Expiry (epoch seconds) of the last token handed out; 0 before the first call."""
        return self._expiry

    def _now(self) -> int:
        return int(self._clock.now().astimezone(UTC).timestamp())

    def needs_renewal(self) -> bool:
        """True when the current token is missing or within the renewal margin of its expiry."""
        return self._token is None or self._now() >= self._expiry - self._margin

    def seconds_until_renewal(self) -> float:
        """How long the current token stays usable before a reconnect should renew it."""
        return max(0.0, float(self._expiry - self._margin - self._now()))

    def __call__(self) -> str:
        with self._lock:
            if self.needs_renewal():
                self._expiry = self._now() + self._ttl
                self._token = generate_sas_token(self._resource_uri, self._key, self._expiry, self._policy)
            assert self._token is not None
            return self._token


def epoch_seconds(moment: datetime) -> int:
    """Seconds since the Unix epoch for an aware datetime (helper for tests and tools)."""
    return int(moment.astimezone(UTC).timestamp())

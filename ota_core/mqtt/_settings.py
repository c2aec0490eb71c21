"""Connection settings and broker URLs for the MQTT connection."""

from __future__ import annotations

import contextlib
import ipaddress
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import attrs

from ota_core.errors import ConfigurationError, InvalidBrokerUrlError, TlsConfigurationError

_SCHEMES = {"mqtt": False, "tcp": False, "mqtts": True, "ssl": True, "tls": True}
_DEFAULT_PORTS = {False: 1883, True: 8883}

PasswordSource = str | Callable[[], str] | None
"""A fixed password, or a callable asked for a fresh one before every connection attempt."""


@attrs.frozen
class BrokerAddress:
    """Where the broker is: host, port, and whether TLS is used."""

    host: str
    port: int
    tls: bool


def parse_broker_url(url: str) -> BrokerAddress:
    """Parse ``mqtt://host[:port]`` or ``mqtts://host[:port]`` (``tcp``/``ssl``/``tls`` too)."""
    if not isinstance(url, str) or not url:
        raise InvalidBrokerUrlError(f"broker URL must be a non-empty string, got {url!r:.80}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise InvalidBrokerUrlError(f"broker URL {url!r:.80} is malformed: {error}") from error
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise InvalidBrokerUrlError(
            f"broker URL {url!r:.80} has scheme {parts.scheme!r}; use mqtt:// or mqtts://"
        )
    if not parts.hostname:
        raise InvalidBrokerUrlError(f"broker URL {url!r:.80} names no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise InvalidBrokerUrlError(f"broker URL {url!r:.80} must not have a path, query or fragment")
    if parts.username or parts.password:
        raise InvalidBrokerUrlError("put credentials in the settings, not in the broker URL")
    tls = _SCHEMES[scheme]
    if port == 0:
        raise InvalidBrokerUrlError(f"broker URL {url!r:.80} has port 0")
    host = parts.hostname
    with contextlib.suppress(ValueError):
        host = str(ipaddress.ip_address(host))
    return BrokerAddress(host=host, port=port or _DEFAULT_PORTS[tls], tls=tls)


def _positive(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value <= 0:
        raise ConfigurationError(f"{attribute.name} must be positive, got {value!r}")


@attrs.frozen
class MqttSettings:
    """Everything needed to open and keep an MQTT connection.

    ``topic_prefix`` is put before every topic on the wire and removed from incoming topics, so that many
    simulated devices can share one broker without seeing each other's traffic.
    """

    broker_url: str
    client_id: str
    protocol: Literal["3.1.1", "5"] = "3.1.1"
    username: str | None = None
    password: PasswordSource = None
    ca_file: str | Path | None = None
    cert_file: str | Path | None = None
    key_file: str | Path | None = None
    alpn_protocols: tuple[str, ...] = ()
    keepalive: int = 60
    topic_prefix: str = ""
    connect_timeout: float = attrs.field(default=10.0, validator=_positive)
    operation_timeout: float = attrs.field(default=10.0, validator=_positive)
    reconnect_min_delay: float = attrs.field(default=0.2, validator=_positive)
    reconnect_max_delay: float = attrs.field(default=30.0, validator=_positive)
    max_inflight: int = 20
    clean_session: bool = True

    @property
    def address(self) -> BrokerAddress:
        """The parsed broker URL."""
        return parse_broker_url(self.broker_url)

    def current_password(self) -> str | None:
        """The password to send now (asks the callable, if one was given)."""
        if callable(self.password):
            return self.password()
        return self.password

    def validate(self) -> None:
        """Check everything that can be checked before connecting; raise typed errors naming the problem."""
        address = self.address
        if not self.client_id or len(self.client_id.encode()) > 65535:
            raise ConfigurationError("client_id must be 1..65535 bytes")
        if self.protocol not in ("3.1.1", "5"):
            raise ConfigurationError(f"protocol must be '3.1.1' or '5', got {self.protocol!r}")
        if not 0 <= self.keepalive <= 65535:
            raise ConfigurationError(f"keepalive must be 0..65535 seconds, got {self.keepalive}")
        if self.max_inflight < 1:
            raise ConfigurationError(f"max_inflight must be at least 1, got {self.max_inflight}")
        if self.reconnect_max_delay < self.reconnect_min_delay:
            raise ConfigurationError("reconnect_max_delay must not be below reconnect_min_delay")
        if self.topic_prefix and (
            "+" in self.topic_prefix or "#" in self.topic_prefix or not self.topic_prefix.endswith("/")
        ):
            raise ConfigurationError(
                f"topic_prefix {self.topic_prefix!r} must end with '/' and contain no wildcards"
            )
        if (self.cert_file is None) != (self.key_file is None):
            raise TlsConfigurationError("a client certificate needs its key, and a key needs its certificate")
        if not address.tls and (self.cert_file or self.ca_file or self.alpn_protocols):
            raise TlsConfigurationError(
                f"TLS options were given but {self.broker_url!r} is not a TLS URL (use mqtts://)"
            )

    def tls_context(self) -> ssl.SSLContext | None:
        """Build the TLS context (server verification always on), or ``None`` for plain TCP."""
        if not self.address.tls:
            return None
        try:
            context = ssl.create_default_context(
                cafile=str(self.ca_file) if self.ca_file is not None else None
            )
        except (OSError, ssl.SSLError) as error:
            raise TlsConfigurationError(f"cannot load CA file {self.ca_file}: {error}") from error
        if self.cert_file is not None and self.key_file is not None:
            for label, path in (("client certificate", self.cert_file), ("client key", self.key_file)):
                if not Path(path).is_file():
                    raise TlsConfigurationError(f"{label} file {path} does not exist or is not a file")
            try:
                context.load_cert_chain(str(self.cert_file), str(self.key_file))
            except (OSError, ssl.SSLError) as error:
                raise TlsConfigurationError(
                    f"cannot load client certificate {self.cert_file} with key {self.key_file}: {error}"
                ) from error
        if self.alpn_protocols:
            context.set_alpn_protocols(list(self.alpn_protocols))
        return context

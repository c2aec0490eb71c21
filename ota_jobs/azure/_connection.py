"""IoT Hub connection settings: client id, username with api-version and model id, SAS or X.509.

The hub speaks MQTT 3.1.1 over TLS on port 8883. The client id is the device id (``device/module`` for a
module); the username is ``{hub}/{client id}/?api-version=...`` plus ``&model-id=...`` for Plug and Play
devices such as Device Update agents; the password is a SAS token unless the device uses an X.509 client
certificate. A ``GatewayHostName`` makes the device connect there instead of the hub (local stand-in).
"""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING

import attrs

from ota_core.clock import Clock
from ota_jobs.azure._errors import AzureConfigurationError
from ota_jobs.azure._sas import DEFAULT_SAS_TTL_SECONDS, SasTokenProvider

if TYPE_CHECKING:
    from ota_core.mqtt import MqttSettings

__all__ = [
    "ADU_MODEL_ID",
    "IOTHUB_API_VERSION",
    "IOTHUB_MQTT_PORT",
    "IotHubSettings",
    "parse_connection_string",
]

IOTHUB_API_VERSION = "2021-04-12"
"""The api-version the MQTT documentation recommends in the CONNECT username."""

IOTHUB_MQTT_PORT = 8883
ADU_MODEL_ID = "dtmi:azure:iot:deviceUpdateModel;3"
"""The Plug and Play model id a Device Update agent (agent 1.1 interface) announces."""

_MAX_MODEL_ID = 256


@attrs.frozen
class IotHubSettings:
    """How one device (or module) connects to an IoT Hub.

    Exactly one credential: ``shared_access_key`` (a SAS token is generated and renewed), ``sas_token``
    (used as is; it cannot be renewed) or ``cert_file``/``key_file`` (X.509 client certificate).
    ``gateway_host``/``port`` redirect the TCP connection (edge gateway or local stand-in) while the
    username and token still name ``hostname``. ``topic_prefix`` is only for a shared test broker.
    """

    hostname: str
    device_id: str
    module_id: str | None = None
    shared_access_key: str | None = None
    sas_token: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    ca_file: str | None = None
    model_id: str | None = None
    api_version: str = IOTHUB_API_VERSION
    gateway_host: str | None = None
    port: int = IOTHUB_MQTT_PORT
    use_tls: bool = True
    keepalive: int = 60
    sas_ttl_seconds: int = DEFAULT_SAS_TTL_SECONDS
    topic_prefix: str = ""

    def __attrs_post_init__(self) -> None:
        if not self.hostname or "/" in self.hostname:
            raise AzureConfigurationError(f"invalid IoT Hub host name: {self.hostname!r}")
        for name, value in (("device id", self.device_id), ("module id", self.module_id)):
            if value is not None and (not value or len(value) > 128 or "/" in value):
                raise AzureConfigurationError(f"invalid {name}: {value!r}")
        credentials = (self.shared_access_key, self.sas_token, self.cert_file)
        if sum(c is not None for c in credentials) != 1:
            raise AzureConfigurationError("give exactly one of shared_access_key, sas_token or cert_file")
        if (self.cert_file is None) != (self.key_file is None):
            raise AzureConfigurationError("an X.509 client certificate needs both cert_file and key_file")
        if self.model_id is not None and (
            not self.model_id.startswith("dtmi:") or len(self.model_id) > _MAX_MODEL_ID
        ):
            raise AzureConfigurationError(f"a model id must be a DTMI (dtmi:...), got {self.model_id!r}")
        if not 0 < self.port < 65536:
            raise AzureConfigurationError(f"invalid port {self.port}")
        if not 0 < self.keepalive <= 1177:
            raise AzureConfigurationError("keepalive must be 1..1177 s (the hub waits at most 1767 s)")

    @property
    def client_id(self) -> str:
        """The MQTT client id: the device id, or ``device/module``."""
        return self.device_id if self.module_id is None else f"{self.device_id}/{self.module_id}"

    @property
    def username(self) -> str:
        """The CONNECT username: host, client id, api-version and (for Plug and Play) the model id."""
        query = f"api-version={urllib.parse.quote(self.api_version, safe='')}"
        if self.model_id:
            query += f"&model-id={urllib.parse.quote(self.model_id, safe='')}"
        return f"{self.hostname}/{self.client_id}/?{query}"

    @property
    def resource_uri(self) -> str:
        """The SAS resource: ``{hub}/devices/{device}`` (+ ``/modules/{module}``)."""
        uri = f"{self.hostname}/devices/{self.device_id}"
        return uri if self.module_id is None else f"{uri}/modules/{self.module_id}"

    @property
    def broker_url(self) -> str:
        """Where the TCP connection goes (the gateway if one is set)."""
        scheme = "mqtts" if self.use_tls else "mqtt"
        return f"{scheme}://{self.gateway_host or self.hostname}:{self.port}"

    def password_provider(self, clock: Clock | None = None) -> SasTokenProvider | str | None:
        """The MQTT password: a renewing SAS provider, the fixed token, or ``None`` for X.509."""
        if self.shared_access_key is not None:
            return SasTokenProvider(
                self.resource_uri, self.shared_access_key, ttl_seconds=self.sas_ttl_seconds, clock=clock
            )
        return self.sas_token

    def to_mqtt_settings(self, clock: Clock | None = None) -> MqttSettings:
        """The ``ota_core.mqtt`` settings for this device: MQTT 3.1.1, TLS, the hub's username/password."""
        from ota_core.mqtt import MqttSettings  # noqa: PLC0415 - keeps this module importable without paho

        return MqttSettings(
            broker_url=self.broker_url,
            client_id=self.client_id,
            protocol="3.1.1",
            username=self.username,
            password=self.password_provider(clock),
            ca_file=self.ca_file,
            cert_file=self.cert_file,
            key_file=self.key_file,
            keepalive=self.keepalive,
            topic_prefix=self.topic_prefix,
        )


def parse_connection_string(text: str, **overrides: object) -> IotHubSettings:
    """Parse ``HostName=...;DeviceId=...;SharedAccessKey=...`` (also ``ModuleId``, ``GatewayHostName``,
    ``SharedAccessSignature``, ``x509=true``) into settings; ``overrides`` set the other fields."""
    fields: dict[str, str] = {}
    for part in text.strip().split(";"):
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not value:
            raise AzureConfigurationError(f"malformed connection string part: {key!r}")
        if key in fields:
            raise AzureConfigurationError(f"duplicate connection string key: {key!r}")
        fields[key] = value
    known = {"HostName", "DeviceId", "ModuleId", "SharedAccessKey", "SharedAccessSignature",
             "GatewayHostName", "x509"}
    unknown = set(fields) - known
    if unknown:
        raise AzureConfigurationError(f"unknown connection string keys: {sorted(unknown)}")
    if "HostName" not in fields or "DeviceId" not in fields:
        raise AzureConfigurationError("a device connection string needs HostName and DeviceId")
    kwargs: dict[str, object] = {
        "hostname": fields["HostName"],
        "device_id": fields["DeviceId"],
        "module_id": fields.get("ModuleId"),
        "shared_access_key": fields.get("SharedAccessKey"),
        "sas_token": fields.get("SharedAccessSignature"),
        "gateway_host": fields.get("GatewayHostName"),
    }
    kwargs.update(overrides)
    try:
        return IotHubSettings(**kwargs)  # type: ignore[arg-type]
    except TypeError as exc:
        raise AzureConfigurationError(f"bad connection settings: {exc}") from exc

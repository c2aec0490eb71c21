"""The ``adu`` flow of the simulated device: the Device Update agent over the device's parts.

``flow_settings``: either ``connection_string`` (+ ``ca_file``) for a real IoT Hub, or ``broker_url``,
``device_id``, ``device_key`` (SAS key), ``topic_prefix`` (the stand-in's per-device prefix) and ``hostname`` for
the stand-in; ``root_kid`` + ``root_pem`` (a root key to trust *instead of* Microsoft's: the stand-in's test
root), ``manufacturer``, ``model``, ``initial_update`` (``{provider, name, version}`` of the factory image).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import Any

import attrs
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from ota_core.errors import ConfigurationError
from ota_core.mqtt import MqttConnection
from ota_core.state_store import FileStateStore
from ota_jobs.azure import ADU_MODEL_ID, AduUpdateId, IotHubSettings, TwinClient, parse_connection_string
from ota_orchestrators.adu import AduAgent, AduSettings
from ota_orchestrators.simulated_device._device import DeviceContext
from ota_orchestrators.simulated_device._flows import RunningFlow, register_flow
from ota_stream import HttpDownloadConfig
from ota_verify import KeyRing, McubootVerifier, load_public_key

__all__ = ["AduFlow", "run_adu_flow", "trusted_roots"]


class AduFlow:
    """The running agent and its connection (stopped together)."""

    def __init__(self, agent: AduAgent, connection: MqttConnection) -> None:
        self.agent = agent
        self.connection = connection

    def stop(self) -> None:
        """Stop the agent, then drop the connection."""
        self.agent.stop()
        self.connection.close()


def trusted_roots(settings: Mapping[str, Any]) -> dict[str, rsa.RSAPublicKey]:
    """The root key to trust from ``root_kid`` + ``root_pem`` (none: Microsoft's roots only)."""
    pem = settings.get("root_pem")
    if not pem:
        return {}
    kid = settings.get("root_kid")
    if not isinstance(kid, str) or not kid:
        raise ConfigurationError("root_pem needs root_kid (the key id the manifest signatures name)")
    try:
        key = load_pem_public_key(str(pem).encode())
    except ValueError as error:
        raise ConfigurationError(f"root_pem is not a PEM public key: {error}") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ConfigurationError("root_pem must be an RSA public key")
    return {kid: key}


def run_adu_flow(context: DeviceContext) -> RunningFlow:
    """Connect to the hub (or the stand-in), build the ADU agent from the device context and start it."""
    settings = context.flow_settings
    config = context.config
    if settings.get("connection_string"):
        # a real IoT Hub: "HostName=...;DeviceId=...;SharedAccessKey=..." (TLS to the hub, ca_file to trust it)
        mqtt = parse_connection_string(str(settings["connection_string"]), ca_file=settings.get("ca_file"),
                                       model_id=ADU_MODEL_ID).to_mqtt_settings()
    else:
        url = urllib.parse.urlsplit(str(settings["broker_url"]))
        secure = url.scheme in ("mqtts", "ssl")
        mqtt = IotHubSettings(
            hostname=str(settings.get("hostname", "demo.azure-devices.net")),
            device_id=str(settings["device_id"]),
            shared_access_key=str(settings["device_key"]),
            gateway_host=url.hostname or "127.0.0.1",
            port=url.port or (8883 if secure else 1883),
            use_tls=secure,
            ca_file=settings.get("ca_file"),
            model_id=ADU_MODEL_ID,
            topic_prefix=str(settings.get("topic_prefix", "")),
        ).to_mqtt_settings()
    initial = settings.get("initial_update")
    roots = trusted_roots(settings)
    adu = AduSettings(
        manufacturer=str(settings.get("manufacturer", "Contoso")),
        model=str(settings.get("model", "SimDevice")),
        trusted_roots=roots,
        microsoft_roots=not roots,
        initial_update_id=AduUpdateId.from_json(initial) if initial else None,
        engine=attrs.evolve(context.engine_config, name="adu"),
        http=HttpDownloadConfig(
            allow_insecure_http=True,
            chunk_size=max(4096, min(config.save_interval_bytes, 1024 * 1024)),
            save_interval_bytes=config.save_interval_bytes,
            progress_interval=config.progress_interval,
        ),
    )
    connection = MqttConnection(mqtt)
    connection.connect()
    try:
        images = McubootVerifier(KeyRing([load_public_key(config.public_key.read_bytes())]))
        agent = AduAgent(
            adu,
            client=TwinClient(connection),
            boot_control=context.boot_control,
            state_store=FileStateStore(config.state_dir),
            restart=context.restart,
            self_test=context.self_test,
            mcuboot=images,
            job_source_wrapper=context.wrap_job_source,
        )
        agent.engine.add_listener(context.listener)
        agent.start()
    except BaseException:
        connection.close()
        raise
    return AduFlow(agent, connection)


register_flow("adu", run_adu_flow)

"""The ``azure`` flow of the simulated device: the Azure IoT Hub twin firmware orchestrator (MXChip schema).

``flow_settings``: ``device_id``, ``hostname`` (the hub's name), one credential (``shared_access_key``,
``sas_token``, or ``cert_file`` + ``key_file``), optional ``ca_file``, ``gateway_host`` + ``port`` (a local
broker or an edge gateway), ``use_tls`` (default true), ``topic_prefix`` (a shared local broker),
``allow_http`` (plain-HTTP package URIs of a local stand-in) and ``vocabulary`` (``devkit`` or ``tutorial``).
"""

from __future__ import annotations

from typing import Any

from ota_jobs.azure import DEVKIT_VOCABULARY, IOTHUB_MQTT_PORT, TUTORIAL_VOCABULARY, IotHubSettings
from ota_orchestrators.azure_twin import AzureTwinDevice, AzureTwinSettings
from ota_orchestrators.simulated_device._device import DeviceContext
from ota_orchestrators.simulated_device._flows import RunningFlow, register_flow
from ota_stream import HttpDownloadConfig

__all__ = ["run_azure_flow"]


def _optional(settings: Any, key: str) -> str | None:
    value = settings.get(key)
    return None if value is None else str(value)


def run_azure_flow(context: DeviceContext) -> RunningFlow:
    """Build the Azure twin orchestrator from the device context and start it."""
    settings = context.flow_settings
    config = context.config
    hub = IotHubSettings(
        hostname=str(settings.get("hostname", "modular-ota.azure-devices.net")),
        device_id=str(settings["device_id"]),
        shared_access_key=_optional(settings, "shared_access_key"),
        sas_token=_optional(settings, "sas_token"),
        cert_file=_optional(settings, "cert_file"),
        key_file=_optional(settings, "key_file"),
        ca_file=_optional(settings, "ca_file"),
        gateway_host=_optional(settings, "gateway_host"),
        port=int(settings.get("port", IOTHUB_MQTT_PORT)),
        use_tls=bool(settings.get("use_tls", True)),
        topic_prefix=str(settings.get("topic_prefix", "")),
    )
    twin = AzureTwinSettings(
        hub=hub,
        state_dir=str(config.state_dir),
        vocabulary=TUTORIAL_VOCABULARY if settings.get("vocabulary") == "tutorial" else DEVKIT_VOCABULARY,
        allow_http=bool(settings.get("allow_http", False)),
        engine=context.engine_config,
        http=HttpDownloadConfig(
            chunk_size=max(4096, min(config.save_interval_bytes, 1024 * 1024)),
            save_interval_bytes=config.save_interval_bytes,
            progress_interval=config.progress_interval,
        ),
    )
    device = AzureTwinDevice(
        twin,
        boot_control=context.boot_control,
        verifier=context.verifier,
        restart=context.restart,
        self_test=context.self_test,
        job_source_wrapper=context.wrap_job_source,
    )
    device.engine.add_listener(context.listener)
    device.start()
    return device


register_flow("azure", run_azure_flow)

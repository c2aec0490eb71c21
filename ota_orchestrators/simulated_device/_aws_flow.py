"""The ``aws`` flow of the simulated device: the AWS IoT Jobs reference orchestrator over the device's parts.

``flow_settings``: ``broker_url``, ``thing_name``, optional ``ca_file``/``cert_file``/``key_file`` (mutual
TLS), ``allow_http`` (plain-HTTP URLs of a local stand-in), ``protocols`` (``["MQTT", "HTTP"]``).
"""

from __future__ import annotations

from pathlib import Path

import attrs

from ota_core.mqtt import MqttSettings
from ota_orchestrators.aws import AwsOrchestrator, AwsSettings
from ota_orchestrators.simulated_device._device import DeviceContext
from ota_orchestrators.simulated_device._flows import RunningFlow, register_flow
from ota_stream import HttpDownloadConfig, MqttStreamConfig

__all__ = ["run_aws_flow"]


def run_aws_flow(context: DeviceContext) -> RunningFlow:
    """Build the AWS orchestrator from the device context and start it."""
    settings = context.flow_settings
    config = context.config
    thing = str(settings["thing_name"])
    aws = AwsSettings(
        thing_name=thing,
        mqtt=MqttSettings(
            broker_url=str(settings["broker_url"]),
            client_id=thing,
            ca_file=settings.get("ca_file"),
            cert_file=settings.get("cert_file"),
            key_file=settings.get("key_file"),
            connect_timeout=10.0,
        ),
        state_dir=Path(config.state_dir),
        preferred_protocols=tuple(settings.get("protocols", ("MQTT", "HTTP"))),
        allow_http=bool(settings.get("allow_http", False)),
        require_signature=False,  # MCUboot images carry their own signature, checked while they stream
        stream=MqttStreamConfig(
            save_interval_bytes=config.save_interval_bytes, progress_interval=config.progress_interval
        ),
        http=HttpDownloadConfig(
            chunk_size=max(4096, min(config.save_interval_bytes, 1024 * 1024)),
            save_interval_bytes=config.save_interval_bytes,
            progress_interval=config.progress_interval,
        ),
        engine=attrs.evolve(context.engine_config, progress_report_step=0.25),
    )
    orchestrator = AwsOrchestrator(
        aws,
        verifier=context.verifier,
        boot_control=context.boot_control,
        restart=context.restart,
        self_test=context.self_test,
        job_source_wrapper=context.wrap_job_source,
    )
    orchestrator.engine.add_listener(context.listener)
    orchestrator.start()
    return orchestrator


register_flow("aws", run_aws_flow)

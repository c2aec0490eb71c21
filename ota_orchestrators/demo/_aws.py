"""The AWS demo: the AWS IoT Jobs stand-in, its MQTT stream service and an HTTP file server.

``--protocol mqtt`` publishes firmware 1.0.1 as an AWS IoT stream and creates an ``afr_ota`` job (what
``CreateOTAUpdate`` makes); ``--protocol http`` serves the image over loopback HTTP and creates a job
with the generic ``ota_http`` document. Expected end: SUCCEEDED with 1.0.1 running, or FAILED with 1.0.0
running for ``--fail-self-test``.
"""

from __future__ import annotations

import json
from typing import Any

from ota_cloud.aws import AwsIotStandIn, thing_arn
from ota_cloud.aws_streams import StreamDataPlane, StreamStore
from ota_cloud.file_server import RangeFileServer
from ota_core.mqtt import MqttConnection, MqttSettings
from ota_orchestrators.demo._runner import (
    NEW_VERSION,
    OLD_VERSION,
    DemoContext,
    DemoError,
    Expected,
    register_scenario,
)

__all__ = ["AwsScenario"]

JOB_ID = "demo-update-1-0-1"
STREAM_ID = "AFR_OTA-demo-1-0-1"


class AwsScenario:
    """The cloud side of ``ota demo aws``."""

    title = "AWS IoT Jobs, firmware 1.0.0 -> 1.0.1"

    def __init__(self) -> None:
        self.standin: AwsIotStandIn | None = None
        self.streams = StreamStore()
        self.stream_service: StreamDataPlane | None = None
        self.stream_connection: MqttConnection | None = None
        self.files: RangeFileServer | None = None

    def start_cloud(self, context: DemoContext) -> None:
        """Start the Jobs stand-in, the stream service and the file server; register the thing."""
        self.standin = AwsIotStandIn(context.broker_url, context.work_dir / "aws-state", tick_interval=0.1)
        self.standin.start()
        connection = MqttConnection(
            MqttSettings(broker_url=context.broker_url, client_id=f"stream-service-{context.device_id}")
        )
        connection.connect()
        self.stream_connection = connection
        self.stream_service = StreamDataPlane(connection, self.streams)
        self.stream_service.start()
        if context.options.power_cut:
            # Loopback streams a megabyte in milliseconds: slow the service so the cut lands mid-download.
            self.stream_service.faults.delay = 0.1
        self.files = RangeFileServer()
        self.files.start()
        self.standin.service.create_thing(context.device_id)
        context.print_line(f"cloud: AWS IoT stand-in up, thing {context.device_id} registered")

    def device_settings(self, context: DemoContext) -> dict[str, Any]:
        """The device's ``aws`` flow settings."""
        return {"broker_url": context.broker_url, "thing_name": context.device_id, "allow_http": True}

    def publish(self, context: DemoContext) -> str:
        """Publish the image (stream or HTTP) and create the job."""
        assert self.standin is not None and self.files is not None
        firmware = context.new_firmware
        if context.options.protocol == "mqtt":
            self.streams.create_stream(STREAM_ID, [{"fileId": 0, "data": firmware.image}])
            document: dict[str, Any] = {
                "afr_ota": {
                    "protocols": ["MQTT"],
                    "streamname": STREAM_ID,
                    "files": [
                        {
                            "filepath": "firmware.bin",
                            "filesize": len(firmware.image),
                            "fileid": 0,
                            "certfile": None,
                            "fileType": 0,
                            "sig-sha256-ecdsa": firmware.signature_b64,
                        }
                    ],
                }
            }
            how = f"afr_ota job {JOB_ID}, file in MQTT stream {STREAM_ID}"
        elif context.options.protocol == "http":
            url = self.files.add_file(f"firmware-{firmware.version}.bin", firmware.image)
            document = {
                "ota_http": {
                    "schema_version": 1,
                    "version": firmware.version,
                    "files": [
                        {"name": "firmware.bin", "url": url, "size": len(firmware.image), "sha256": firmware.sha256}
                    ],
                }
            }
            how = f"ota_http job {JOB_ID}, file at {url}"
        else:
            raise DemoError(f"unknown protocol {context.options.protocol!r} (mqtt or http)")
        _reply, out = self.standin.service.create_job(
            JOB_ID, {"document": json.dumps(document), "targets": [thing_arn(context.device_id)]}
        )
        self.standin.publish(out)
        return f"created {how}"

    def expected(self, context: DemoContext) -> Expected:
        """SUCCEEDED with the new image, or FAILED with the old one after a failing self-test."""
        if context.options.fail_self_test:
            return Expected("FAILED", OLD_VERSION)
        return Expected("SUCCEEDED", NEW_VERSION)

    def cloud_state(self, context: DemoContext) -> tuple[str, dict[str, Any]]:
        """The job execution's status and statusDetails at the stand-in."""
        assert self.standin is not None
        execution = self.standin.service.describe_job_execution(JOB_ID, context.device_id, None)["execution"]
        return str(execution["status"]), dict(execution["statusDetails"]["detailsMap"])

    def close(self) -> None:
        """Stop the stand-ins."""
        if self.stream_service is not None:
            self.stream_service.stop()
            self.stream_service = None
        if self.stream_connection is not None:
            self.stream_connection.close()
            self.stream_connection = None
        if self.files is not None:
            self.files.stop()
            self.files = None
        if self.standin is not None:
            self.standin.close()
            self.standin = None


register_scenario("aws", AwsScenario)

"""A rig for the AWS orchestrator tests: the AWS stand-in (Jobs + streams + HTTP files) on a real mosquitto, and
a simulated MCU device (SimFlash, bootloader model, MCUboot images) running ``AwsOrchestrator`` in this process.

``reboot()`` stops the orchestrator, runs the bootloader and builds a new orchestrator over the same flash and
state, which is what a device restart does.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from ota_boot import Bootloader, McuBootControl, SimFlash
from ota_cloud.aws import AwsIotStandIn, thing_arn
from ota_cloud.aws_streams import StreamDataPlane, StreamStore
from ota_cloud.broker import MosquittoBroker
from ota_cloud.file_server import RangeFileServer
from ota_core.clock import Clock
from ota_core.engine import EngineConfig, EngineEvent, EngineEventKind, SelfTestContext
from ota_core.mqtt import MqttConnection, MqttMessage, MqttSettings
from ota_core.state_store import FileStateStore
from ota_core.update_control import UpdateControl
from ota_orchestrators.aws import AwsOrchestrator, AwsSettings
from ota_orchestrators.demo import Firmware, build_firmware
from ota_orchestrators.simulated_device import DeviceConfig, FlashGeometry, layout_for
from ota_stream import HttpDownloadConfig, MqttStreamConfig
from ota_verify import KeyRing, McubootVerifier, PlanVerifier

IMAGE_SIZE = 96 * 1024
GEOMETRY = FlashGeometry(sector_size=4096, image_sectors=40, write_alignment=4)


class AwsCloud:
    """The AWS stand-in, its stream service and a file server, plus a recorder of every status update sent."""

    def __init__(self, broker: MosquittoBroker, directory: Path) -> None:
        self.broker = broker
        self.standin = AwsIotStandIn(broker.url, directory / "aws-state", tick_interval=0.05)
        self.standin.start()
        self.streams = StreamStore()
        self._stream_connection = MqttConnection(MqttSettings(broker_url=broker.url, client_id="stream-service"))
        self._stream_connection.connect()
        self.stream_service = StreamDataPlane(self._stream_connection, self.streams)
        self.stream_service.start()
        self.files = RangeFileServer()
        self.files.start()
        self.history: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._recorder = MqttConnection(MqttSettings(broker_url=broker.url, client_id="history-recorder"))
        self._recorder.connect()
        self._recorder.subscribe("$aws/things/+/jobs/+/update", self._record, qos=1)

    def _record(self, message: MqttMessage) -> None:
        job_id = message.topic.split("/")[4]
        body = json.loads(message.payload)
        with self._lock:
            self.history.setdefault(job_id, []).append(
                {"status": body.get("status"), "details": body.get("statusDetails", {})}
            )

    def statuses(self, job_id: str) -> list[str]:
        """The statuses the device sent for ``job_id``, consecutive repeats collapsed."""
        with self._lock:
            sent = [str(entry["status"]) for entry in self.history.get(job_id, [])]
        return [status for index, status in enumerate(sent) if index == 0 or sent[index - 1] != status]

    def details(self, job_id: str) -> list[dict[str, str]]:
        """Every statusDetails the device sent for ``job_id``."""
        with self._lock:
            return [dict(entry["details"]) for entry in self.history.get(job_id, [])]

    def add_thing(self, name: str) -> None:
        self.standin.service.create_thing(name)

    def create_job(self, job_id: str, thing: str, document: dict[str, Any]) -> None:
        _reply, out = self.standin.service.create_job(
            job_id, {"document": json.dumps(document), "targets": [thing_arn(thing)]}
        )
        self.standin.publish(out)

    def publish_mqtt(self, job_id: str, thing: str, firmware: Firmware) -> None:
        """An ``afr_ota`` job whose file is an MQTT stream."""
        stream = f"AFR_OTA-{job_id}"
        self.streams.create_stream(stream, [{"fileId": 0, "data": firmware.image}])
        self.create_job(job_id, thing, afr_ota_document(stream, firmware))

    def publish_http(self, job_id: str, thing: str, firmware: Firmware) -> None:
        """An ``ota_http`` job whose file is served over loopback HTTP."""
        url = self.files.add_file(f"{job_id}.bin", firmware.image)
        self.create_job(job_id, thing, http_document(url, firmware))

    def cancel(self, job_id: str) -> None:
        _reply, out = self.standin.service.cancel_job(job_id, force=True)
        self.standin.publish(out)

    def execution(self, job_id: str, thing: str) -> tuple[str, dict[str, str]]:
        execution = self.standin.service.describe_job_execution(job_id, thing, None)["execution"]
        return str(execution["status"]), dict(execution["statusDetails"]["detailsMap"])

    def wait_status(self, job_id: str, thing: str, status: str, timeout: float = 20.0) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while True:
            current, details = self.execution(job_id, thing)
            if current == status:
                return details
            if time.monotonic() > deadline:
                raise AssertionError(f"{job_id}: {current} {details}, expected {status}")
            time.sleep(0.05)

    def close(self) -> None:
        self._recorder.close()
        self.stream_service.stop()
        self._stream_connection.close()
        self.files.stop()
        self.standin.close()


def afr_ota_document(stream: str, firmware: Firmware) -> dict[str, Any]:
    return {
        "afr_ota": {
            "protocols": ["MQTT"],
            "streamname": stream,
            "files": [
                {
                    "filepath": "firmware.bin",
                    "filesize": len(firmware.image),
                    "fileid": 0,
                    "certfile": None,
                    "sig-sha256-ecdsa": firmware.signature_b64,
                }
            ],
        }
    }


def http_document(url: str, firmware: Firmware) -> dict[str, Any]:
    return {
        "ota_http": {
            "schema_version": 1,
            "version": firmware.version,
            "files": [{"name": "firmware.bin", "url": url, "size": len(firmware.image), "sha256": firmware.sha256}],
        }
    }


class Keys:
    """A signing key, its public PEM file, and firmware images built with it."""

    def __init__(self, directory: Path) -> None:
        from cryptography.hazmat.primitives import serialization

        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.public = self.private.public_key()
        self.public_file = directory / "key.pub.pem"
        self.public_file.write_bytes(
            self.public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        self._built: dict[str, Firmware] = {}

    def firmware(self, version: str, size: int = IMAGE_SIZE) -> Firmware:
        if version not in self._built:
            self._built[version] = build_firmware(self.directory, self.private, version, size)
        return self._built[version]


class Device:
    """A simulated MCU running the AWS orchestrator in this process."""

    def __init__(
        self,
        cloud: AwsCloud,
        keys: Keys,
        directory: Path,
        thing: str,
        *,
        self_test: Callable[[SelfTestContext], bool] | None = None,
        control_clock: Clock | None = None,
        stream: MqttStreamConfig | None = None,
    ) -> None:
        self.cloud = cloud
        self.thing = thing
        self.directory = directory
        self.config = DeviceConfig(flow="aws", device_dir=directory, public_key=keys.public_file, flash=GEOMETRY)
        self.layout = layout_for(self.config)
        directory.mkdir(parents=True, exist_ok=True)
        self.flash = SimFlash.create(directory / "flash.bin", self.layout.flash)
        image = keys.firmware("1.0.0").image
        self.flash.write(self.layout.primary_offset, image + b"\xff" * (-len(image) % 4))
        self.images = McubootVerifier(KeyRing([keys.public]))
        self.keys = keys
        self.self_test = self_test
        self.control_clock = control_clock
        self.stream = stream or MqttStreamConfig(
            block_size=16 * 1024, save_interval_bytes=16 * 1024, progress_interval=0.0
        )
        self.events: list[EngineEvent] = []
        self.restarts = 0
        self.booted: list[str] = []
        self.orchestrator: AwsOrchestrator | None = None
        self.control: UpdateControl | None = None
        cloud.add_thing(thing)
        self._boot()

    def _boot(self) -> None:
        result = Bootloader(self.flash, self.layout, self.images).boot()
        self.booted.append(str(result.image.version))

    @property
    def running(self) -> str:
        return self.booted[-1]

    def start(self) -> AwsOrchestrator:
        store = FileStateStore(self.config.state_dir)
        self.control = UpdateControl(store, clock=self.control_clock)
        settings = AwsSettings(
            thing_name=self.thing,
            mqtt=MqttSettings(broker_url=self.cloud.broker.url, client_id=self.thing, connect_timeout=5.0),
            state_dir=self.config.state_dir,
            allow_http=True,
            require_signature=False,
            stream=self.stream,
            http=HttpDownloadConfig(chunk_size=16 * 1024, save_interval_bytes=16 * 1024, progress_interval=0.0),
            engine=EngineConfig(report_retry_delays=(0.2,), poll_interval=0.2, self_test_timeout=3.0),
        )
        boot = McuBootControl(self.flash, self.layout, self.images, state_store=store)
        orchestrator = AwsOrchestrator(
            settings,
            verifier=PlanVerifier(key_ring=KeyRing([self.keys.public]), mcuboot=self.images),
            boot_control=boot,
            restart=self._restart,
            self_test=self.self_test,
            update_control=self.control,
        )
        orchestrator.engine.add_listener(self.events.append)
        orchestrator.start()
        self.orchestrator = orchestrator
        return orchestrator

    def _restart(self) -> None:
        self.restarts += 1

    def stop(self) -> None:
        if self.orchestrator is not None:
            self.orchestrator.stop()
            self.orchestrator = None

    def reboot(self) -> AwsOrchestrator:
        self.stop()
        self._boot()
        return self.start()

    def kinds(self) -> list[EngineEventKind]:
        return [event.kind for event in list(self.events)]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} not reached; events: {[str(kind) for kind in self.kinds()]}")
            time.sleep(0.02)

    def wait_restart(self, count: int = 1) -> None:
        self.wait_for(lambda: self.restarts >= count, what=f"restart {count}")

    def wait_finished(self) -> EngineEvent:
        self.wait_for(lambda: EngineEventKind.FINISHED in self.kinds(), what="finished")
        return next(event for event in self.events if event.kind is EngineEventKind.FINISHED)


@pytest.fixture(name="aws_cloud")
def aws_cloud_fixture(mosquitto: MosquittoBroker, tmp_path: Path) -> Iterator[AwsCloud]:
    cloud = AwsCloud(mosquitto, tmp_path / "cloud")
    try:
        yield cloud
    finally:
        cloud.close()


@pytest.fixture(name="keys")
def keys_fixture(tmp_path: Path) -> Keys:
    return Keys(tmp_path / "keys")


@pytest.fixture(name="make_device")
def make_device_fixture(aws_cloud: AwsCloud, keys: Keys, tmp_path: Path) -> Iterator[Callable[..., Device]]:
    made: list[Device] = []

    def make(thing: str = "device-1", **options: Any) -> Device:
        device = Device(aws_cloud, keys, tmp_path / thing, thing, **options)
        made.append(device)
        return device

    yield make
    for device in made:
        device.stop()

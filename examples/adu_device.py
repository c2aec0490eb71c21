"""A Device Update (ADU) device: the ``deviceUpdate`` agent over a simulated MCU flash with two slots.

Against the local stand-in (a private mosquitto, the Azure stand-in's Device Update service, loopback only):

    python examples/adu_device.py local                    # imports and deploys firmware 1.0.1; Succeeded
    python examples/adu_device.py local --fail-self-test   # the new image fails its self-test: Failed, 1.0.0 runs

Against a real IoT Hub with Device Update (the device trusts Microsoft's root keys; the update's image must be
a demo image built with ``ota_boot.build_demo_image`` because the simulated bootloader checks it):

    python examples/adu_device.py hub --connection-string "HostName=...;DeviceId=...;SharedAccessKey=..." \\
        --ca-file /etc/ssl/certs/ca-certificates.crt --state-dir ./adu-device

A restart is simulated in the process: the agent stops, the bootloader model runs over the flash file, a new
agent starts over the same state directory.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import load_pem_public_key

from ota_boot import BootLayout, Bootloader, DemoImageValidator, McuBootControl, SimFlash, build_demo_image
from ota_core import FileStateStore, OtaError
from ota_core.engine import EngineEvent, EngineEventKind, EngineState, SelfTestContext
from ota_core.mqtt import MqttConnection, MqttSettings
from ota_jobs.azure import ADU_MODEL_ID, AduUpdateId, IotHubSettings, TwinClient, parse_connection_string
from ota_orchestrators.adu import AduAgent, AduSettings, describe_agent

LAYOUT = BootLayout.simple(sector_size=4096, image_sectors=32, write_alignment=4)
FACTORY = AduUpdateId("Contoso", "Sim", "1.0.0")
DEVICE_KEY = "bW9kdWxhci1vdGEgZXhhbXBsZSBkZXZpY2Uga2V5ISE="


def firmware(version: str) -> bytes:
    """A demo firmware image of about 100 KB."""
    return build_demo_image(f"firmware {version} ".encode() * 6000, version)


class Device:
    """The simulated device: flash file, state directory, and one agent per power-on."""

    def __init__(self, directory: Path, mqtt: MqttSettings, settings: AduSettings,
                 self_test: Callable[[SelfTestContext], bool]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        flash_path = directory / "flash.bin"
        if not flash_path.exists():
            flash = SimFlash.create(flash_path, LAYOUT.flash)
            image = firmware("1.0.0")
            flash.write(LAYOUT.primary_offset, image + b"\xff" * (-len(image) % 4))
        self.flash = SimFlash.open(flash_path)
        self.validator = DemoImageValidator()
        self.store = FileStateStore(directory / "state")
        self.mqtt, self.settings, self.self_test = mqtt, settings, self_test
        self.restart = threading.Event()
        self.agent: AduAgent | None = None
        self._connection: MqttConnection | None = None

    def power_on(self, listener: Callable[[EngineEvent], None]) -> AduAgent:
        """Run the bootloader, connect, and start the agent."""
        booted = Bootloader(self.flash, LAYOUT, self.validator).boot()
        print(f"device: booted firmware {booted.image.version}")
        self._connection = MqttConnection(self.mqtt)
        self._connection.connect()
        self.restart.clear()
        self.agent = AduAgent(
            self.settings, client=TwinClient(self._connection),
            boot_control=McuBootControl(self.flash, LAYOUT, self.validator), state_store=self.store,
            restart=self.restart.set, self_test=self.self_test,
        )
        self.agent.engine.add_listener(listener)
        self.agent.start()
        return self.agent

    def power_off(self) -> None:
        """Stop the agent and drop the connection."""
        if self.agent is not None:
            self.agent.stop()
        if self._connection is not None:
            self._connection.close()
        self.agent = self._connection = None


def show(event: EngineEvent) -> None:
    """Print engine events worth seeing."""
    if event.kind is EngineEventKind.STATE:
        print(f"device: {event.state}")
    elif event.kind is EngineEventKind.FINISHED:
        print(f"device: finished {event.job_id}: {event.status}")
    elif event.kind in (EngineEventKind.WAITING, EngineEventKind.CANCELLED, EngineEventKind.RESTART_REQUESTED):
        print(f"device: {event.kind} {event.message}")


def run_device(device: Device, done: Callable[[], bool], timeout: float) -> bool:
    """Power the device on and restart it whenever the engine asks, until ``done()`` or the timeout."""
    deadline = time.monotonic() + timeout
    device.power_on(show)
    try:
        while time.monotonic() < deadline:
            if device.restart.wait(0.1):
                print("device: power cycle")
                device.power_off()
                device.power_on(show)
                continue
            agent = device.agent
            if agent is not None and agent.engine.state is EngineState.IDLE and done():
                return True
        return False
    finally:
        device.power_off()


def local(fail_self_test: bool) -> int:
    """Broker, stand-in, import, deploy, device: the whole flow on loopback."""
    from ota_cloud.azure import AzureStandIn  # noqa: PLC0415 - only the local mode needs the stand-in
    from ota_cloud.broker import MosquittoBroker  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as temporary, MosquittoBroker() as broker:
        work = Path(temporary)
        with AzureStandIn(broker.url, work / "cloud", key_size=2048) as cloud:
            cloud.hub.register_device("sim-1", DEVICE_KEY)
            keys = cloud.adu.keys
            settings = AduSettings(
                manufacturer="Contoso", model="Sim", initial_update_id=FACTORY, microsoft_roots=False,
                trusted_roots={keys.root_kid: load_pem_public_key(keys.root_public_pem())},  # type: ignore[dict-item]
            )
            mqtt = IotHubSettings(
                hostname="example.azure-devices.net", device_id="sim-1", shared_access_key=DEVICE_KEY,
                gateway_host=broker.host, port=broker.port, use_tls=False, model_id=ADU_MODEL_ID,
                topic_prefix=cloud.hub.prefix_for("sim-1"),
            ).to_mqtt_settings()
            device = Device(work / "device", mqtt, settings, lambda _context: not fail_self_test)
            image = firmware("1.0.1")
            update = cloud.adu.import_update(_import_manifest(image), {"firmware-1.0.1.bin": image})
            print(f"cloud: imported {update}")
            cloud.adu.create_deployment("demo-1", update, ["sim-1"])
            print("cloud: deployment demo-1 created")
            expected = "Failed" if fail_self_test else "Succeeded"

            def settled() -> bool:
                return bool(cloud.adu.deployment_status("demo-1")["devices"]["sim-1"]["state"] == expected)

            reached = run_device(device, settled, timeout=60)
            print(f"cloud: agent {describe_agent(cloud.adu.agent('sim-1'))}")
            if reached:
                print(f"OK: deployment demo-1 ended {expected}, as expected")
            else:
                print(f"NOT REACHED: deployment demo-1 did not end {expected}")
            return 0 if reached else 1


def _import_manifest(image: bytes) -> dict[str, Any]:
    import base64  # noqa: PLC0415
    import hashlib  # noqa: PLC0415

    return {
        "manifestVersion": "5.0",
        "updateId": {"provider": "Contoso", "name": "Sim", "version": "1.0.1"},
        "compatibility": [{"manufacturer": "Contoso", "model": "Sim"}],
        "instructions": {"steps": [{"handler": "microsoft/swupdate:2", "files": ["firmware-1.0.1.bin"],
                                    "handlerProperties": {"installedCriteria": "1.0.1"}}]},
        "files": [{"filename": "firmware-1.0.1.bin", "sizeInBytes": len(image),
                   "hashes": {"sha256": base64.b64encode(hashlib.sha256(image).digest()).decode()}}],
        "createdDateTime": "2026-01-01T00:00:00Z",
    }


def hub(connection_string: str, ca_file: str, state_dir: Path, manufacturer: str, model: str) -> int:
    """Run against a real IoT Hub until Ctrl-C."""
    mqtt = parse_connection_string(connection_string, ca_file=ca_file, model_id=ADU_MODEL_ID).to_mqtt_settings()
    settings = AduSettings(manufacturer=manufacturer, model=model, initial_update_id=FACTORY)
    device = Device(state_dir, mqtt, settings, lambda _context: True)
    print(json.dumps({"device": mqtt.client_id, "state": str(state_dir)}))
    try:
        run_device(device, lambda: False, timeout=float("inf"))
    except KeyboardInterrupt:
        print("stopped")
    return 0


def main() -> int:
    """Parse the command line and run one mode."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    modes = parser.add_subparsers(dest="mode", required=True)
    local_mode = modes.add_parser("local", help="everything on loopback with the Azure stand-in")
    local_mode.add_argument("--fail-self-test", action="store_true")
    hub_mode = modes.add_parser("hub", help="a real IoT Hub with Device Update")
    hub_mode.add_argument("--connection-string", required=True)
    hub_mode.add_argument("--ca-file", required=True)
    hub_mode.add_argument("--state-dir", type=Path, default=Path("adu-device"))
    hub_mode.add_argument("--manufacturer", default="Contoso")
    hub_mode.add_argument("--model", default="Sim")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    try:
        if arguments.mode == "local":
            return local(arguments.fail_self_test)
        return hub(arguments.connection_string, arguments.ca_file, arguments.state_dir, arguments.manufacturer,
                   arguments.model)
    except OtaError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""A simulated Device Update device for the orchestrator tests: file-backed slots, a state store, an ADU agent
over a real broker and the Azure stand-in. ``reboot()`` is a device restart (new connection, new agent)."""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import load_pem_public_key

from ota_core import FileStateStore
from ota_core.engine import EngineConfig, EngineEvent, SelfTestContext
from ota_core.mqtt import MqttConnection
from ota_core.protocols import JobSource
from ota_core.update_control import UpdateControl
from ota_jobs.azure import ADU_MODEL_ID, AduUpdateId, IotHubSettings, RetryPolicy, TwinClient
from ota_orchestrators.adu import AduAgent, AduSettings
from ota_stream import HttpDownloadConfig
from tests.engine_fixtures import FileBootControl, make_image

DEVICE_KEY = "NMgJDvdKTxjLi+xBxxkDDEwDJxEvOE5u8BiT0mVgPeg="
HUB = "modular-ota.azure-devices.net"
FACTORY = AduUpdateId("Contoso", "Sim", "1.0.0")
IMAGE_SIZE = 96 * 1024


def firmware(version: str, size: int = IMAGE_SIZE) -> bytes:
    """A test image that declares its version (read back by the test boot control)."""
    return make_image(version, size)


def import_manifest(version: str, data: bytes, name: str | None = None) -> dict[str, Any]:
    """An import manifest for one firmware file, compatible with Contoso/Sim devices."""
    name = name or f"firmware-{version}.bin"
    return {
        "manifestVersion": "5.0",
        "updateId": {"provider": "Contoso", "name": "Sim", "version": version},
        "compatibility": [{"manufacturer": "Contoso", "model": "Sim"}],
        "instructions": {"steps": [{"handler": "microsoft/swupdate:2", "files": [name],
                                    "handlerProperties": {"installedCriteria": version}}]},
        "files": [{"filename": name, "sizeInBytes": len(data),
                   "hashes": {"sha256": base64.b64encode(hashlib.sha256(data).digest()).decode()}}],
        "createdDateTime": "2026-01-01T00:00:00Z",
    }


def root_key_from_pem(pem: bytes) -> Any:
    """The stand-in's root public key from PEM."""
    return load_pem_public_key(pem)


class AduDevice:
    """One simulated device: persistent directory, boot control, and an agent per power-on."""

    def __init__(
        self,
        work: Path,
        *,
        broker_host: str,
        broker_port: int,
        topic_prefix: str,
        device_id: str,
        root_kid: str,
        root_pem: bytes,
        self_test: Callable[[SelfTestContext], bool] | None = None,
        control: bool = False,
        fault_hook: Callable[[str], None] | None = None,
        files_dir: bool = False,
        image_file: str | None = None,
        job_source_wrapper: Callable[[JobSource], JobSource] | None = None,
    ) -> None:
        self.work = work
        self.boot = FileBootControl(work / "boot")
        self.store = FileStateStore(work / "state")
        self.control = UpdateControl(self.store) if control else None
        self.device_id = device_id
        self._mqtt = IotHubSettings(
            hostname=HUB, device_id=device_id, shared_access_key=DEVICE_KEY, gateway_host=broker_host,
            port=broker_port, use_tls=False, model_id=ADU_MODEL_ID, topic_prefix=topic_prefix,
        ).to_mqtt_settings()
        self.settings = AduSettings(
            manufacturer="Contoso", model="Sim",
            trusted_roots={root_kid: root_key_from_pem(root_pem)},
            microsoft_roots=False,
            initial_update_id=FACTORY,
            files_dir=work / "files" if files_dir else None,
            image_file=image_file,
            report_timeout=10.0,
            engine=EngineConfig(name="adu", report_retry_delays=(0.2, 0.5), poll_interval=0.5,
                                self_test_timeout=5.0, fault_hook=fault_hook),
            http=HttpDownloadConfig(allow_insecure_http=True, progress_interval=0.0, chunk_size=16 * 1024),
        )
        self.self_test = self_test
        self.job_source_wrapper = job_source_wrapper
        self.restarted = threading.Event()
        self.events: list[EngineEvent] = []
        self.agent: AduAgent | None = None
        self._connection: MqttConnection | None = None
        self._client: TwinClient | None = None

    def power_on(self) -> AduAgent:
        """Connect and start a new agent over the persistent state (the bootloader ran before)."""
        connection = MqttConnection(self._mqtt)
        connection.connect()
        client = TwinClient(connection, retry=RetryPolicy(initial_delay=0.05, max_delay=0.2, response_timeout=5.0))
        self.restarted.clear()
        agent = AduAgent(
            self.settings, client=client, boot_control=self.boot, state_store=self.store,
            restart=self.restarted.set, self_test=self.self_test, update_control=self.control,
            job_source_wrapper=self.job_source_wrapper,
        )
        agent.engine.add_listener(self.events.append)
        self._connection, self._client, self.agent = connection, client, agent
        agent.start()
        return agent

    def power_off(self) -> None:
        """Stop the agent and drop the connection."""
        if self.agent is not None:
            self.agent.stop()
        if self._connection is not None:
            self._connection.close()
        self.agent = self._connection = self._client = None

    def reboot(self) -> AduAgent:
        """A device restart: agent down, the bootloader decides, agent up again."""
        self.power_off()
        self.boot.boot()
        return self.power_on()


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()

"""A simulated MXChip-like device for the Azure twin orchestrator tests, in-process or as a child process.

The device keeps a file-backed NOR flash with an MCUboot-style bootloader; every power-on runs the
bootloader (swap or revert), then builds an ``AzureTwinDevice`` over the same state directory. Images are
signed MCUboot images; the device trusts one ECDSA P-256 key.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from ota_boot import BootLayout, Bootloader, McuBootControl, SimFlash
from ota_cloud.azure import AzureStandIn
from ota_core.engine import EngineConfig, SelfTest
from ota_core.protocols import StateStore
from ota_core.update_control import UpdateControl
from ota_jobs.azure import DEVKIT_VOCABULARY, FirmwareVocabulary, IotHubSettings, RetryPolicy, crc16_xmodem
from ota_orchestrators.azure_twin import AzureTwinDevice, AzureTwinSettings
from ota_stream import HttpDownloadConfig
from ota_verify import KeyRing, McubootVerifier, McubootVersion, PlanVerifier, SignOptions, sign_image
from ota_verify.keys import load_private_key
from ota_verify.tools import generate_private_key, private_key_pem

LAYOUT = BootLayout.simple(sector_size=4096, image_sectors=16, write_alignment=4)
DEVICE_KEY = "NMgJDvdKTxjLi+xBxxkDDEwDJxEvOE5u8BiT0mVgPeg="
HUB = "modular-ota.azure-devices.net"
FAST_ENGINE = EngineConfig(report_retry_delays=(0.2,), poll_interval=0.5, self_test_timeout=5.0)
FAST_HTTP = HttpDownloadConfig(chunk_size=4096, progress_interval=0.0, max_attempts=2)

_KEY_PEM: list[bytes] = []


def signing_key_pem() -> bytes:
    """One ECDSA P-256 release key per test session (PEM)."""
    if not _KEY_PEM:
        _KEY_PEM.append(private_key_pem(generate_private_key("ecdsa-p256")))
    return _KEY_PEM[0]


def build_firmware(version: str, size: int = 24 * 1024, key_pem: bytes | None = None) -> bytes:
    """A signed MCUboot image of about ``size`` bytes for ``version`` (x.y.z)."""
    major, minor, revision = (int(part) for part in version.split("."))
    seed = f"firmware {version} ".encode()
    payload = (seed * (size // len(seed) + 1))[:size]
    key = load_private_key(key_pem or signing_key_pem())
    return sign_image(payload, key, SignOptions(version=McubootVersion(major, minor, revision), pad_header=True))


def check_value(image: bytes) -> str:
    """The DevKit check value of an image (unpadded lower-case hex CRC-16/XMODEM)."""
    return format(crc16_xmodem(image), "x")


def validator(key_pem: bytes | None = None) -> McubootVerifier:
    """The boot-time and download-time image check: signed by the release key."""
    key = load_private_key(key_pem or signing_key_pem())
    return McubootVerifier(KeyRing([key.public_key()]))


@attrs.frozen
class DeviceSpec:
    """Everything a power-on needs (also written as JSON for the child process)."""

    work: str
    device_id: str
    broker_host: str
    broker_port: int
    topic_prefix: str
    key_pem: str
    self_test: str = "pass"
    vocabulary: str = "devkit"

    def to_json(self) -> str:
        return json.dumps(attrs.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> DeviceSpec:
        return cls(**json.loads(text))


def make_spec(work: Path, cloud: AzureStandIn, broker_host: str, broker_port: int, device_id: str,
              **changes: Any) -> DeviceSpec:
    """Register ``device_id`` with the stand-in and describe a device for it (factory image 1.0.0)."""
    cloud.hub.register_device(device_id, DEVICE_KEY)
    work.mkdir(parents=True, exist_ok=True)
    spec = DeviceSpec(str(work), device_id, broker_host, broker_port, cloud.hub.prefix_for(device_id),
                      signing_key_pem().decode(), **changes)
    factory_flash(spec)
    return spec


def factory_flash(spec: DeviceSpec) -> None:
    """Create the flash with the factory image 1.0.0 in the primary slot (once)."""
    path = Path(spec.work) / "flash.bin"
    if path.exists():
        return
    flash = SimFlash.create(path, LAYOUT.flash)
    image = build_firmware("1.0.0", key_pem=spec.key_pem.encode())
    flash.write(LAYOUT.primary_offset, image + b"\xff" * (-len(image) % 4))


def boot(spec: DeviceSpec) -> tuple[SimFlash, McuBootControl]:
    """Power-on: open the flash, run the bootloader, return the application's boot control."""
    flash = SimFlash.open(Path(spec.work) / "flash.bin")
    check = validator(spec.key_pem.encode())
    Bootloader(flash, LAYOUT, check).boot()
    return flash, McuBootControl(flash, LAYOUT, check)


def settings_for(spec: DeviceSpec, *, engine: EngineConfig = FAST_ENGINE,
                 vocabulary: FirmwareVocabulary | None = None) -> AzureTwinSettings:
    """Settings for the stand-in: plain MQTT on loopback, the device's topic prefix, HTTP allowed."""
    from ota_jobs.azure import TUTORIAL_VOCABULARY

    hub = IotHubSettings(hostname=HUB, device_id=spec.device_id, shared_access_key=DEVICE_KEY,
                         gateway_host=spec.broker_host, port=spec.broker_port, use_tls=False,
                         topic_prefix=spec.topic_prefix)
    chosen = vocabulary or (TUTORIAL_VOCABULARY if spec.vocabulary == "tutorial" else DEVKIT_VOCABULARY)
    return AzureTwinSettings(hub=hub, state_dir=str(Path(spec.work) / "state"), vocabulary=chosen,
                             allow_http=True, engine=engine, http=FAST_HTTP,
                             retry=RetryPolicy(initial_delay=0.05, max_delay=0.2, response_timeout=5.0),
                             report_timeout=10.0)


class SimDevice:
    """An in-process device: ``power_on()`` boots and starts the orchestrator; ``restarted`` is set when
    the engine asks for a restart, and ``reboot()`` does it."""

    def __init__(self, spec: DeviceSpec, *, self_test: SelfTest | None = None,
                 engine: EngineConfig = FAST_ENGINE,
                 control_factory: Callable[[StateStore], UpdateControl] | None = None) -> None:
        self.spec = spec
        self.self_test = self_test
        self.engine_config = engine
        self.control_factory = control_factory
        self.restarted = threading.Event()
        self.device: AzureTwinDevice | None = None
        self.boot_control: McuBootControl | None = None

    def power_on(self) -> AzureTwinDevice:
        """Boot the flash and start a fresh orchestrator over the persisted state."""
        from ota_core.state_store import FileStateStore

        _flash, control = boot(self.spec)
        self.boot_control = control
        self.restarted.clear()
        settings = settings_for(self.spec, engine=self.engine_config)
        Path(settings.state_dir).mkdir(parents=True, exist_ok=True)
        store = FileStateStore(settings.state_dir)
        policy = self.control_factory(store) if self.control_factory is not None else None
        self.device = AzureTwinDevice(
            settings, boot_control=control, verifier=PlanVerifier(mcuboot=validator(self.spec.key_pem.encode())),
            restart=self.restarted.set, self_test=self.self_test, state_store=store, update_control=policy)
        self.device.start()
        return self.device

    def power_off(self) -> None:
        """Stop the orchestrator (a clean stop; the state stays)."""
        if self.device is not None:
            self.device.stop()
            self.device = None

    def reboot(self) -> AzureTwinDevice:
        """Power off and on again."""
        self.power_off()
        return self.power_on()

    def running(self) -> tuple[str | None, bool]:
        """The version the running image has and whether it runs on trial."""
        assert self.boot_control is not None
        state = self.boot_control.state()
        return (None if state.running_version is None else str(state.running_version)), state.in_trial

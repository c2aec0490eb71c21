"""End to end: the Azure twin firmware orchestrator against the Azure stand-in on a real mosquitto.

Each device is in-process (its restart is a power-off and power-on over the same flash file and state
directory); the cloud is the stand-in's hub, MXChip rollout view and HTTP file server on loopback.
"""

from __future__ import annotations

import datetime
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest

from ota_cloud.azure import AzureStandIn
from ota_cloud.broker import MosquittoBroker
from ota_core.clock import ManualClock
from ota_core.engine import EngineConfig, EngineState, SelfTestContext
from ota_core.protocols import JobSource, StateStore
from ota_core.update_control import UpdateControl
from ota_orchestrators.azure_twin import AzureTwinDevice
from ota_verify import McubootVersion, PlanVerifier, SignOptions, sign_image
from tests.azure_fixtures import session_keys
from tests.azure_twin_rig import (
    FAST_ENGINE,
    DeviceSpec,
    SimDevice,
    boot,
    build_firmware,
    check_value,
    make_spec,
    settings_for,
    validator,
)

TIMEOUT = 20.0


class CloudView:
    """What the cloud saw: every accepted reported ``firmware`` patch per device."""

    def __init__(self, cloud: AzureStandIn) -> None:
        self.cloud = cloud
        self._lock = threading.Lock()
        self.patches: dict[str, list[dict[str, Any]]] = defaultdict(list)
        cloud.hub.on_reported(self._on_reported)

    def _on_reported(self, device_id: str, patch: Mapping[str, Any], _twin: object) -> None:
        firmware = patch.get("firmware")
        if isinstance(firmware, dict):
            with self._lock:
                self.patches[device_id].append(dict(firmware))

    def statuses(self, device_id: str) -> list[str]:
        """The reported statuses in order, consecutive repeats folded."""
        with self._lock:
            seen = [p["fwUpdateStatus"] for p in self.patches[device_id] if "fwUpdateStatus" in p]
        return [s for i, s in enumerate(seen) if i == 0 or seen[i - 1] != s]

    def reported(self, device_id: str) -> dict[str, Any]:
        """The reported ``firmware`` in the twin now."""
        firmware = self.cloud.hub.twins.get(device_id).reported.get("firmware")
        return dict(firmware) if isinstance(firmware, dict) else {}

    def wait_for(self, device_id: str, predicate: Callable[[dict[str, Any]], bool],
                 timeout: float = TIMEOUT) -> dict[str, Any]:
        """Wait until the reported firmware satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reported = self.reported(device_id)
            if predicate(reported):
                return reported
            time.sleep(0.05)
        raise AssertionError(f"{device_id}: reported firmware stayed {self.reported(device_id)}; "
                             f"history {self.statuses(device_id)}")


@pytest.fixture
def cloud(mosquitto: MosquittoBroker, tmp_path: Path) -> Iterator[AzureStandIn]:
    standin = AzureStandIn(mosquitto.url, tmp_path / "azure-state", keys=session_keys(), admin_port=None)
    standin.start()
    try:
        yield standin
    finally:
        standin.close()


@pytest.fixture
def view(cloud: AzureStandIn) -> CloudView:
    return CloudView(cloud)


Spec = Callable[..., DeviceSpec]


@pytest.fixture
def spec(cloud: AzureStandIn, mosquitto: MosquittoBroker, tmp_path: Path) -> Spec:
    def make(device_id: str = "dev1", **changes: Any) -> DeviceSpec:
        return make_spec(tmp_path / device_id, cloud, mosquitto.host, mosquitto.port, device_id, **changes)

    return make


@pytest.fixture
def devices() -> Iterator[list[SimDevice]]:
    made: list[SimDevice] = []
    yield made
    for device in made:
        device.power_off()


def publish(cloud: AzureStandIn, device_ids: list[str], version: str = "1.0.1", *,
            image: bytes | None = None, **overrides: Any) -> bytes:
    """Serve a signed image for ``version`` and point the devices' desired firmware at it."""
    image = image if image is not None else build_firmware(version)
    url = cloud.files.add_file(f"fw-{version}.bin", image)
    options: dict[str, Any] = {"uri": url, "check_value": check_value(image), "size": len(image)}
    options.update(overrides)
    cloud.mxchip.set_firmware(device_ids, version=version, **options)
    return image


def run_until_restart(device: SimDevice, timeout: float = TIMEOUT) -> None:
    assert device.restarted.wait(timeout), "the engine never asked for a restart"


def updated(version: str) -> Callable[[dict[str, Any]], bool]:
    return lambda r: r.get("fwUpdateStatus") == "Current" and r.get("currentFwVersion") == version


def failed(r: dict[str, Any]) -> bool:
    return r.get("fwUpdateStatus") in ("Error", "error", "rolledback")


def test_success_reports_the_devkit_statuses_and_runs_the_new_image(
        cloud: AzureStandIn, view: CloudView, spec: Spec, devices: list[SimDevice]) -> None:
    device = SimDevice(spec())
    devices.append(device)
    device.power_on()
    view.wait_for("dev1", updated("1.0.0"))
    publish(cloud, ["dev1"])
    run_until_restart(device)
    device.reboot()
    final = view.wait_for("dev1", updated("1.0.1"))
    assert device.running() == ("1.0.1", False)
    assert view.statuses("dev1") == ["Current", "Downloading", "Verifying", "Applying", "Current"]
    assert final["type"] == "IoTDevKit" and final["pendingFwVersion"] == ""
    assert final["lastFwUpdateStartTime"].endswith(".0000000Z") and final["lastFwUpdateEndTime"].endswith("Z")
    downloading = next(p for p in view.patches["dev1"] if p.get("fwUpdateStatus") == "Downloading")
    assert downloading["fwUpdateSubstatus"].startswith("http://127.0.0.1")
    assert downloading["pendingFwVersion"] == "1.0.1"
    assert cloud.mxchip.metrics(["dev1"])["Current"] == 1
    # The same desired firmware after the update: nothing happens (not newer), Current stays.
    device.reboot()
    time.sleep(0.3)
    assert view.reported("dev1")["fwUpdateStatus"] == "Current"


def _failing_self_test(_context: SelfTestContext) -> bool:
    return False


@pytest.mark.parametrize(("vocabulary", "status"), [("devkit", "Error"), ("tutorial", "rolledback")])
def test_self_test_failure_rolls_back_and_reports_it(
        cloud: AzureStandIn, view: CloudView, spec: Spec, devices: list[SimDevice],
        vocabulary: str, status: str) -> None:
    device = SimDevice(spec(vocabulary=vocabulary), self_test=_failing_self_test)
    devices.append(device)
    device.power_on()
    publish(cloud, ["dev1"])
    run_until_restart(device)
    device.reboot()            # into the trial image: the self-test fails, the trial is reverted
    run_until_restart(device)
    view.wait_for("dev1", lambda r: r.get("fwUpdateStatus") == status)
    device.reboot()            # the bootloader goes back to 1.0.0
    reported = view.wait_for("dev1", lambda r: r.get("currentFwVersion") == "1.0.0")
    assert device.running() == ("1.0.0", False)
    assert reported["fwUpdateStatus"] == status
    assert reported["fwUpdateSubstatus"] == "Rolled back to: 1.0.0"
    expected = (["Current", "Downloading", "Verifying", "Applying", "Error"] if vocabulary == "devkit"
                else ["current", "downloading", "verifying", "applying", "rolledback"])
    assert view.statuses("dev1") == expected


def test_cancel_mid_download_reports_current_and_keeps_the_old_image(
        cloud: AzureStandIn, view: CloudView, spec: Spec, devices: list[SimDevice]) -> None:
    reached = threading.Event()
    release = threading.Event()

    def hook(point: str) -> None:
        if point.startswith("progress:0:") and int(point.rsplit(":", 1)[1]) >= 8192 and not reached.is_set():
            reached.set()
            release.wait(TIMEOUT)

    device = SimDevice(spec(), engine=_with_hook(FAST_ENGINE, hook))
    devices.append(device)
    twin = device.power_on()
    publish(cloud, ["dev1"])
    assert reached.wait(TIMEOUT)
    cloud.hub.update_desired("dev1", {"firmware": None})
    time.sleep(0.3)            # the cancel reaches the engine while the download is held
    release.set()
    view.wait_for("dev1", lambda r: r.get("fwUpdateSubstatus") == "cancelled")
    assert twin.engine.wait_until_idle(TIMEOUT) and twin.engine.state is EngineState.IDLE
    assert not device.restarted.is_set()
    assert device.running() == ("1.0.0", False)
    assert view.statuses("dev1") == ["Current", "Downloading", "Current"]
    assert twin.store.load("engine-progress") is None


def _with_hook(config: EngineConfig, hook: Callable[[str], None]) -> EngineConfig:
    return attrs.evolve(config, fault_hook=hook)


def _manual_control(clock: ManualClock) -> Callable[[StateStore], UpdateControl]:
    return lambda store: UpdateControl(store, clock=clock)


def test_target_time_of_day_from_the_twin_holds_activation_until_then(
        cloud: AzureStandIn, view: CloudView, spec: Spec, devices: list[SimDevice]) -> None:
    clock = ManualClock(datetime.datetime(2026, 11, 25, 10, 0, tzinfo=datetime.UTC))
    device = SimDevice(spec(), control_factory=_manual_control(clock))
    devices.append(device)
    twin = device.power_on()
    cloud.hub.update_desired("dev1", {"otaTargetUtcTime": "10:30:59"})
    deadline = time.monotonic() + TIMEOUT
    while cloud.hub.twins.get("dev1").reported.get("otaTargetUtcTime") != "10:30:00":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    publish(cloud, ["dev1"])
    view.wait_for("dev1", lambda r: r.get("fwUpdateStatus") == "Verifying")
    assert twin.engine.wait_until_idle(TIMEOUT)
    assert twin.engine.state is EngineState.DOWNLOADED      # downloaded at once, activation waits
    assert not device.restarted.wait(0.5)
    # A power cut while waiting: the target time holds from power-on.
    device.reboot()
    assert not device.restarted.wait(1.0)
    clock.advance(30 * 60)
    assert device.device is not None
    device.device.engine.poke()
    run_until_restart(device)
    device.reboot()
    view.wait_for("dev1", updated("1.0.1"))


def test_deferral_by_the_application_then_resume(
        cloud: AzureStandIn, view: CloudView, spec: Spec, devices: list[SimDevice]) -> None:
    clock = ManualClock(datetime.datetime(2026, 11, 25, 10, 0, tzinfo=datetime.UTC))
    device = SimDevice(spec(), control_factory=_manual_control(clock))
    devices.append(device)
    twin = device.power_on()
    with twin.control.critical_section():
        publish(cloud, ["dev1"])
        assert twin.control.pending_event.wait(TIMEOUT)
        end = twin.control.defer(60 * 48)     # asks for two days: clamped to the 24 h OS window
    assert end == datetime.datetime(2026, 11, 26, 10, 0, tzinfo=datetime.UTC)
    assert twin.engine.wait_until_idle(TIMEOUT)
    assert twin.engine.state is EngineState.DOWNLOADED
    assert not device.restarted.wait(0.5)
    twin.control.resume()
    run_until_restart(device)
    device.reboot()
    view.wait_for("dev1", updated("1.0.1"))


def test_disabled_then_enabled(cloud: AzureStandIn, view: CloudView, spec: Spec, devices: list[SimDevice]) -> None:
    device = SimDevice(spec())
    devices.append(device)
    twin = device.power_on()
    twin.control.disable()
    publish(cloud, ["dev1"])
    assert twin.control.pending_event.wait(TIMEOUT)
    assert twin.engine.wait_until_idle(TIMEOUT)
    assert twin.engine.state is EngineState.RECEIVED        # disabled holds the download too
    twin.control.enable()
    run_until_restart(device)
    device.reboot()
    view.wait_for("dev1", updated("1.0.1"))


def test_forced_update_from_the_twin_goes_through_disabled(
        cloud: AzureStandIn, view: CloudView, spec: Spec, devices: list[SimDevice]) -> None:
    device = SimDevice(spec())
    devices.append(device)
    twin = device.power_on()
    twin.control.disable()
    cloud.hub.update_desired("dev1", {"otaForceUpdate": True})
    publish(cloud, ["dev1"])
    run_until_restart(device)
    assert twin.control.forced
    assert cloud.hub.twins.get("dev1").reported.get("otaForceUpdate") is True
    device.reboot()
    view.wait_for("dev1", updated("1.0.1"))


def test_several_devices_share_one_broker_with_topic_prefixes(
        cloud: AzureStandIn, view: CloudView, spec: Spec, devices: list[SimDevice]) -> None:
    ids = ["dev-a", "dev-b", "dev-c"]
    for device_id in ids:
        device = SimDevice(spec(device_id))
        devices.append(device)
        device.power_on()
    publish(cloud, ids)
    for device in devices:
        run_until_restart(device)
        device.reboot()
    for device_id in ids:
        view.wait_for(device_id, updated("1.0.1"))
    assert cloud.mxchip.metrics(ids)["Current"] == 3
    assert all(device.running() == ("1.0.1", False) for device in devices)


def test_check_for_updates_direct_method(cloud: AzureStandIn, view: CloudView, spec: Spec,
                                         devices: list[SimDevice]) -> None:
    device = SimDevice(spec())
    devices.append(device)
    device.power_on()
    view.wait_for("dev1", updated("1.0.0"))
    status, payload = cloud.hub.invoke_method("dev1", "checkForUpdates", {}, timeout=10)
    assert status == 200 and payload == {"currentFwVersion": "1.0.0", "checking": True}


@pytest.mark.parametrize(
    ("case", "substatus"),
    [("crc", "VerifyFailed"), ("tampered", "VerifyFailed"), ("missing", "DownloadFailed"),
     ("size", "FileSizeNotMatch"), ("no-size", "FileSizeNotMatch"), ("unsigned", "VerifyFailed"),
     ("too-large", "DeviceError")],
)
def test_bad_firmware_ends_in_error_with_the_devkit_substatus_and_the_old_image(
        cloud: AzureStandIn, view: CloudView, spec: Spec, devices: list[SimDevice], case: str, substatus: str) -> None:
    device = SimDevice(spec())
    devices.append(device)
    device.power_on()
    view.wait_for("dev1", updated("1.0.0"))
    image = build_firmware("1.0.1")
    if case == "crc":
        publish(cloud, ["dev1"], image=image, check_value="1234")
    elif case == "tampered":
        bad = bytearray(image)
        bad[1000] ^= 0xFF
        publish(cloud, ["dev1"], image=bytes(bad))        # CRC matches the tampered bytes; the signature does not
    elif case == "missing":
        cloud.mxchip.set_firmware(["dev1"], version="1.0.1", uri=f"{cloud.files.url}/nothing.bin",
                                  check_value=check_value(image), size=len(image))
    elif case == "size":
        publish(cloud, ["dev1"], image=image, size=len(image) - 100)
    elif case == "no-size":
        publish(cloud, ["dev1"], image=image, size=None)
    elif case == "too-large":
        publish(cloud, ["dev1"], image=build_firmware("1.0.1", size=100 * 1024))   # the slot holds 64 KiB
    else:
        unsigned = sign_image(b"x" * 20000, None, SignOptions(version=McubootVersion(1, 0, 1), pad_header=True))
        publish(cloud, ["dev1"], image=unsigned)
    reported = view.wait_for("dev1", failed)
    assert reported["fwUpdateStatus"] == "Error"
    assert reported["fwUpdateSubstatus"] == substatus
    assert reported["currentFwVersion"] == "1.0.0" and reported["pendingFwVersion"] == "1.0.1"
    assert not device.restarted.is_set()
    assert device.running() == ("1.0.0", False)
    # After a power cycle the Error stays visible; only the running version is refreshed.
    device.reboot()
    time.sleep(0.3)
    assert view.reported("dev1")["fwUpdateStatus"] == "Error"


def test_http_uri_is_refused_unless_allowed(cloud: AzureStandIn, view: CloudView, spec: Spec,
                                            devices: list[SimDevice]) -> None:
    the_spec = spec()
    _flash, control = boot(the_spec)
    settings = attrs.evolve(settings_for(the_spec), allow_http=False)
    restarted = threading.Event()
    wrapped: list[JobSource] = []

    def wrap(source: JobSource) -> JobSource:
        wrapped.append(source)
        return source

    device = AzureTwinDevice(settings, boot_control=control, verifier=PlanVerifier(mcuboot=validator()),
                             restart=restarted.set, job_source_wrapper=wrap)
    assert wrapped == [device.source]
    device.start()
    try:
        publish(cloud, ["dev1"])
        reported = view.wait_for("dev1", failed)
        assert reported["fwUpdateSubstatus"] == "URINotHTTPS"
        assert not restarted.is_set()
    finally:
        device.stop()

"""The Device Update agent end to end: the Azure stand-in's Device Update service on a real mosquitto, files
over real HTTP, a simulated device with two slots that restarts for real (new connection, new agent)."""

from __future__ import annotations

import datetime
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest

from ota_cloud.azure import AzureStandIn
from ota_cloud.broker import MosquittoBroker
from ota_core.engine import EngineEventKind, EngineState, SelfTestContext
from ota_core.models import JobEvent, JobStatus, StatusReport
from ota_core.protocols import JobSource
from ota_core.update_control import MaintenanceWindow, TimeOfDay
from ota_core.versions import Version
from ota_jobs.azure import WorkflowDecision
from tests.adu_fixtures import DEVICE_KEY, AduDevice, firmware, import_manifest, wait_for
from tests.azure_fixtures import azure_standin

pytestmark = pytest.mark.broker
__all__ = ["azure_standin"]


class Cloud:
    """The stand-in plus what each device reported in ``agent`` (state, result code), in order."""

    def __init__(self, standin: AzureStandIn, broker: MosquittoBroker, tmp: Path) -> None:
        self.standin = standin
        self.broker = broker
        self.tmp = tmp
        self.history: dict[str, list[tuple[int, int | None]]] = {}
        self._lock = threading.Lock()
        standin.hub.on_reported(self._on_reported)

    def _on_reported(self, device_id: str, patch: Mapping[str, Any], _twin: Any) -> None:
        component = patch.get("deviceUpdate")
        agent = component.get("agent") if isinstance(component, Mapping) else None
        if not isinstance(agent, Mapping) or "state" not in agent:
            return
        result = agent.get("lastInstallResult")
        code = result.get("resultCode") if isinstance(result, Mapping) else None
        with self._lock:
            self.history.setdefault(device_id, []).append((agent["state"], code))

    def device(self, device_id: str = "sim-1", **options: Any) -> AduDevice:
        self.standin.hub.register_device(device_id, DEVICE_KEY)
        keys = self.standin.adu.keys
        return AduDevice(
            self.tmp / device_id, broker_host=self.broker.host, broker_port=self.broker.port,
            topic_prefix=self.standin.hub.prefix_for(device_id), device_id=device_id,
            root_kid=keys.root_kid, root_pem=keys.root_public_pem(), **options,
        )

    def publish(self, version: str = "1.0.1") -> dict[str, str]:
        data = firmware(version)
        return self.standin.adu.import_update(import_manifest(version, data), {f"firmware-{version}.bin": data})

    def state(self, deployment: str, device_id: str = "sim-1") -> str:
        return str(self.standin.adu.deployment_status(deployment)["devices"][device_id]["state"])

    def agent(self, device_id: str = "sim-1") -> dict[str, Any]:
        return self.standin.adu.agent(device_id) or {}


@pytest.fixture
def cloud(azure_standin: AzureStandIn, mosquitto: MosquittoBroker, tmp_path: Path) -> Iterator[Cloud]:
    yield Cloud(azure_standin, mosquitto, tmp_path)


@pytest.fixture
def devices() -> Iterator[list[AduDevice]]:
    made: list[AduDevice] = []
    yield made
    for device in made:
        device.power_off()


def installed_version(agent: Mapping[str, Any]) -> str | None:
    raw = agent.get("installedUpdateId")
    return json.loads(raw)["version"] if isinstance(raw, str) else None


def run_through_restart(device: AduDevice) -> None:
    """Wait for the engine's restart request, then restart the device."""
    assert device.restarted.wait(30), [e.kind for e in device.events]
    device.reboot()


def test_success_then_duplicate_ignored(cloud: Cloud, devices: list[AduDevice]) -> None:
    device = cloud.device()
    devices.append(device)
    device.power_on()
    assert wait_for(lambda: installed_version(cloud.agent()) == "1.0.0")
    update = cloud.publish("1.0.1")
    cloud.standin.adu.create_deployment("dep-ok", update, ["sim-1"])
    assert wait_for(lambda: cloud.state("dep-ok") == "InProgress")
    run_through_restart(device)
    assert wait_for(lambda: cloud.state("dep-ok") == "Succeeded")
    agent = cloud.agent()
    assert agent["state"] == 0 and installed_version(agent) == "1.0.1"
    assert agent["lastInstallResult"]["resultCode"] == 700
    assert agent["deviceProperties"]["manufacturer"] == "Contoso" and agent["compatPropertyNames"]
    assert device.boot.state().running_version == Version.parse("1.0.1") and not device.boot.state().in_trial
    twin = cloud.standin.hub.get_twin("sim-1")
    ack = twin["reported"]["deviceUpdate"]["service"]
    assert ack["ac"] == 200 and ack["av"] == twin["desired"]["$version"]
    states = [state for state, _ in cloud.history["sim-1"]]
    assert states[-1] == 0 and 6 in states and 255 not in states

    # the same workflow again (a reconnect re-delivers it): acknowledged and ignored, nothing downloaded
    served = cloud.standin.files.requests_served
    service = twin["desired"]["deviceUpdate"]["service"]
    cloud.standin.hub.update_desired("sim-1", {"deviceUpdate": {"service": {**service, "note": "again"}}})
    assert device.agent is not None
    source = device.agent.source
    assert wait_for(lambda: source.last_decision is WorkflowDecision.IGNORE_DUPLICATE)
    assert cloud.standin.files.requests_served == served
    # and after another restart the installed update id is still the new one
    device.reboot()
    assert wait_for(lambda: device.agent is not None and device.agent.engine.wait_until_idle(1))
    assert installed_version(cloud.agent()) == "1.0.1" and cloud.state("dep-ok") == "Succeeded"


def test_self_test_failure_rolls_back_then_retry_succeeds(cloud: Cloud, devices: list[AduDevice]) -> None:
    verdict = {"pass": False}

    def self_test(_context: SelfTestContext) -> bool:
        return verdict["pass"]

    device = cloud.device(self_test=self_test)
    devices.append(device)
    device.power_on()
    update = cloud.publish("1.0.1")
    cloud.standin.adu.create_deployment("dep-st", update, ["sim-1"])
    run_through_restart(device)  # into the trial image
    run_through_restart(device)  # the self-test failed: reverted, back to the old image
    assert wait_for(lambda: cloud.state("dep-st") == "Failed")
    agent = cloud.agent()
    assert agent["state"] == 255 and installed_version(agent) == "1.0.0"
    result = agent["lastInstallResult"]
    assert result["resultCode"] == 0 and result["extendedResultCode"] != 0
    assert "rolled back" in result["resultDetails"]
    assert device.boot.state().running_version == Version.parse("1.0.0")
    # a restart does not run the failed workflow again (no install loop)
    device.reboot()
    assert device.agent is not None and device.agent.engine.wait_until_idle(5)
    assert device.agent.engine.state is EngineState.IDLE and cloud.state("dep-st") == "Failed"

    # the operator retries (same workflow id, new retryTimestamp): it runs again and now succeeds
    verdict["pass"] = True
    cloud.standin.adu.retry_deployment("dep-st")
    run_through_restart(device)
    assert wait_for(lambda: cloud.state("dep-st") == "Succeeded")
    assert installed_version(cloud.agent()) == "1.0.1"


def test_cancel_mid_download(cloud: Cloud, devices: list[AduDevice]) -> None:
    reached, release = threading.Event(), threading.Event()

    def hook(point: str) -> None:
        if point.startswith("progress:0:") and not reached.is_set():
            reached.set()
            release.wait(10)

    device = cloud.device(fault_hook=hook)
    devices.append(device)
    device.power_on()
    update = cloud.publish("1.0.1")
    cloud.standin.adu.create_deployment("dep-cx", update, ["sim-1"])
    assert reached.wait(20)
    cloud.standin.adu.cancel_deployment("dep-cx")
    assert device.agent is not None
    source = device.agent.source
    assert wait_for(lambda: source.last_decision is WorkflowDecision.CANCEL)
    release.set()
    assert wait_for(lambda: cloud.state("dep-cx") == "Canceled")
    agent = cloud.agent()
    assert agent["state"] == 0 and agent["lastInstallResult"]["resultCode"] == -1
    assert installed_version(agent) == "1.0.0"
    assert any(e.kind is EngineEventKind.CANCELLED for e in device.events)
    assert device.boot.activations == 0 and device.agent.engine.state is EngineState.IDLE
    assert not [name for name in (device.work / "state").iterdir() if name.name.startswith("adu-dl-")]


def test_tampered_manifest_refused_before_any_download(cloud: Cloud, devices: list[AduDevice]) -> None:
    device = cloud.device()
    devices.append(device)
    device.power_on()
    update_id = cloud.publish("1.0.1")
    update = cloud.standin.adu.update(update_id)
    manifest = json.loads(update["updateManifest"])
    (entry,) = manifest["files"].values()
    entry["hashes"]["sha256"] = "A" * 43 + "="  # a different image under the same signature
    service = {"workflow": {"action": 3, "id": "dep-evil"}, "updateManifest": json.dumps(manifest),
               "updateManifestSignature": update["updateManifestSignature"], "fileUrls": update["fileUrls"]}
    served = cloud.standin.files.requests_served
    cloud.standin.hub.update_desired("sim-1", {"deviceUpdate": {"__t": "c", "service": service}})
    assert wait_for(lambda: cloud.agent().get("state") == 255)
    result = cloud.agent()["lastInstallResult"]
    assert result["resultCode"] == 0 and (result["extendedResultCode"] >> 20) & 0xFF == 0x01  # verify
    assert cloud.standin.files.requests_served == served
    assert device.boot.activations == 0
    assert device.boot.state().running_version == Version.parse("1.0.0")
    assert wait_for(lambda: any(e.kind is EngineEventKind.FINISHED for e in device.events))
    finished = [e for e in device.events if e.kind is EngineEventKind.FINISHED]
    assert finished and finished[-1].status is not None and finished[-1].status.value == "REJECTED"


def test_disabled_then_enabled_and_forced(cloud: Cloud, devices: list[AduDevice]) -> None:
    device = cloud.device(control=True)
    devices.append(device)
    control = device.control
    assert control is not None
    control.disable()
    device.power_on()
    update = cloud.publish("1.0.1")
    served = cloud.standin.files.requests_served
    cloud.standin.adu.create_deployment("dep-off", update, ["sim-1"])
    assert wait_for(lambda: any(e.kind is EngineEventKind.WAITING for e in device.events))
    assert control.pending and cloud.standin.files.requests_served == served
    assert device.agent is not None and device.agent.engine.state is EngineState.RECEIVED
    control.set_forced(True)  # the operator forces it through "disabled"
    run_through_restart(device)
    assert wait_for(lambda: cloud.state("dep-off") == "Succeeded")

    control.set_forced(False)
    newer = cloud.publish("1.0.2")
    cloud.standin.adu.create_deployment("dep-on", newer, ["sim-1"])
    assert wait_for(lambda: cloud.state("dep-on") == "InProgress")
    assert wait_for(lambda: device.agent is not None and device.agent.engine.state is EngineState.RECEIVED)
    control.enable()
    run_through_restart(device)
    assert wait_for(lambda: cloud.state("dep-on") == "Succeeded")
    assert installed_version(cloud.agent()) == "1.0.2"


def test_deferral_and_maintenance_window(cloud: Cloud, devices: list[AduDevice]) -> None:
    device = cloud.device(control=True)
    devices.append(device)
    control = device.control
    assert control is not None
    now = datetime.datetime.now(datetime.UTC)
    closed = (now + datetime.timedelta(hours=6)).time()
    control.set_maintenance_windows([MaintenanceWindow(TimeOfDay(closed.hour, closed.minute),
                                                       datetime.timedelta(hours=1))])
    device.power_on()
    update = cloud.publish("1.0.1")
    cloud.standin.adu.create_deployment("dep-win", update, ["sim-1"])
    # downloaded while the activation waits for the window
    assert wait_for(lambda: device.agent is not None and device.agent.engine.state is EngineState.DOWNLOADED)
    assert wait_for(lambda: any(e.kind is EngineEventKind.WAITING for e in device.events))
    assert device.boot.activations == 0 and cloud.state("dep-win") == "InProgress"
    # the user defers it; then the window opens; the deferral still holds it
    control.defer(30)
    opened = (now - datetime.timedelta(minutes=5)).time()
    control.set_maintenance_windows([MaintenanceWindow(TimeOfDay(opened.hour, opened.minute),
                                                       datetime.timedelta(hours=2))])
    assert device.agent is not None and device.agent.engine.wait_until_idle(5)
    assert device.boot.activations == 0 and device.agent.engine.state is EngineState.DOWNLOADED
    control.resume()  # deferral ended: it goes ahead inside the window
    run_through_restart(device)
    assert wait_for(lambda: cloud.state("dep-win") == "Succeeded")


class CountingSource:
    """A job source wrapper that counts the reports the engine sends."""

    def __init__(self, inner: JobSource) -> None:
        self.inner = inner
        self.reports: list[StatusReport] = []

    def start(self, on_event: Callable[[JobEvent], None]) -> None:
        self.inner.start(on_event)

    def request_next(self) -> None:
        self.inner.request_next()

    def report(self, report: StatusReport) -> None:
        self.inner.report(report)
        self.reports.append(report)

    def stop(self) -> None:
        self.inner.stop()


def test_multi_file_update_image_to_slot_other_files_to_files_dir(cloud: Cloud, devices: list[AduDevice]) -> None:
    wrappers: list[CountingSource] = []

    def wrap(source: JobSource) -> JobSource:
        wrappers.append(CountingSource(source))
        return wrappers[-1]

    device = cloud.device(files_dir=True, image_file="firmware-*.bin", job_source_wrapper=wrap)
    devices.append(device)
    device.power_on()
    image = firmware("1.0.1")
    extra = b'{"motor": "tuned"}\n' * 40
    manifest = import_manifest("1.0.1", image)
    second = import_manifest("1.0.1", extra, name="settings.json")["files"][0]
    manifest["files"].append(second)
    manifest["instructions"]["steps"][0]["files"].append("settings.json")
    update = cloud.standin.adu.import_update(manifest, {"firmware-1.0.1.bin": image, "settings.json": extra})
    cloud.standin.adu.create_deployment("dep-two", update, ["sim-1"])
    run_through_restart(device)
    assert wait_for(lambda: cloud.state("dep-two") == "Succeeded")
    assert device.boot.state().running_version == Version.parse("1.0.1")
    (written,) = (device.work / "files").glob("*settings.json")
    assert written.read_bytes() == extra
    statuses = [report.status for wrapper in wrappers for report in wrapper.reports]
    assert statuses[0] is JobStatus.IN_PROGRESS and statuses[-1] is JobStatus.SUCCEEDED


def test_image_pattern_matching_no_file_fails_the_update(cloud: Cloud, devices: list[AduDevice]) -> None:
    device = cloud.device(files_dir=True, image_file="*.swu")
    devices.append(device)
    device.power_on()
    update = cloud.publish("1.0.1")
    cloud.standin.adu.create_deployment("dep-pat", update, ["sim-1"])
    assert wait_for(lambda: cloud.state("dep-pat") == "Failed")
    assert device.boot.activations == 0
    assert cloud.agent()["lastInstallResult"]["resultCode"] == 0


def test_target_time_from_the_twin_holds_the_install(cloud: Cloud, devices: list[AduDevice]) -> None:
    device = cloud.device(control=True)
    devices.append(device)
    later = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=3)).strftime("%H:%M")
    cloud.standin.hub.update_desired("sim-1", {"otaTargetUtcTime": later})
    device.power_on()
    assert wait_for(lambda: cloud.standin.hub.get_twin("sim-1")["reported"].get("otaTargetUtcTime") == f"{later}:00")
    control = device.control
    assert control is not None and control.target_time is not None
    update = cloud.publish("1.0.1")
    cloud.standin.adu.create_deployment("dep-tt", update, ["sim-1"])
    assert wait_for(lambda: device.agent is not None and device.agent.engine.state is EngineState.DOWNLOADED)
    assert device.agent is not None and device.agent.engine.wait_until_idle(5)
    assert device.boot.activations == 0
    cloud.standin.hub.update_desired("sim-1", {"otaTargetUtcTime": "bogus"})  # ignored, the hold stays
    cloud.standin.hub.update_desired("sim-1", {"otaTargetUtcTime": 1300})  # not a string: ignored too
    cloud.standin.hub.update_desired("sim-1", {"otaTargetUtcTime": ""})  # cleared from the cloud: go
    run_through_restart(device)
    assert wait_for(lambda: cloud.state("dep-tt") == "Succeeded")
    assert cloud.standin.hub.get_twin("sim-1")["reported"].get("otaTargetUtcTime") == ""


def test_update_whose_image_already_runs_is_installed_without_download(
    cloud: Cloud, devices: list[AduDevice]
) -> None:
    device = cloud.device()
    devices.append(device)
    device.settings = attrs.evolve(device.settings, initial_update_id=None)  # the device knows no update id
    device.power_on()
    served = cloud.standin.files.requests_served
    update = cloud.publish("1.0.0")  # installedCriteria 1.0.0: the image that runs
    cloud.standin.adu.create_deployment("dep-same", update, ["sim-1"])
    assert wait_for(lambda: cloud.state("dep-same") == "Succeeded")
    agent = cloud.agent()
    assert agent["state"] == 0 and agent["lastInstallResult"]["resultCode"] == 700
    assert installed_version(agent) == "1.0.0"
    assert cloud.standin.files.requests_served == served and device.boot.activations == 0

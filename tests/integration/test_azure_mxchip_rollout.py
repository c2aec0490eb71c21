"""An MXChip-style rollout across several devices sharing one broker, watched through the operator view."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from ota_cloud.azure import AzureStandIn
from ota_core.models import JobEvent, JobEventKind, JobStatus, StatusReport
from ota_jobs.azure import (
    MxchipDocumentError,
    MxchipFirmwareParser,
    MxchipJobSource,
    MxchipReporter,
    crc16_xmodem,
    format_check_value,
)
from tests.azure_fixtures import DeviceFactory, azure_device, azure_standin

pytestmark = pytest.mark.broker
__all__ = ["azure_device", "azure_standin"]

IMAGE = bytes(range(256)) * 40


class SimulatedDevice:
    """Just enough of a device to run the twin flow: parse, fetch, check the CRC, report."""

    def __init__(self, source: MxchipJobSource, parser: MxchipFirmwareParser) -> None:
        self.source = source
        self.parser = parser
        self.done = threading.Event()

    def on_event(self, event: JobEvent) -> None:
        if event.kind is JobEventKind.NEW:
            threading.Thread(target=self.update, args=(event,), daemon=True).start()

    def update(self, event: JobEvent) -> None:
        try:
            plan = self.parser.parse(event)
        except MxchipDocumentError:
            return
        if plan is None:
            return
        target = plan.files[0]
        pending = plan.attributes["fw_version"]
        self.source.report(
            StatusReport(plan.job_id, JobStatus.IN_PROGRESS, {"pending": pending, "uri": target.locations[0].uri})
        )
        data = requests.get(target.locations[0].uri, timeout=10).content
        if len(data) != target.size:
            self.source.report(
                StatusReport(plan.job_id, JobStatus.FAILED, {"pending": pending, "substatus": "FileSizeNotMatch"})
            )
        elif crc16_xmodem(data) != target.integrity.crc16_xmodem:
            self.source.report(
                StatusReport(plan.job_id, JobStatus.FAILED, {"pending": pending, "substatus": "VerifyFailed"})
            )
        else:
            self.source.report(StatusReport(plan.job_id, JobStatus.IN_PROGRESS, {"pending": pending, "phase": "apply"}))
            self.parser.current_version = pending  # the "reboot"
            self.source.report(StatusReport(plan.job_id, JobStatus.SUCCEEDED, {"current": pending}))
        self.done.set()


def test_rollout_across_devices(azure_standin: AzureStandIn, azure_device: DeviceFactory) -> None:
    url = azure_standin.files.add_file("fw/firmware-1.1.0.bin", IMAGE)
    devices = []
    for n in range(4):
        device_id = f"devkit-{n}"
        _, client = azure_device(device_id)
        reporter = MxchipReporter("1.0.0")
        source = MxchipJobSource(client, reporter)
        device = SimulatedDevice(source, MxchipFirmwareParser("1.0.0", allow_http=True))
        source.start(device.on_event)
        client.patch_reported(reporter.current(), timeout=10)
        devices.append(device)
    assert azure_standin.mxchip.metrics()["Current"] == 4

    good = format_check_value(crc16_xmodem(IMAGE))
    azure_standin.mxchip.set_firmware(
        ["devkit-0", "devkit-1", "devkit-2"], version="1.1.0", uri=url, check_value=good, size=len(IMAGE)
    )
    azure_standin.mxchip.set_firmware(["devkit-3"], version="1.1.0", uri=url, check_value="dead", size=len(IMAGE))
    for device in devices:
        assert device.done.wait(20)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and azure_standin.mxchip.metrics()["Error"] != 1:
        time.sleep(0.05)
    metrics = azure_standin.mxchip.metrics()
    assert metrics == {"Current": 3, "Downloading": 0, "Verifying": 0, "Applying": 0, "Error": 1}
    statuses = azure_standin.mxchip.device_statuses()
    assert statuses["devkit-0"]["currentFwVersion"] == "1.1.0"
    assert statuses["devkit-3"]["fwUpdateSubstatus"] == "VerifyFailed"
    assert statuses["devkit-3"]["currentFwVersion"] == "1.0.0"


def test_insecure_uri_is_reported(azure_standin: AzureStandIn, azure_device: DeviceFactory) -> None:
    _, client = azure_device("devkit-x")
    source = MxchipJobSource(client, MxchipReporter("1.0.0"), parser=MxchipFirmwareParser("1.0.0"))
    events: list[JobEvent] = []
    source.start(events.append)
    azure_standin.mxchip.set_firmware(["devkit-x"], version="2.0.0", uri="http://127.0.0.1:1/fw.bin", size=5)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and azure_standin.mxchip.metrics()["Error"] != 1:
        time.sleep(0.02)
    firmware = azure_standin.mxchip.device_statuses()["devkit-x"]
    assert (firmware["fwUpdateStatus"], firmware["fwUpdateSubstatus"]) == ("Error", "URINotHTTPS")
    assert firmware["pendingFwVersion"] == "2.0.0"
    assert not any(e.kind is JobEventKind.NEW for e in events)

"""The Azure twin orchestrator's own logic without a broker: status mapping, job ids, parsing, job events."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest

from ota_core.clock import ManualClock
from ota_core.engine import ReportContext, ReportPoint
from ota_core.errors import DownloadError, OtaError
from ota_core.models import (
    FileLocation,
    FileTarget,
    JobEvent,
    JobEventKind,
    JobStatus,
    LocationKind,
    StatusReport,
    UpdatePlan,
)
from ota_core.mqtt import MqttConnection, MqttSettings
from ota_core.state_store import FileStateStore
from ota_core.versions import Version
from ota_jobs.azure import (
    TUTORIAL_VOCABULARY,
    FirmwareStatus,
    MxchipDocumentError,
    MxchipFirmwareParser,
    MxchipReporter,
    TwinClient,
)
from ota_orchestrators.azure_twin import (
    FirmwareTwinJobSource,
    FirmwareTwinParser,
    TwinStatusFormatter,
    firmware_job_id,
    firmware_patch,
    substatus_for,
)
from ota_stream.errors import HttpStatusError
from ota_verify import DigestMismatchError, SizeMismatchError

NOW = datetime.datetime(2026, 11, 25, 10, 16, 34, tzinfo=datetime.UTC)
FIRMWARE = {"fwVersion": "1.0.1", "fwPackageURI": "https://example.invalid/fw.bin",
            "fwPackageCheckValue": "31c3", "fwSize": 9}


class _FlashError(OtaError):
    code = "INSTALL_FLASH_WRITE_FAILED"


class _ApplyError(OtaError):
    code = "INSTALL_READBACK_MISMATCH"


class _OtherError(OtaError):
    code = "POLICY_VERSION_REJECTED"


@pytest.mark.parametrize(
    ("error", "substatus"),
    [
        (None, ""),
        (MxchipDocumentError("no size", details={"substatus": "FileSizeNotMatch"}), "FileSizeNotMatch"),
        (DigestMismatchError("crc"), "VerifyFailed"),
        (SizeMismatchError("size"), "FileSizeNotMatch"),
        (HttpStatusError("404", status=404), "DownloadFailed"),
        (DownloadError("x"), "DownloadFailed"),
        (_FlashError("flash"), "DeviceError"),
        (_ApplyError("readback"), "ApplyFirmwareFailed"),
        (_OtherError("older"), "POLICY_VERSION_REJECTED"),
    ],
)
def test_substatus_follows_the_devkit(error: OtaError | None, substatus: str) -> None:
    assert substatus_for(error) == substatus


def test_job_id_is_stable_and_changes_with_the_package() -> None:
    assert firmware_job_id(FIRMWARE) == firmware_job_id(dict(reversed(list(FIRMWARE.items()))))
    assert firmware_job_id(FIRMWARE).startswith("fw-1.0.1-")
    assert firmware_job_id({**FIRMWARE, "fwPackageCheckValue": "1234"}) != firmware_job_id(FIRMWARE)
    assert firmware_job_id({**FIRMWARE, "fwVersion": "1.0/1 beta"}).startswith("fw-1.0_1_beta-")


def test_parser_adds_version_and_kind_and_uses_the_base_version() -> None:
    parser = FirmwareTwinParser(update_kind="application")
    event = JobEvent(JobEventKind.NEW, "j", {"firmware": FIRMWARE}, {"base_version": "1.0.0"})
    plan = parser.parse(event)
    assert plan is not None
    assert plan.version == Version.parse("1.0.1") and plan.attributes["update_kind"] == "application"
    assert plan.files[0].integrity.crc16_xmodem == 0x31C3
    # After the restart into 1.0.1 the same event still parses: the base version is the one it arrived on.
    assert parser.parse(event) is not None
    assert parser.parse(JobEvent(JobEventKind.NEW, "j", {"firmware": FIRMWARE}, {"base_version": "1.0.1"})) is None
    odd = parser.parse(JobEvent(JobEventKind.NEW, "j", {"firmware": {**FIRMWARE, "fwVersion": "2.1"}}))
    assert odd is not None and odd.version is None          # not semver: checked by the DevKit order only
    with pytest.raises(MxchipDocumentError):
        parser.parse(JobEvent(JobEventKind.NEW, "j", {"firmware": {**FIRMWARE, "fwSize": None}}))


def _plan() -> UpdatePlan:
    target = FileTarget("fw.bin", 9, (FileLocation(LocationKind.HTTP, "https://example.invalid/fw.bin"),))
    return UpdatePlan("job-1", "azure-mxchip", (target,), Version.parse("1.0.1"),
                      {"fw_version": "1.0.1", "fw_package_uri": "https://example.invalid/fw.bin"})


def test_formatter_maps_every_report_point(tmp_path: Path) -> None:
    clock = ManualClock(NOW)
    store = FileStateStore(tmp_path)
    fmt = TwinStatusFormatter(store, clock)
    plan = _plan()

    def at(point: ReportPoint, **extra: Any) -> dict[str, str] | None:
        return fmt(ReportContext(point=point, job_id="job-1", plan=plan, running_version=Version.parse("1.0.0"),
                                 previous_version=Version.parse("1.0.0"), **extra))

    accepted = at(ReportPoint.ACCEPTED)
    assert accepted == {"fwUpdateStatus": "Downloading", "fwUpdateSubstatus": "https://example.invalid/fw.bin",
                        "pendingFwVersion": "1.0.1", "lastFwUpdateStartTime": "2026-11-25T10:16:34.0000000Z",
                        "lastFwUpdateEndTime": ""}
    assert at(ReportPoint.PROGRESS) is None
    clock.advance(60)
    verifying = at(ReportPoint.VERIFYING)
    assert verifying is not None and verifying["fwUpdateStatus"] == "Verifying"
    assert verifying["lastFwUpdateStartTime"] == accepted["lastFwUpdateStartTime"]   # kept from the first report
    ready, self_test = at(ReportPoint.READY), at(ReportPoint.SELF_TEST)
    assert ready is not None and ready["fwUpdateStatus"] == "Applying" and ready["fwUpdateSubstatus"] == ""
    assert self_test is not None and self_test["fwUpdateSubstatus"] == "self-test"
    done = fmt(ReportContext(point=ReportPoint.SUCCEEDED, job_id="job-1", plan=plan,
                             running_version=Version.parse("1.0.1")))
    assert done is not None and done["fwUpdateStatus"] == "Current" and done["currentFwVersion"] == "1.0.1"
    assert done["lastFwUpdateEndTime"] == "2026-11-25T10:17:34.0000000Z" and done["pendingFwVersion"] == ""
    rolled = at(ReportPoint.FAILED, error=_OtherError("x"), rolled_back=True)
    assert rolled is not None and rolled["fwUpdateStatus"] == "Error"
    assert rolled["fwUpdateSubstatus"] == "Rolled back to: 1.0.0" and rolled["currentFwVersion"] == "1.0.0"
    assert rolled["code"] == "POLICY_VERSION_REJECTED"
    rejected = fmt(ReportContext(point=ReportPoint.REJECTED, job_id="job-2", error=DigestMismatchError("crc")))
    assert rejected is not None and rejected["fwUpdateStatus"] == "Error"
    assert rejected["fwUpdateSubstatus"] == "VerifyFailed"
    assert rejected["pendingFwVersion"] == "" and rejected["lastFwUpdateStartTime"].endswith("Z")
    tutorial = TwinStatusFormatter(store, clock, TUTORIAL_VOCABULARY)
    rolled = tutorial(ReportContext(point=ReportPoint.FAILED, job_id="job-1", plan=plan, rolled_back=True,
                                    running_version=Version.parse("1.0.1")))
    assert rolled is not None and rolled["fwUpdateStatus"] == "rolledback" and rolled["currentFwVersion"] == "1.0.1"


def test_firmware_patch_in_both_vocabularies() -> None:
    devkit = firmware_patch(MxchipReporter("1.0.0"), _status("rolledback"), pending="1.0.1", substatus="x",
                            started="s", ended="e")
    assert devkit == {"firmware": {"type": "IoTDevKit", "currentFwVersion": "1.0.0", "pendingFwVersion": "1.0.1",
                                   "fwUpdateStatus": "Error", "fwUpdateSubstatus": "x",
                                   "lastFwUpdateStartTime": "s", "lastFwUpdateEndTime": "e"}}
    tutorial = firmware_patch(MxchipReporter("1.0.0", TUTORIAL_VOCABULARY), _status("current"))
    assert tutorial == {"firmware": {"currentFwVersion": "1.0.0", "pendingFwVersion": "",
                                     "fwUpdateStatus": "current", "fwUpdateSubstatus": ""}}


def _status(value: str) -> FirmwareStatus:
    return FirmwareStatus(value)


def _source(tmp_path: Path, running: str = "1.0.0") -> tuple[FirmwareTwinJobSource, list[JobEvent]]:
    connection = MqttConnection(MqttSettings(broker_url="mqtt://127.0.0.1:1", client_id="unit"))
    source = FirmwareTwinJobSource(TwinClient(connection), MxchipReporter(running), MxchipFirmwareParser(running),
                                   state_store=FileStateStore(tmp_path))
    events: list[JobEvent] = []
    source._deliver = events.append                      # as start() does, without a broker
    source._held = None
    return source, events


def test_job_source_new_cancel_and_ignore(tmp_path: Path) -> None:
    source, events = _source(tmp_path)
    new = source.interpret({"firmware": FIRMWARE}, 3)
    assert new is not None and new.kind is JobEventKind.NEW and new.job_id == firmware_job_id(FIRMWARE)
    assert new.attributes == {"desired_version": 3, "base_version": "1.0.0"}
    back = source.interpret({"firmware": {**FIRMWARE, "fwVersion": "0.9"}}, 4)
    assert back is not None and back.kind is JobEventKind.CANCELLED and back.job_id == new.job_id
    assert source.interpret({"other": 1}, 5) is None
    source._route(JobEvent(JobEventKind.NOTHING_PENDING))
    assert events == [JobEvent(JobEventKind.CANCELLED, job_id=new.job_id)]
    fresh, fresh_events = _source(tmp_path / "b")
    assert fresh.interpret({"firmware": {**FIRMWARE, "fwVersion": "1.0.0"}}, 1) is None
    fresh._route(JobEvent(JobEventKind.NOTHING_PENDING))
    assert fresh_events == []


def test_job_source_holds_events_until_the_boot_report(tmp_path: Path) -> None:
    source, events = _source(tmp_path)
    source._held = []
    source._route(JobEvent(JobEventKind.NEW, "a"))
    assert events == [] and source._held == [JobEvent(JobEventKind.NEW, "a")]


def test_job_source_builds_patches_and_remembers_the_last_final_status(tmp_path: Path) -> None:
    source, _events = _source(tmp_path)
    job = source.interpret({"firmware": FIRMWARE}, 3)
    assert job is not None and job.job_id is not None
    progress = source.build_reports(StatusReport(job.job_id, JobStatus.IN_PROGRESS,
                                                 {"fwUpdateStatus": "verifying", "pendingFwVersion": "1.0.1"}))
    assert progress[0]["firmware"]["fwUpdateStatus"] == "Verifying"
    assert source._store.load("azure-twin-last") is None
    error = source.build_reports(StatusReport(job.job_id, JobStatus.REJECTED, {"fwUpdateSubstatus": "VerifyFailed"}))
    assert error[0]["firmware"]["fwUpdateStatus"] == "Error" and error[0]["firmware"]["pendingFwVersion"] == "1.0.1"
    stored = source._store.load("azure-twin-last")
    assert stored is not None and stored.data == {"job_id": job.job_id, "status": "error"}
    done = source.build_reports(StatusReport(job.job_id, JobStatus.SUCCEEDED, {"currentFwVersion": "1.0.1"}))
    assert done[0]["firmware"]["fwUpdateStatus"] == "Current" and done[0]["firmware"]["currentFwVersion"] == "1.0.1"
    assert done[0]["firmware"]["pendingFwVersion"] == ""

"""The Device Update orchestrator's pure parts: report formatting, result codes, installed update ids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ota_core import FileStateStore
from ota_core.engine import ReportContext, ReportPoint, SelfTestFailedError
from ota_core.errors import DownloadError, OtaError, VerificationError
from ota_core.models import FileTarget, UpdatePlan
from ota_core.versions import Version
from ota_jobs.azure import AduUpdateId
from ota_orchestrators.adu import (
    EXTENDED_FACILITY,
    InstalledUpdates,
    adu_report_details,
    describe_agent,
    extended_result_code,
    image_version,
)


def plan(**attributes: object) -> UpdatePlan:
    return UpdatePlan(job_id="w1", origin="azure-adu", files=(FileTarget("fw.bin", 10),), attributes=attributes)


def test_extended_result_codes() -> None:
    assert extended_result_code(None) == 0
    verify = extended_result_code(VerificationError("bad"))
    assert verify >> 28 == EXTENDED_FACILITY and (verify >> 20) & 0xFF == 0x01
    assert (extended_result_code(DownloadError("x")) >> 20) & 0xFF == 0x02
    assert (extended_result_code(SelfTestFailedError("x")) >> 20) & 0xFF == 0x04
    assert (extended_result_code(OtaError("x")) >> 20) & 0xFF == 0x0F
    # stable: the same code gives the same number
    assert extended_result_code(VerificationError("a")) == extended_result_code(VerificationError("b"))


def test_report_points() -> None:
    update = {"provider": "Contoso", "name": "Sim", "version": "1.0.1"}
    p = plan(adu_update_id=update)
    assert adu_report_details(ReportContext(ReportPoint.ACCEPTED, "w1", p)) == {"step": "accepted"}
    assert adu_report_details(ReportContext(ReportPoint.SELF_TEST, "w1", p)) == {"step": "self-test"}
    for skipped in (ReportPoint.PROGRESS, ReportPoint.VERIFYING, ReportPoint.READY):
        assert adu_report_details(ReportContext(skipped, "w1", p)) is None
    done = adu_report_details(ReportContext(ReportPoint.SUCCEEDED, "w1", p, running_version=Version.parse("1.0.1")))
    assert done is not None and done["version"] == "1.0.1" and done["image_version"] == "1.0.1"
    failed = adu_report_details(ReportContext(ReportPoint.FAILED, "w1", p, error=SelfTestFailedError("no"),
                                              rolled_back=True))
    assert failed is not None and failed["code"] == "SELF_TEST_FAILED" and failed["rolled_back"] == "true"
    assert "rolled back" in failed["reason"] and int(failed["extended_result_code"]) != 0
    rejected = adu_report_details(ReportContext(ReportPoint.REJECTED, "w1", None))
    assert rejected == {"step": "rejected", "extended_result_code": "0"}


def test_image_version_sources() -> None:
    p = plan(adu_installed_criteria="1.2.3", adu_update_id={"version": "2.0"})
    assert image_version(p, "installedCriteria") == Version.parse("1.2.3")
    assert image_version(p, "updateId") == Version.parse("2.0.0")
    assert image_version(plan(adu_installed_criteria="1.2.3.4"), "installedCriteria") is None
    assert image_version(p, "none") is None
    assert image_version(plan(adu_installed_criteria="not a version"), "installedCriteria") is None
    assert image_version(plan(), "updateId") is None


def test_installed_updates(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path)
    factory = AduUpdateId("Contoso", "Sim", "1.0.0")
    installed = InstalledUpdates(store, factory)
    assert installed.installed(Version.parse("1.0.0")) is None
    installed.seed(Version.parse("1.0.0"))
    installed.seed(Version.parse("9.9.9"))  # only once
    assert installed.installed(Version.parse("1.0.0")) == factory
    new = AduUpdateId("Contoso", "Sim", "1.0.1")
    installed.record(new, Version.parse("1.0.1"))
    again = InstalledUpdates(store, factory)  # after a restart
    assert again.installed(Version.parse("1.0.1")) == new
    assert again.installed(Version.parse("1.0.0")) == factory  # after a rollback
    assert again.installed(None) == new
    for minor in range(20):
        again.record(AduUpdateId("Contoso", "Sim", f"2.{minor}"), Version.parse(f"2.{minor}.0"))
    assert again.installed(Version.parse("2.19.0")) == AduUpdateId("Contoso", "Sim", "2.19")
    assert again.installed(Version.parse("1.0.0")) is None  # the oldest entries are dropped
    store.save(InstalledUpdates.DOCUMENT, {"by_version": {"1.0.0": {"provider": "?"}}, "last": None})
    assert InstalledUpdates(store).installed(Version.parse("1.0.0")) is None
    assert InstalledUpdates(store).installed(None) is None
    store.save(InstalledUpdates.DOCUMENT, {"by_version": [], "last": "x"})
    assert InstalledUpdates(store).installed(None) is None


@pytest.mark.parametrize(
    ("agent", "text"),
    [
        (None, "no agent reported"),
        ({"state": 0, "installedUpdateId": json.dumps({"version": "1.0.1"}),
          "lastInstallResult": {"resultCode": 700}}, "state Idle, installed 1.0.1, result 700"),
        ({"state": 255, "installedUpdateId": "{bad"}, "state Failed, installed -, result None"),
        ({"state": "odd"}, "state odd, installed -, result None"),
    ],
)
def test_describe_agent(agent: dict[str, object] | None, text: str) -> None:
    assert describe_agent(agent) == text

"""The engine end to end in one process: success, rollback, rejections, failures, retries and resume."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest

from ota_core import (
    ConfigurationError,
    FileStateStore,
    FileTarget,
    JobStatus,
    StateCorruptedError,
    StateStoreError,
    StatusReport,
    StoredDocument,
    UpdatePlan,
    Version,
)
from ota_core.engine import (
    EngineConfig,
    EngineEventKind,
    EngineState,
    ProgressRecord,
    ReportContext,
    ReportPoint,
    SelfTestContext,
    UpdateEngine,
    default_report_details,
)
from tests.engine_fixtures import FileDownloader, JsonPlanParser, _SlotSink
from tests.engine_rig import FAST, Rig, blocking_hook


def _finish_update(rig: Rig, job_id: str) -> None:
    rig.wait_event(EngineEventKind.RESTART_REQUESTED, job_id)
    rig.reboot()
    rig.wait_event(EngineEventKind.FINISHED, job_id)


def test_success_reports_once_and_never_reinstalls(tmp_path: Path) -> None:
    contexts: list[SelfTestContext] = []

    def self_test(context: SelfTestContext) -> bool:
        contexts.append(context)
        return context.remaining() > 0

    rig = Rig(tmp_path, self_test=self_test)
    engine = rig.start()
    rig.publish("job1")
    rig.wait_event(EngineEventKind.RESTART_REQUESTED, "job1")
    assert engine.awaiting_restart
    assert engine.state is EngineState.RESTARTING
    assert rig.boot.state().pending_version == Version.parse("1.0.1")
    assert rig.boot.handoff_checks == 1  # the slot was read back against the plan's SHA-256
    _finish_update(rig, "job1")
    assert rig.source.status_of("job1") is JobStatus.SUCCEEDED
    assert rig.source.steps("job1") == ["accepted", "ready", "self-test", "succeeded"]
    assert [r.status for r in rig.source.reports if r.status.is_terminal] == [JobStatus.SUCCEEDED]
    image = rig.boot.state()
    assert image.running_version == Version.parse("1.0.1") and not image.in_trial
    assert contexts and contexts[0].plan is not None and contexts[0].job_id == "job1"
    assert rig.store.load("engine-progress") is None
    # The cloud offers the same job again: it is ignored, nothing is installed twice.
    activations = rig.boot.activations
    from ota_core import JobEvent, JobEventKind

    rig.source.emit(JobEvent(JobEventKind.NEW, "job1", rig.source.jobs["job1"]))
    rig.wait_event(EngineEventKind.IGNORED, "job1")
    rig.wait_idle()
    assert rig.boot.activations == activations
    assert len([r for r in rig.source.reports if r.status is JobStatus.SUCCEEDED]) == 1
    # After a restart the finished job is still remembered.
    rig.reboot()
    rig.source.emit(JobEvent(JobEventKind.NEW, "job1", rig.source.jobs["job1"]))
    rig.wait_event(EngineEventKind.IGNORED, "job1", count=2)
    rig.stop()


def test_progress_events_and_reports(tmp_path: Path) -> None:
    rig = Rig(tmp_path, chunk_size=4096)
    rig.start()
    rig.publish("job1", size=40_000)
    rig.wait_event(EngineEventKind.RESTART_REQUESTED, "job1")
    progress = [e.progress for e in rig.events if e.kind is EngineEventKind.PROGRESS]
    assert progress and progress[-1] is not None and progress[-1].bytes_done == 40_000
    assert progress[-1].fraction == 1.0
    reports = [r for r in rig.source.reports if r.details.get("step") == "progress"]
    assert 1 <= len(reports) <= 4
    assert all(r.status is JobStatus.IN_PROGRESS for r in reports)
    phases = [e.phase for e in rig.events if e.kind is EngineEventKind.PHASE]
    assert [str(p) for p in phases][:2] == ["notify", "parse"]
    rig.stop()


def test_self_test_failure_rolls_back(tmp_path: Path) -> None:
    rig = Rig(tmp_path, self_test=lambda _context: False)
    rig.start()
    rig.publish("job1")
    rig.wait_event(EngineEventKind.RESTART_REQUESTED, "job1")
    rig.reboot()
    rig.wait_event(EngineEventKind.FINISHED, "job1")
    assert rig.restart_requests == 2  # the engine asks for the restart into the old image
    rig.reboot()
    rig.wait_idle()
    assert rig.source.steps("job1") == ["accepted", "ready", "self-test", "failed"]
    final = rig.source.reports[-1]
    assert final.status is JobStatus.FAILED
    assert final.details["code"] == "SELF_TEST_FAILED" and final.details["rolled_back"] == "true"
    image = rig.boot.state()
    assert image.running_version == Version.parse("1.0.0") and not image.in_trial
    rig.stop()


def test_self_test_exception_and_timeout(tmp_path: Path) -> None:
    def boom(_context: SelfTestContext) -> bool:
        raise RuntimeError("sensor missing")

    rig = Rig(tmp_path, self_test=boom)
    rig.start()
    rig.publish("job1")
    _finish_update(rig, "job1")
    assert rig.source.reports[-1].details["code"] == "SELF_TEST_FAILED"
    assert "sensor missing" in rig.source.reports[-1].details["reason"]
    rig.stop()

    release = threading.Event()

    def hang(_context: SelfTestContext) -> bool:
        return release.wait(5.0)

    config = EngineConfig(report_retry_delays=(0.0,), poll_interval=0.2, self_test_timeout=0.05)
    rig2 = Rig(tmp_path / "second", self_test=hang, config=config)
    rig2.start()
    rig2.publish("job2")
    _finish_update(rig2, "job2")
    release.set()
    assert rig2.source.reports[-1].details["code"] == "SELF_TEST_TIMEOUT"
    rig2.stop()


def test_typed_self_test_error_is_kept(tmp_path: Path) -> None:
    from ota_core.engine import SelfTestFailedError

    class CustomError(SelfTestFailedError):
        code = "SELF_TEST_CUSTOM"

    def failing(_context: SelfTestContext) -> bool:
        raise CustomError("application says no")

    rig = Rig(tmp_path, self_test=failing)
    rig.start()
    rig.publish("job1")
    _finish_update(rig, "job1")
    assert rig.source.reports[-1].details["code"] == "SELF_TEST_CUSTOM"
    rig.stop()


@pytest.mark.parametrize(
    ("version", "code"),
    [
        ("not-a-version", "JOB_DOCUMENT_INVALID"),
        ("1.0.0", "POLICY_VERSION_REJECTED"),
        ("0.9.0", "POLICY_VERSION_REJECTED"),
    ],
)
def test_rejected_before_start(tmp_path: Path, version: str, code: str) -> None:
    rig = Rig(tmp_path)
    rig.start()
    rig.publish("job1", version=version)
    rig.wait_event(EngineEventKind.FINISHED, "job1")
    assert [r.status for r in rig.source.reports] == [JobStatus.REJECTED]
    assert rig.source.reports[0].details["code"] == code
    assert rig.boot.activations == 0
    rig.stop()


def test_unknown_document_and_plan_refusal_are_rejected(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.start()
    rig.source.add_job("odd", {"something": "else"})
    rig.wait_event(EngineEventKind.FINISHED, "odd")
    assert rig.source.reports[-1].status is JobStatus.REJECTED
    assert rig.source.reports[-1].details["code"] == "JOB_DOCUMENT_UNSUPPORTED"
    rig.verifier.refuse_plan = True
    rig.publish("job2")
    rig.wait_event(EngineEventKind.FINISHED, "job2")
    assert rig.source.reports[-1].details["code"] == "VERIFICATION_FAILED"
    assert rig.source.reports[-1].status is JobStatus.REJECTED
    rig.stop()


def test_same_and_older_versions_allowed_when_configured(tmp_path: Path) -> None:
    config = EngineConfig(report_retry_delays=(0.0,), poll_interval=0.2, allow_same_version=True,
                          allow_downgrade=True)
    rig = Rig(tmp_path, config=config)
    rig.start()
    rig.publish("same", version="1.0.0")
    _finish_update(rig, "same")
    assert rig.source.status_of("same") is JobStatus.SUCCEEDED
    rig.publish("older", version="0.9.0")
    _finish_update(rig, "older")
    assert rig.boot.state().running_version == Version.parse("0.9.0")
    rig.stop()


def test_corrupted_download_fails_without_activation(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.start()
    rig.publish("job1", corrupt=True)
    rig.wait_event(EngineEventKind.FINISHED, "job1")
    assert rig.source.steps("job1") == ["accepted", "failed"]
    assert rig.source.reports[-1].details["code"] == "VERIFICATION_FAILED"
    assert rig.boot.activations == 0
    assert [name for name in rig.store.names() if "-dl-" in name] == []
    rig.stop()


def test_transient_download_errors_are_retried(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.downloader.fail_times = 2
    rig.start()
    rig.publish("job1")
    _finish_update(rig, "job1")
    assert rig.source.status_of("job1") is JobStatus.SUCCEEDED
    assert rig.downloader.started == 3
    rig.stop()


def test_persistent_download_errors_fail(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.downloader.fail_times = 10
    rig.start()
    rig.publish("job1")
    rig.wait_event(EngineEventKind.FINISHED, "job1")
    assert rig.source.reports[-1].details["code"] == "DOWNLOAD_FAILED"
    assert rig.downloader.started == FAST.download_attempts
    rig.stop()


def test_no_downloader_for_location(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    document = rig.publish("job1", notify=False)
    path = Path(document["files"][0]["path"])
    rig.source.jobs["job1"] = document

    class HttpOnlyParser(JsonPlanParser):
        def parse(self, event):  # type: ignore[no-untyped-def]
            plan = super().parse(event)
            assert plan is not None
            from ota_core import FileLocation, LocationKind

            target = plan.files[0]
            http = FileTarget(target.name, target.size, (FileLocation(LocationKind.HTTP, f"http://x/{path.name}"),),
                              target.integrity)
            return UpdatePlan(plan.job_id, plan.origin, (http,), plan.version)

    rig.stop()
    engine = UpdateEngine(
        job_source=rig.source, parsers=HttpOnlyParser(), downloaders=[rig.downloader], verifier=rig.verifier,
        boot_control=rig.boot, state_store=rig.store, restart=lambda: None, config=FAST,
    )
    engine.add_listener(rig.events.append)
    engine.start()
    rig.wait_event(EngineEventKind.FINISHED, "job1")
    assert rig.source.reports[-1].details["code"] == "DOWNLOAD_NO_TRANSPORT"
    engine.stop()


def test_activation_failure_reports_failed(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.boot.fail_activate = True
    rig.start()
    rig.publish("job1")
    rig.wait_event(EngineEventKind.FINISHED, "job1")
    assert rig.source.reports[-1].status is JobStatus.FAILED
    assert rig.source.reports[-1].details["code"] == "INSTALL_FAILED"
    assert rig.boot.state().running_version == Version.parse("1.0.0")
    rig.stop()


def test_final_report_retried_until_acknowledged(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.start()
    rig.publish("job1")
    rig.wait_event(EngineEventKind.RESTART_REQUESTED, "job1")
    rig.source.fail_terminal_reports = 3
    rig.reboot()
    rig.wait_event(EngineEventKind.FINISHED, "job1")
    assert rig.kinds("job1").count(EngineEventKind.REPORT_RETRY) == 3
    assert [r.status for r in rig.source.reports if r.status.is_terminal] == [JobStatus.SUCCEEDED]
    rig.stop()


def test_final_report_survives_restart(tmp_path: Path) -> None:
    config = EngineConfig(report_retry_delays=(0.05,), poll_interval=0.2)
    rig = Rig(tmp_path, config=config)
    rig.start()
    rig.publish("job1")
    rig.wait_event(EngineEventKind.RESTART_REQUESTED, "job1")
    rig.source.fail_terminal_reports = 1000
    rig.reboot()
    rig.wait_event(EngineEventKind.REPORT_RETRY, "job1", count=2)
    assert rig.engine is not None and rig.engine.state is EngineState.REPORTING
    rig.source.fail_terminal_reports = 0
    rig.reboot()
    rig.wait_event(EngineEventKind.FINISHED, "job1")
    assert [r.status for r in rig.source.reports if r.status.is_terminal] == [JobStatus.SUCCEEDED]
    assert rig.boot.state().running_version == Version.parse("1.0.1")
    rig.stop()


def test_refused_final_report_is_not_sent_forever(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.start()
    rig.source.refuse_reports = True
    rig.publish("job1", corrupt=True)
    rig.wait_event(EngineEventKind.FINISHED, "job1")
    assert rig.store.load("engine-progress") is None
    rig.stop()


def test_resume_mid_download_continues(tmp_path: Path) -> None:
    hook, reached, release = blocking_hook()
    rig = Rig(tmp_path, chunk_size=4096, on_chunk=hook)
    engine = rig.start()
    rig.publish("job1", size=40_000)
    assert reached.wait(10)
    stopper = threading.Thread(target=engine.stop)
    stopper.start()
    release.set()
    stopper.join(10)
    rig.engine = None
    record = rig.store.load("engine-progress")
    assert record is not None and record.data["state"] == "downloading"
    progress_names = [name for name in rig.store.names() if "-dl-" in name]
    assert len(progress_names) == 1
    saved = rig.store.load(progress_names[0])
    assert saved is not None and 0 < saved.data["offset"] < 40_000
    rig.boot.boot()
    rig.start()
    _finish_update(rig, "job1")
    assert rig.source.status_of("job1") is JobStatus.SUCCEEDED
    assert rig.source.steps("job1").count("accepted") == 1
    rig.stop()


def test_multi_file_plan_needs_a_sink_factory(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    document = rig.publish("job1", notify=False)
    rig.source.jobs["job1"]["files"] = document["files"] * 2
    rig.start()
    rig.wait_event(EngineEventKind.FINISHED, "job1")
    assert rig.source.reports[-1].details["code"] == "JOB_DOCUMENT_INVALID"
    rig.stop()

    written: list[str] = []

    def factory(plan: UpdatePlan, target: FileTarget, index: int) -> _SlotSink:
        if index == 0:
            return rig2.boot.open_inactive_slot(target.size)
        path = tmp_path / "second" / f"extra-{index}.bin"
        path.write_bytes(b"\0" * target.size)
        written.append(path.name)
        return _SlotSink(path)

    rig2 = Rig(tmp_path / "second", sink_factory=factory)
    document = rig2.publish("job2", notify=False)
    rig2.source.jobs["job2"]["files"] = document["files"] * 2
    rig2.start()
    _finish_update(rig2, "job2")
    assert rig2.source.status_of("job2") is JobStatus.SUCCEEDED
    assert written == ["extra-1.bin"]
    rig2.stop()


def test_listener_errors_do_not_stop_updates(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    engine = rig.start()

    def broken(_event: object) -> None:
        raise RuntimeError("listener bug")

    engine.add_listener(broken)
    rig.publish("job1")
    _finish_update(rig, "job1")
    assert rig.source.status_of("job1") is JobStatus.SUCCEEDED
    rig.stop()


def test_component_bug_becomes_internal_error(tmp_path: Path) -> None:
    rig = Rig(tmp_path)

    def explode(_offset: int) -> None:
        raise KeyError("bug")

    rig.downloader = FileDownloader(rig.store, on_chunk=explode)
    rig.start()
    rig.publish("job1")
    rig.wait_event(EngineEventKind.FINISHED, "job1")
    assert rig.source.reports[-1].details["code"] == "ENGINE_INTERNAL_ERROR"
    rig.stop()


def test_constructor_and_start_errors(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    common = {
        "job_source": rig.source, "verifier": rig.verifier, "boot_control": rig.boot,
        "state_store": rig.store, "restart": lambda: None,
    }
    with pytest.raises(ConfigurationError):
        UpdateEngine(parsers=[], downloaders=[rig.downloader], **common)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        UpdateEngine(parsers=JsonPlanParser(), downloaders=[], **common)  # type: ignore[arg-type]
    engine = rig.start()
    with pytest.raises(ConfigurationError):
        engine.start()
    assert engine.state is EngineState.IDLE and engine.current_job_id is None
    rig.stop()
    assert rig.source.stopped


def test_record_with_bad_shape_is_corrupt() -> None:
    with pytest.raises(StateCorruptedError):
        ProgressRecord.from_json("x", {"state": "nonsense"})


def test_default_report_details() -> None:
    from ota_core import DownloadError

    details = default_report_details(
        ReportContext(ReportPoint.PROGRESS, "j", bytes_done=5, bytes_total=10, error=DownloadError("x"),
                      rolled_back=True)
    )
    assert details == {"step": "progress", "progress": "5/10", "code": "DOWNLOAD_FAILED", "reason": "x",
                       "rolled_back": "true"}


class _FlakyStore:
    """A state store whose saves can be made to fail, like a full or read-only disk."""

    def __init__(self, inner: FileStateStore) -> None:
        self.inner = inner
        self.failing = False

    def load(self, name: str) -> StoredDocument | None:
        return self.inner.load(name)

    def save(self, name: str, data: Mapping[str, Any], *, schema_version: int = 1) -> None:
        if self.failing:
            raise StateStoreError("disk is read-only")
        self.inner.save(name, data, schema_version=schema_version)

    def delete(self, name: str) -> None:
        self.inner.delete(name)

    def names(self) -> list[str]:
        return self.inner.names()


def test_unwritable_store_mid_update_recovers(tmp_path: Path) -> None:
    rig = Rig(tmp_path, chunk_size=4096)
    flaky = _FlakyStore(rig.store)
    failures: list[int] = []

    def on_chunk(offset: int) -> None:
        if offset == 8192 and not failures:
            failures.append(offset)
            flaky.failing = True

    rig.store = flaky  # type: ignore[assignment]
    rig.downloader = FileDownloader(flaky, chunk_size=4096, on_chunk=on_chunk)
    engine = rig.start()
    rig.publish("job1")
    rig.wait_for(lambda: bool(failures))
    rig.wait_idle()
    assert engine.state is EngineState.DOWNLOADING
    flaky.failing = False
    engine.poke()
    _finish_update(rig, "job1")
    assert rig.source.status_of("job1") is JobStatus.SUCCEEDED


def test_job_document_the_store_cannot_keep_is_rejected(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.start()
    rig.source.add_job("job1", {"files": [], "blob": b"\x00"})
    rig.wait_event(EngineEventKind.FINISHED, "job1")
    assert rig.source.reports[-1].status is JobStatus.REJECTED
    assert rig.source.reports[-1].details["code"] == "STATE_STORE_FAILED"
    rig.stop()


def test_report_raising_a_non_ota_error_is_retried(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    calls: list[StatusReport] = []
    original = rig.source.report

    def flaky_report(report: StatusReport) -> None:
        if report.status.is_terminal and not calls:
            calls.append(report)
            raise RuntimeError("adapter bug")
        original(report)

    rig.source.report = flaky_report  # type: ignore[method-assign]
    rig.start()
    rig.publish("job1", corrupt=True)
    rig.wait_event(EngineEventKind.FINISHED, "job1")
    assert EngineEventKind.REPORT_RETRY in rig.kinds("job1")
    assert rig.source.reports[-1].status is JobStatus.FAILED
    rig.stop()


def test_custom_report_formatter(tmp_path: Path) -> None:
    seen: list[ReportContext] = []

    def freertos_like(context: ReportContext) -> dict[str, str] | None:
        seen.append(context)
        if context.point is ReportPoint.PROGRESS:
            return None
        if context.point in (ReportPoint.READY, ReportPoint.SELF_TEST):
            state = "ready" if context.point is ReportPoint.READY else "active"
            return {"self_test": state, "updatedBy": str(context.running_version)}
        if context.point is ReportPoint.SUCCEEDED:
            return None  # no details at all
        return {"step": context.point.value}

    rig = Rig(tmp_path)
    rig.stop()
    engine = UpdateEngine(
        job_source=rig.source, parsers=JsonPlanParser(), downloaders=[rig.downloader], verifier=rig.verifier,
        boot_control=rig.boot, state_store=rig.store, restart=lambda: None, config=FAST,
        report_details=freertos_like,
    )
    engine.add_listener(rig.events.append)
    engine.start()
    rig.publish("job1")
    rig.wait_event(EngineEventKind.RESTART_REQUESTED, "job1")
    engine.stop()
    rig.boot.boot()
    engine = UpdateEngine(
        job_source=rig.source, parsers=JsonPlanParser(), downloaders=[rig.downloader], verifier=rig.verifier,
        boot_control=rig.boot, state_store=rig.store, restart=lambda: None, config=FAST,
        report_details=freertos_like,
    )
    engine.add_listener(rig.events.append)
    engine.start()
    rig.wait_event(EngineEventKind.FINISHED, "job1")
    engine.stop()
    details = [dict(r.details) for r in rig.source.reports]
    assert details == [
        {"step": "accepted"},
        {"step": "verifying"},
        {"self_test": "ready", "updatedBy": "1.0.0"},
        {"self_test": "active", "updatedBy": "1.0.1"},
        {},
    ]
    assert ReportPoint.PROGRESS in {context.point for context in seen}


def test_failing_restart_callback_keeps_the_update(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.stop()

    def broken_restart() -> None:
        raise OSError("reboot not permitted")

    engine = UpdateEngine(
        job_source=rig.source, parsers=JsonPlanParser(), downloaders=[rig.downloader], verifier=rig.verifier,
        boot_control=rig.boot, state_store=rig.store, restart=broken_restart, config=FAST,
    )
    engine.add_listener(rig.events.append)
    engine.start()
    rig.publish("job1")
    rig.wait_event(EngineEventKind.RESTART_REQUESTED, "job1")
    assert engine.wait_until_idle(10)
    assert engine.awaiting_restart and engine.state is EngineState.RESTARTING
    engine.stop()
    rig.boot.boot()
    rig.start()
    rig.wait_event(EngineEventKind.FINISHED, "job1")
    assert rig.source.status_of("job1") is JobStatus.SUCCEEDED
    rig.stop()


@pytest.mark.parametrize(
    ("image_version", "status", "code"),
    [("1.0.1", JobStatus.SUCCEEDED, None), ("1.0.0", JobStatus.FAILED, "POLICY_VERSION_REJECTED"),
     ("0.9.0", JobStatus.FAILED, "POLICY_VERSION_REJECTED")],
)
def test_version_checked_after_restart_when_the_plan_has_none(
    tmp_path: Path, image_version: str, status: JobStatus, code: str | None
) -> None:
    seen: list[ReportContext] = []

    def keep(context: ReportContext) -> dict[str, str] | None:
        seen.append(context)
        return default_report_details(context)

    rig = Rig(tmp_path)
    rig.stop()
    rig.publish("job1", version=image_version, notify=False)
    del rig.source.jobs["job1"]["version"]  # like an AWS afr_ota document: the version is only in the image

    def start() -> UpdateEngine:
        engine = UpdateEngine(
            job_source=rig.source, parsers=JsonPlanParser(), downloaders=[rig.downloader],
            verifier=rig.verifier, boot_control=rig.boot, state_store=rig.store, restart=lambda: None,
            config=FAST, report_details=keep,
        )
        engine.add_listener(rig.events.append)
        engine.start()
        return engine

    engine = start()  # the job source offers the job when the engine asks for the next one
    rig.wait_event(EngineEventKind.RESTART_REQUESTED, "job1")
    engine.stop()
    rig.boot.boot()
    engine = start()
    rig.wait_event(EngineEventKind.FINISHED, "job1")
    engine.stop()
    final = rig.source.reports[-1]
    assert final.status is status
    assert final.details.get("code") == code
    assert {str(c.previous_version) for c in seen} == {"1.0.0"}
    if status is JobStatus.FAILED:
        rig.boot.boot()
        assert rig.boot.state().running_version == Version.parse("1.0.0")


def test_rollback_before_confirm_detected_when_the_plan_has_no_version(tmp_path: Path) -> None:
    """A power cut right after CONFIRMING is saved: the one-trial bootloader goes back to the old image; without
    a plan version the engine must still see that the old image runs and report FAILED, not SUCCEEDED."""

    reached, release = threading.Event(), threading.Event()

    def cut(point: str) -> None:
        if point == "state:confirming":
            reached.set()
            release.wait(10)  # the worker stops here; the engine is stopped meanwhile, like a power cut

    rig = Rig(tmp_path, config=attrs.evolve(FAST, fault_hook=cut))
    rig.stop()
    rig.publish("job1", notify=False)
    del rig.source.jobs["job1"]["version"]
    rig.start()
    rig.wait_event(EngineEventKind.RESTART_REQUESTED, "job1")
    rig.reboot()  # into the trial image
    assert reached.wait(10)
    rig.config = FAST
    timer = threading.Timer(0.2, release.set)
    timer.start()
    rig.reboot()  # the cut: the bootloader abandons the unconfirmed trial
    timer.join()
    rig.wait_event(EngineEventKind.FINISHED, "job1")
    rig.stop()
    final = rig.source.reports[-1]
    assert final.status is JobStatus.FAILED and final.details.get("code") == "INSTALL_ROLLED_BACK"
    assert rig.boot.state().running_version == Version.parse("1.0.0")


def test_slot_changed_after_verification_is_never_activated(tmp_path: Path) -> None:
    """What is activated is what was verified: a slot altered after download fails the hand-off check."""
    holder: list[Rig] = []

    def corrupt_slot(point: str) -> None:
        if point == "state:activating":
            rig = holder[0]
            slot = rig.boot.inactive_slot_path()
            data = bytearray(slot.read_bytes())
            data[100] ^= 0xFF
            slot.write_bytes(bytes(data))

    rig = Rig(tmp_path, config=attrs.evolve(FAST, fault_hook=corrupt_slot))
    holder.append(rig)
    rig.start()
    rig.publish("job1")
    rig.wait_event(EngineEventKind.FINISHED, "job1")
    assert rig.source.status_of("job1") is JobStatus.FAILED
    assert rig.boot.activations == 0
    assert rig.boot.state().running_version == Version.parse("1.0.0")
    rig.stop()

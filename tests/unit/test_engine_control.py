"""The engine under the cloud's and the device's control: cancel, new jobs, update control, loop breakers."""

from __future__ import annotations

import datetime
from pathlib import Path

from ota_core import FileStateStore, JobEvent, JobEventKind, JobStatus, ManualClock, Version
from ota_core.engine import EngineConfig, EngineEventKind, EngineState
from ota_core.update_control import UpdateControl
from tests.engine_rig import FAST, Rig, blocking_hook


def test_cancel_mid_download_cleans_up(tmp_path: Path) -> None:
    hook, reached, release = blocking_hook()
    rig = Rig(tmp_path, chunk_size=4096, on_chunk=hook)
    rig.start()
    rig.publish("job1")
    assert reached.wait(10)
    rig.source.cancel("job1")
    release.set()
    rig.wait_event(EngineEventKind.CANCELLED, "job1")
    rig.wait_idle()
    assert rig.source.steps("job1") == ["accepted"]
    assert not [r for r in rig.source.reports if r.status.is_terminal]
    assert rig.store.load("engine-progress") is None
    assert [name for name in rig.store.names() if "-dl-" in name] == []
    assert rig.boot.activations == 0
    assert rig.engine is not None and rig.engine.state is EngineState.IDLE
    rig.stop()


def test_cancel_while_waiting_for_policy(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    control = UpdateControl(rig.store, download_while_waiting=False)
    control.disable()
    rig.policy = control
    rig.start()
    rig.publish("job1")
    rig.wait_event(EngineEventKind.WAITING, "job1")
    assert control.pending
    rig.source.cancel("job1")
    rig.wait_event(EngineEventKind.CANCELLED, "job1")
    assert not control.pending_event.is_set()
    assert control.pending_job_id is None
    rig.stop()


def test_cancel_after_activation_is_ignored(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.start()
    rig.publish("job1")
    rig.wait_event(EngineEventKind.RESTART_REQUESTED, "job1")
    rig.source.emit(JobEvent(JobEventKind.CANCELLED, "job1"))
    rig.wait_event(EngineEventKind.IGNORED, "job1")
    rig.reboot()
    rig.wait_event(EngineEventKind.FINISHED, "job1")
    assert rig.source.status_of("job1") is JobStatus.SUCCEEDED
    rig.stop()


def test_cancel_of_other_job_changes_nothing(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.start()
    rig.source.emit(JobEvent(JobEventKind.CANCELLED, "unknown"))
    rig.source.emit(JobEvent(JobEventKind.NOTHING_PENDING))
    rig.wait_idle()
    assert rig.engine is not None and rig.engine.state is EngineState.IDLE
    rig.stop()


def test_new_job_mid_download_supersedes(tmp_path: Path) -> None:
    hook, reached, release = blocking_hook()
    rig = Rig(tmp_path, chunk_size=4096, on_chunk=hook)
    rig.start()
    rig.publish("job1")
    assert reached.wait(10)
    rig.publish("job2", version="1.0.2")
    release.set()
    rig.wait_event(EngineEventKind.SUPERSEDED, "job1")
    rig.wait_event(EngineEventKind.RESTART_REQUESTED, "job2")
    rig.reboot()
    rig.wait_event(EngineEventKind.FINISHED, "job2")
    assert rig.boot.state().running_version == Version.parse("1.0.2")
    assert rig.source.status_of("job2") is JobStatus.SUCCEEDED
    rig.stop()


def test_new_job_waits_when_not_superseding(tmp_path: Path) -> None:
    config = EngineConfig(report_retry_delays=(0.0,), poll_interval=0.2, supersede=False)
    hook, reached, release = blocking_hook()
    rig = Rig(tmp_path, config=config, chunk_size=4096, on_chunk=hook)
    rig.start()
    rig.publish("job1")
    assert reached.wait(10)
    rig.publish("job2", version="1.0.2")
    release.set()
    rig.wait_event(EngineEventKind.IGNORED, "job2")
    rig.wait_event(EngineEventKind.RESTART_REQUESTED, "job1")
    rig.reboot()
    rig.wait_event(EngineEventKind.FINISHED, "job1")
    # The cloud offers job2 next, and it runs.
    rig.wait_event(EngineEventKind.RESTART_REQUESTED, "job2")
    rig.reboot()
    rig.wait_event(EngineEventKind.FINISHED, "job2")
    assert rig.boot.state().running_version == Version.parse("1.0.2")
    rig.stop()


def test_new_job_after_activation_is_queued(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    engine = rig.start()
    rig.publish("job3", version="1.0.3")
    rig.wait_event(EngineEventKind.RESTART_REQUESTED, "job3")
    rig.source.emit(JobEvent(JobEventKind.NEW, "job4", {"files": []}))
    rig.wait_event(EngineEventKind.IGNORED, "job4")
    assert engine.state is EngineState.RESTARTING
    rig.stop()


def test_changed_document_restarts_same_job(tmp_path: Path) -> None:
    hook, reached, release = blocking_hook()
    rig = Rig(tmp_path, chunk_size=4096, on_chunk=hook)
    rig.start()
    document = rig.publish("job1")
    assert reached.wait(10)
    rig.source.emit(JobEvent(JobEventKind.CHANGED, "job1", document))
    changed = dict(document, note="operator edited")
    rig.source.emit(JobEvent(JobEventKind.CHANGED, "job1", changed))
    release.set()
    rig.wait_event(EngineEventKind.IGNORED, "job1")
    rig.wait_event(EngineEventKind.SUPERSEDED, "job1")
    rig.wait_event(EngineEventKind.RESTART_REQUESTED, "job1")
    rig.stop()


def test_disabled_then_enabled(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    control = UpdateControl(rig.store, download_while_waiting=False)
    control.disable()
    rig.policy = control
    rig.start()
    rig.publish("job1")
    rig.wait_event(EngineEventKind.WAITING, "job1")
    rig.wait_idle()
    assert control.pending_event.is_set()
    assert rig.downloader.started == 0
    control.enable()
    rig.wait_event(EngineEventKind.RESTART_REQUESTED, "job1")
    assert not control.pending_event.is_set()
    rig.reboot()
    rig.wait_event(EngineEventKind.FINISHED, "job1")
    assert control.pending_job_id is None
    rig.stop()


def test_forced_update_overrides_disabled(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    control = UpdateControl(rig.store)
    control.disable()
    rig.policy = control
    rig.start()
    rig.publish("job1")
    rig.wait_event(EngineEventKind.WAITING, "job1")
    control.set_forced(True)
    rig.wait_event(EngineEventKind.RESTART_REQUESTED, "job1")
    rig.stop()


def test_deferral_downloads_then_waits_for_activation(tmp_path: Path) -> None:
    clock = ManualClock(datetime.datetime(2026, 3, 1, 10, 0, tzinfo=datetime.UTC))
    rig = Rig(tmp_path, clock=clock)
    control = UpdateControl(rig.store, clock=clock)
    rig.policy = control
    control.notify("job1")
    until = control.defer(60, "job1")
    assert until == clock.now() + datetime.timedelta(minutes=60)
    rig.start()
    rig.publish("job1")
    rig.wait_for(lambda: rig.engine is not None and rig.engine.state is EngineState.DOWNLOADED)
    rig.wait_event(EngineEventKind.WAITING, "job1")
    assert control.pending
    assert rig.boot.activations == 0
    clock.advance(59 * 60)
    assert rig.engine is not None
    rig.engine.poke()
    rig.wait_idle()
    assert rig.boot.activations == 0
    clock.advance(61)
    rig.engine.poke()
    rig.wait_event(EngineEventKind.RESTART_REQUESTED, "job1")
    rig.stop()


def test_critical_section_holds_the_update(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    control = UpdateControl(rig.store)
    rig.policy = control
    rig.start()
    with control.critical_section():
        rig.publish("job1")
        rig.wait_event(EngineEventKind.WAITING, "job1")
        rig.wait_for(lambda: rig.engine is not None and rig.engine.state is EngineState.DOWNLOADED)
        rig.wait_idle()
        assert rig.boot.activations == 0
    rig.wait_event(EngineEventKind.RESTART_REQUESTED, "job1")
    rig.stop()


def test_policy_state_survives_restart(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    control = UpdateControl(rig.store, download_while_waiting=False)
    control.disable()
    rig.policy = control
    rig.start()
    rig.publish("job1")
    rig.wait_event(EngineEventKind.WAITING, "job1")
    rig.stop()
    again = UpdateControl(FileStateStore(tmp_path / "state"))
    assert not again.enabled and again.pending_job_id == "job1"
    rig.policy = again
    rig.start()
    rig.wait_event(EngineEventKind.WAITING, "job1", count=2)
    again.enable()
    rig.wait_event(EngineEventKind.RESTART_REQUESTED, "job1")
    rig.stop()


def test_loop_breaker_on_unexpected_restarts(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    control = UpdateControl(rig.store, download_while_waiting=False)
    control.disable()
    rig.policy = control
    rig.start()
    rig.publish("job1")
    rig.wait_event(EngineEventKind.WAITING, "job1")
    for _ in range(FAST.max_unexpected_restarts):
        rig.reboot()
        rig.wait_idle()
        assert rig.source.status_of("job1") is JobStatus.IN_PROGRESS
    rig.reboot()
    rig.wait_event(EngineEventKind.FINISHED, "job1")
    final = rig.source.reports[-1]
    assert final.status is JobStatus.FAILED and final.details["code"] == "UPDATE_LOOP_ABORTED"
    rig.stop()


def test_loop_breaker_on_transitions(tmp_path: Path) -> None:
    config = EngineConfig(report_retry_delays=(0.0,), poll_interval=0.2, max_transitions=2)
    rig = Rig(tmp_path, config=config)
    rig.start()
    rig.publish("job1")
    rig.wait_event(EngineEventKind.FINISHED, "job1")
    assert rig.source.reports[-1].details["code"] == "UPDATE_LOOP_ABORTED"
    assert rig.boot.activations == 0
    rig.stop()


def test_restart_loop_after_activation_rolls_back(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.start()
    rig.publish("job1")
    rig.wait_event(EngineEventKind.RESTART_REQUESTED, "job1")
    rig.stop()
    # The device dies before the bootloader runs the new image: ACTIVATING/RESTARTING stays persisted.
    rig.boot.boot()
    rig.start()
    rig.wait_event(EngineEventKind.FINISHED, "job1")
    assert rig.source.status_of("job1") is JobStatus.SUCCEEDED


def test_wait_until_idle_times_out_when_busy(tmp_path: Path) -> None:
    hook, reached, release = blocking_hook()
    rig = Rig(tmp_path, on_chunk=hook)
    engine = rig.start()
    rig.publish("job1")
    assert reached.wait(10)
    assert not engine.wait_until_idle(0.05)
    release.set()
    rig.wait_event(EngineEventKind.RESTART_REQUESTED, "job1")
    rig.stop()

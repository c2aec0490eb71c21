"""UpdateControl: settings, gates, pending flag and events, persistence across restarts."""

from __future__ import annotations

import datetime
import threading
from pathlib import Path

import pytest

from ota_core import ConfigurationError, FileStateStore, ManualClock, PolicyError
from ota_core.update_control import (
    ControlEvent,
    ControlEventKind,
    Gate,
    MaintenanceWindow,
    TimeOfDay,
    UpdateControl,
    UpdateKind,
)


def held(control: UpdateControl) -> bool:
    return control.in_critical_section


def pending(control: UpdateControl) -> bool:
    return control.pending


def job_of(control: UpdateControl) -> str | None:
    return control.pending_job_id


START = datetime.datetime(2026, 6, 10, 13, 30, tzinfo=datetime.UTC)


def make(tmp_path: Path, **kwargs: object) -> tuple[UpdateControl, ManualClock, list[ControlEvent]]:
    clock = ManualClock(START)
    control = UpdateControl(FileStateStore(tmp_path), clock=clock, **kwargs)  # type: ignore[arg-type]
    events: list[ControlEvent] = []
    control.add_listener(events.append)
    return control, clock, events


def test_defaults_allow(tmp_path: Path) -> None:
    control, _clock, events = make(tmp_path)
    assert control.enabled and not control.forced and control.download_while_waiting
    decision = control.decide("j", UpdateKind.APPLICATION, Gate.ACTIVATE)
    assert decision.allowed
    assert not pending(control) and events == []


def test_disabled_sets_pending_and_emits_once(tmp_path: Path) -> None:
    control, _clock, events = make(tmp_path)
    control.disable()
    assert control.decide("j", UpdateKind.OS, Gate.DOWNLOAD).allowed is False
    assert control.decide("j", UpdateKind.OS, Gate.DOWNLOAD).allowed is False
    assert pending(control) and control.pending_event.is_set()
    assert [e.kind for e in events].count(ControlEventKind.PENDING) == 1
    control.enable()
    assert control.decide("j", UpdateKind.OS, Gate.ACTIVATE).allowed
    assert not pending(control)
    assert events[-1].kind is ControlEventKind.RELEASED


def test_forced_overrides_disabled_but_not_critical_sections(tmp_path: Path) -> None:
    control, _clock, _events = make(tmp_path)
    control.disable()
    control.set_forced(True)
    assert control.forced
    assert control.decide("j", UpdateKind.OS, Gate.ACTIVATE).reason == "forced"
    with control.critical_section():
        assert held(control)
        assert not control.decide("j", UpdateKind.OS, Gate.ACTIVATE).allowed
    assert held(control) is False
    assert control.decide("j", UpdateKind.OS, Gate.ACTIVATE).allowed


def test_nested_critical_sections_from_threads(tmp_path: Path) -> None:
    control, _clock, events = make(tmp_path)
    inside = threading.Event()
    leave = threading.Event()

    def worker() -> None:
        with control.critical_section():
            inside.set()
            leave.wait(5)

    thread = threading.Thread(target=worker)
    thread.start()
    assert inside.wait(5)
    with control.critical_section():
        pass
    assert held(control)  # the other thread still holds one
    leave.set()
    thread.join(5)
    assert held(control) is False
    assert events[-1].reason == "critical section ended"


def test_download_may_proceed_while_activation_waits(tmp_path: Path) -> None:
    control, _clock, _events = make(tmp_path)
    control.notify("j")
    control.defer(30)
    download = control.decide("j", UpdateKind.APPLICATION, Gate.DOWNLOAD)
    assert download.allowed and "activation waits" in download.reason
    assert not pending(control)
    activate = control.decide("j", UpdateKind.APPLICATION, Gate.ACTIVATE)
    assert not activate.allowed and activate.retry_at == START + datetime.timedelta(minutes=30)
    assert pending(control)
    control.set_download_while_waiting(False)
    assert not control.decide("j", UpdateKind.APPLICATION, Gate.DOWNLOAD).allowed


def test_disabled_blocks_download_even_when_download_may_proceed(tmp_path: Path) -> None:
    control, _clock, _events = make(tmp_path)
    control.disable()
    assert not control.decide("j", UpdateKind.OS, Gate.DOWNLOAD).allowed


def test_deferral_is_clamped_to_the_window_from_first_notification(tmp_path: Path) -> None:
    control, clock, _events = make(tmp_path)
    control.notify("j", UpdateKind.OS)
    clock.advance(20 * 3600)
    until = control.defer(10 * 60)
    assert until == START + datetime.timedelta(hours=24)
    assert control.first_notified("j") == START
    assert control.deadline("j") == START + datetime.timedelta(hours=24)
    assert control.first_notified("other") is None and control.deadline("other") is None
    clock.advance(4 * 3600 - 1)
    assert not control.decide("j", UpdateKind.OS, Gate.ACTIVATE).allowed
    clock.advance(1)
    assert control.decide("j", UpdateKind.OS, Gate.ACTIVATE).reason == "maximum deferral reached"


def test_application_window_is_167_hours(tmp_path: Path) -> None:
    control, clock, _events = make(tmp_path)
    control.notify("j", UpdateKind.APPLICATION)
    assert control.defer(10**6) == START + datetime.timedelta(hours=167)
    clock.advance(167 * 3600)
    assert control.decide("j", UpdateKind.APPLICATION, Gate.ACTIVATE).allowed


def test_defer_errors_and_resume(tmp_path: Path) -> None:
    control, _clock, _events = make(tmp_path)
    with pytest.raises(PolicyError):
        control.defer(5)
    control.notify("j")
    with pytest.raises(PolicyError):
        control.defer(5, job_id="other")
    with pytest.raises(ConfigurationError):
        control.defer(-1)
    control.defer(5)
    assert not control.decide("j", UpdateKind.APPLICATION, Gate.ACTIVATE).allowed
    control.resume()
    control.resume()  # nothing to resume: no error
    assert control.decide("j", UpdateKind.APPLICATION, Gate.ACTIVATE).allowed


def test_target_time_holds_until_the_right_minute(tmp_path: Path) -> None:
    control, clock, _events = make(tmp_path)
    assert control.set_target_time("13:02:00") == "13:02:00"
    assert control.target_time == TimeOfDay(13, 2)
    control.notify("j", UpdateKind.APPLICATION)
    decision = control.decide("j", UpdateKind.APPLICATION, Gate.ACTIVATE)
    # 13:30 with a target of 13:02: tomorrow at 13:02 (23 h 32 min), not the 167-hour maximum.
    assert decision.retry_at == START + datetime.timedelta(hours=23, minutes=32)
    clock.advance((23 * 60 + 31) * 60)
    assert not control.decide("j", UpdateKind.APPLICATION, Gate.ACTIVATE).allowed
    clock.advance(60)
    assert control.decide("j", UpdateKind.APPLICATION, Gate.ACTIVATE).allowed


def test_clearing_the_target_time_releases(tmp_path: Path) -> None:
    control, _clock, _events = make(tmp_path)
    control.set_target_time("18:00", zone="UTC")
    control.notify("j")
    assert not control.decide("j", UpdateKind.APPLICATION, Gate.ACTIVATE).allowed
    assert control.set_target_time("") == ""
    assert control.decide("j", UpdateKind.APPLICATION, Gate.ACTIVATE).allowed
    with pytest.raises(ConfigurationError):
        control.set_target_time("25:00:00")
    assert control.target_time is None
    control.set_target_time(TimeOfDay(1, 0, "Europe/Berlin"))
    assert control.target_time == TimeOfDay(1, 0, "Europe/Berlin")


def test_maintenance_windows(tmp_path: Path) -> None:
    control, clock, _events = make(tmp_path)
    control.set_maintenance_windows([MaintenanceWindow(TimeOfDay(2, 0), datetime.timedelta(hours=1))])
    control.notify("j", UpdateKind.APPLICATION)
    decision = control.decide("j", UpdateKind.APPLICATION, Gate.ACTIVATE)
    assert not decision.allowed and decision.reason == "outside the maintenance windows"
    assert decision.retry_at == datetime.datetime(2026, 6, 11, 2, 0, tzinfo=datetime.UTC)
    clock.set_wall(datetime.datetime(2026, 6, 11, 2, 30, tzinfo=datetime.UTC))
    assert control.decide("j", UpdateKind.APPLICATION, Gate.ACTIVATE).allowed
    control.set_maintenance_windows([])
    assert control.maintenance_windows == ()


def test_waits_never_pass_the_deadline(tmp_path: Path) -> None:
    control, clock, _events = make(tmp_path)
    control.set_maintenance_windows([MaintenanceWindow(TimeOfDay(2, 0), datetime.timedelta(hours=1))])
    control.notify("j", UpdateKind.OS)
    clock.advance(23 * 3600)  # 12:30 next day; the window opens at 02:00 the day after: beyond 24 h
    decision = control.decide("j", UpdateKind.OS, Gate.ACTIVATE)
    assert decision.retry_at == START + datetime.timedelta(hours=24)


def test_everything_survives_a_restart(tmp_path: Path) -> None:
    control, clock, _events = make(tmp_path)
    control.disable()
    control.set_forced(False)
    control.set_target_time("04:15:00")
    control.set_maintenance_windows([MaintenanceWindow(TimeOfDay(3, 0, "Europe/Berlin"),
                                                       datetime.timedelta(minutes=90))])
    control.set_download_while_waiting(False)
    control.notify("j", UpdateKind.OS)
    control.defer(45)
    again = UpdateControl(FileStateStore(tmp_path), clock=clock)
    assert not again.enabled and not again.download_while_waiting
    assert again.target_time == TimeOfDay(4, 15)
    assert again.maintenance_windows == control.maintenance_windows
    assert job_of(again) == "j" and again.first_notified("j") == START
    # A second notification keeps the first time.
    clock.advance(3600)
    again.notify("j", UpdateKind.OS)
    assert again.first_notified("j") == START
    again.complete("other")
    assert job_of(again) == "j"
    again.complete("j")
    assert job_of(again) is None
    again.resume()


def test_unusable_document_falls_back_to_defaults(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path)
    store.save("update-control", {"enabled": False, "target": {"hour": 99, "minute": 0, "zone": "UTC"}})
    control = UpdateControl(store)
    assert control.enabled and control.target_time is None


def test_listener_errors_are_contained(tmp_path: Path) -> None:
    control, _clock, _events = make(tmp_path)

    def broken(_event: ControlEvent) -> None:
        raise RuntimeError("bug")

    control.add_listener(broken)
    control.disable()
    assert not control.enabled


def test_custom_limits(tmp_path: Path) -> None:
    control, _clock, _events = make(tmp_path, max_deferral={UpdateKind.OS: datetime.timedelta(minutes=5)})
    control.notify("j", UpdateKind.OS)
    assert control.defer(60) == START + datetime.timedelta(minutes=5)

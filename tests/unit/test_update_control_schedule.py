"""Time-of-day, window and deferral arithmetic, including the Avnet vectors and its minute bug."""

from __future__ import annotations

import datetime

import pytest

from ota_core import ConfigurationError
from ota_core._schedule import (
    DEFAULT_MAX_DEFERRAL,
    clamp_deferral,
    deferral_deadline,
    minutes_until,
    next_occurrence,
    resolve_zone,
)
from ota_core.update_control import MaintenanceWindow, TimeOfDay, UpdateKind, parse_target_time

UTC = datetime.UTC


def at(hour: int, minute: int, day: int = 10) -> datetime.datetime:
    return datetime.datetime(2026, 6, day, hour, minute, tzinfo=UTC)


def avnet_delay(now: datetime.datetime, target: str, kind: UpdateKind) -> int:
    """What our policy defers for an update first seen at ``now`` with ``otaTargetUtcTime = target``."""
    parsed = parse_target_time(target)
    assert parsed is not None
    wanted = datetime.timedelta(minutes=minutes_until(now, next_occurrence(now, parsed)))
    granted = clamp_deferral(wanted, now=now, first_notified=now, kind=kind)
    return int(granted.total_seconds() // 60)


@pytest.mark.parametrize(
    ("now", "target", "kind", "minutes"),
    [
        (at(10, 0), "13:02:00", UpdateKind.OS, 182),
        (at(14, 0), "13:02:00", UpdateKind.OS, 1382),
        (at(23, 30), "00:15:00", UpdateKind.OS, 45),
        # The original compared only the hour and gave 1440 (OS) / 10020 (app) here.
        (at(13, 30), "13:02:00", UpdateKind.OS, 1412),
        (at(13, 30), "13:02:00", UpdateKind.APPLICATION, 1412),
    ],
)
def test_reference_vectors(now: datetime.datetime, target: str, kind: UpdateKind, minutes: int) -> None:
    assert avnet_delay(now, target, kind) == minutes


def test_same_minute_is_now_and_next_minute_is_tomorrow() -> None:
    target = TimeOfDay(13, 2)
    assert next_occurrence(at(13, 2), target) == at(13, 2)
    assert next_occurrence(at(13, 2) + datetime.timedelta(seconds=1), target) == at(13, 2, day=11)
    assert next_occurrence(at(13, 1), target) == at(13, 2)


@pytest.mark.parametrize("text", ["1:12:00", "12:1:00", "a1:12:00", "24:00:00", "12:60:00", "12-00-00",
                                  " 12:00:00", "12:00:0", "\uff11\uff12:00:00", "12:00:00:00", "12:00:00\n"])
def test_bad_target_times(text: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_target_time(text)


def test_target_time_forms() -> None:
    assert parse_target_time("") is None
    assert parse_target_time("13:02:59") == TimeOfDay(13, 2)
    assert parse_target_time("13:02") == TimeOfDay(13, 2)
    assert TimeOfDay(7, 5).text() == "07:05:00"
    with pytest.raises(ConfigurationError):
        parse_target_time(1302)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        TimeOfDay(1, 2, "Mars/Olympus_Mons")
    with pytest.raises(ConfigurationError):
        resolve_zone("../etc/passwd")


def test_target_in_a_time_zone() -> None:
    berlin = TimeOfDay(3, 0, "Europe/Berlin")  # 01:00 UTC in summer
    assert next_occurrence(at(0, 30), berlin) == at(1, 0)
    assert next_occurrence(at(2, 0), berlin) == at(1, 0, day=11)
    assert resolve_zone("utc") is UTC


def test_dst_gap_maps_forward() -> None:
    # 2026-03-29 02:30 does not exist in Berlin; the occurrence falls in the hour after the gap.
    start = datetime.datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
    when = next_occurrence(start, TimeOfDay(2, 30, "Europe/Berlin"))
    assert when.astimezone(resolve_zone("Europe/Berlin")).hour in (1, 3)
    assert when > datetime.datetime(2026, 3, 28, 23, 0, tzinfo=UTC)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ConfigurationError):
        next_occurrence(datetime.datetime(2026, 1, 1), TimeOfDay(1, 1))
    with pytest.raises(ConfigurationError):
        minutes_until(at(1, 1), datetime.datetime(2026, 1, 1))


def test_minutes_until_rounds_up() -> None:
    assert minutes_until(at(1, 0), at(1, 0)) == 0
    assert minutes_until(at(1, 0), at(0, 0)) == 0
    assert minutes_until(at(1, 0), at(1, 0) + datetime.timedelta(seconds=1)) == 1
    assert minutes_until(at(1, 0), at(1, 2)) == 2


def test_clamp_and_deadline() -> None:
    first = at(0, 0)
    assert DEFAULT_MAX_DEFERRAL[UpdateKind.OS] == datetime.timedelta(hours=24)
    assert DEFAULT_MAX_DEFERRAL[UpdateKind.APPLICATION] == datetime.timedelta(hours=167)
    assert deferral_deadline(first, UpdateKind.OS) == at(0, 0, day=11)
    later = first + datetime.timedelta(hours=20)
    granted = clamp_deferral(
        datetime.timedelta(hours=10), now=later, first_notified=first, kind=UpdateKind.OS
    )
    assert granted == datetime.timedelta(hours=4)
    past = first + datetime.timedelta(hours=30)
    assert clamp_deferral(datetime.timedelta(hours=1), now=past, first_notified=first,
                          kind=UpdateKind.OS) == datetime.timedelta(0)


def test_maintenance_window_across_midnight() -> None:
    window = MaintenanceWindow(TimeOfDay(23, 0), datetime.timedelta(hours=2))
    assert window.contains(at(23, 30))
    assert window.contains(at(0, 59))
    assert not window.contains(at(1, 0))
    assert window.next_open(at(0, 30)) == at(0, 30)
    assert window.next_open(at(12, 0)) == at(23, 0)
    with pytest.raises(ConfigurationError):
        MaintenanceWindow(TimeOfDay(1, 0), datetime.timedelta(0))
    with pytest.raises(ConfigurationError):
        MaintenanceWindow(TimeOfDay(1, 0), datetime.timedelta(days=2))

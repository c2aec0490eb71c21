"""Property tests of the policy arithmetic, and a fuzz test of the target-time parser."""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ota_core import ConfigurationError, ManualClock, StoredDocument
from ota_core._schedule import (
    DEFAULT_MAX_DEFERRAL,
    MaintenanceWindow,
    TimeOfDay,
    UpdateKind,
    clamp_deferral,
    minutes_until,
    next_occurrence,
    parse_target_time,
    resolve_zone,
)
from ota_core.update_control import Gate, UpdateControl

UTC = datetime.UTC
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]

instants = st.datetimes(
    min_value=datetime.datetime(2000, 1, 1), max_value=datetime.datetime(2099, 12, 31), timezones=st.just(UTC)
)
times_of_day = st.builds(TimeOfDay, st.integers(0, 23), st.integers(0, 59), st.sampled_from(ZONES))
kinds = st.sampled_from(list(UpdateKind))


@settings(max_examples=200)
@given(now=instants, target=times_of_day)
def test_next_occurrence_is_the_first_matching_minute(now: datetime.datetime, target: TimeOfDay) -> None:
    when = next_occurrence(now, target)
    assert when >= now
    assert when - now <= datetime.timedelta(hours=26)  # a day, plus a DST shift
    zone = resolve_zone(target.zone)
    local = when.astimezone(zone)
    if (local.hour, local.minute) != (target.hour, target.minute):
        # Only possible when the wanted local time does not exist that day (a DST gap).
        wanted = datetime.datetime.combine(
            local.date(), datetime.time(target.hour, target.minute), tzinfo=zone
        )
        assert wanted.astimezone(UTC).astimezone(zone).time() != wanted.time()
    if target.zone == "UTC":
        assert (when.hour, when.minute, when.second) == (target.hour, target.minute, 0)
        assert when - now < datetime.timedelta(days=1)


@settings(max_examples=200)
@given(now=instants, hour=st.integers(0, 23), minute=st.integers(0, 59))
def test_utc_delay_matches_plain_minute_arithmetic(now: datetime.datetime, hour: int, minute: int) -> None:
    # The corrected Avnet rule: compare full HH:MM; a target earlier in the day means tomorrow.
    now = now.replace(second=0, microsecond=0)
    current = now.hour * 60 + now.minute
    wanted = hour * 60 + minute
    expected = (wanted - current) % 1440
    assert minutes_until(now, next_occurrence(now, TimeOfDay(hour, minute))) == expected


@settings(max_examples=200)
@given(
    first=instants,
    elapsed=st.timedeltas(min_value=datetime.timedelta(0), max_value=datetime.timedelta(days=10)),
    requested=st.timedeltas(min_value=datetime.timedelta(0), max_value=datetime.timedelta(days=10)),
    kind=kinds,
)
def test_clamped_deferral_never_exceeds_the_window(
    first: datetime.datetime, elapsed: datetime.timedelta, requested: datetime.timedelta, kind: UpdateKind
) -> None:
    now = first + elapsed
    granted = clamp_deferral(requested, now=now, first_notified=first, kind=kind)
    assert datetime.timedelta(0) <= granted <= requested
    assert now + granted <= max(now, first + DEFAULT_MAX_DEFERRAL[kind])
    if now + requested <= first + DEFAULT_MAX_DEFERRAL[kind]:
        assert granted == requested


@settings(max_examples=200)
@given(now=instants, start=times_of_day, minutes=st.integers(1, 1440))
def test_window_next_open_is_inside_the_window(
    now: datetime.datetime, start: TimeOfDay, minutes: int
) -> None:
    window = MaintenanceWindow(start, datetime.timedelta(minutes=minutes))
    opens = window.next_open(now)
    assert opens >= now
    assert window.contains(opens)


@settings(max_examples=200)
@given(text=st.text(max_size=12))
def test_target_parser_only_raises_configuration_errors(text: str) -> None:
    try:
        result = parse_target_time(text)
    except ConfigurationError:
        return
    if result is not None:
        assert 0 <= result.hour <= 23 and 0 <= result.minute <= 59
        assert parse_target_time(result.text()) == result
    else:
        assert text == ""


@settings(max_examples=100)
@given(hour=st.integers(0, 23), minute=st.integers(0, 59), seconds=st.integers(0, 59))
def test_target_parser_accepts_every_valid_time(hour: int, minute: int, seconds: int) -> None:
    assert parse_target_time(f"{hour:02d}:{minute:02d}:{seconds:02d}") == TimeOfDay(hour, minute)


class _MemoryStore:
    """A StateStore in a dict: the policy's persistence is tested elsewhere, here only its arithmetic."""

    def __init__(self) -> None:
        self.documents: dict[str, StoredDocument] = {}

    def load(self, name: str) -> StoredDocument | None:
        return self.documents.get(name)

    def save(self, name: str, data: Mapping[str, Any], *, schema_version: int = 1) -> None:
        self.documents[name] = StoredDocument(name, schema_version, json.loads(json.dumps(data)))

    def delete(self, name: str) -> None:
        self.documents.pop(name, None)


@settings(max_examples=150)
@given(
    kind=kinds,
    defer_minutes=st.one_of(st.none(), st.integers(0, 20_000)),
    target=st.one_of(st.none(), times_of_day),
    window=st.one_of(st.none(), st.tuples(times_of_day, st.integers(1, 1440))),
    elapsed=st.integers(0, 200 * 3600),
    forced=st.booleans(),
)
def test_an_enabled_device_never_waits_beyond_the_window(
    kind: UpdateKind,
    defer_minutes: int | None,
    target: TimeOfDay | None,
    window: tuple[TimeOfDay, int] | None,
    elapsed: int,
    forced: bool,
) -> None:
    start = datetime.datetime(2026, 6, 10, 13, 30, tzinfo=UTC)
    clock = ManualClock(start)
    control = UpdateControl(_MemoryStore(), clock=clock)
    control.set_target_time(target)
    if window is not None:
        control.set_maintenance_windows([MaintenanceWindow(window[0], datetime.timedelta(minutes=window[1]))])
    control.set_forced(forced)
    control.notify("job", kind)
    if defer_minutes is not None:
        control.defer(defer_minutes)
    clock.advance(elapsed)
    decision = control.decide("job", kind, Gate.ACTIVATE)
    deadline = start + DEFAULT_MAX_DEFERRAL[kind]
    if forced or clock.now() >= deadline:
        assert decision.allowed
    if not decision.allowed:
        assert decision.retry_at is not None
        assert clock.now() < decision.retry_at <= deadline

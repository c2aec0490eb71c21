"""Pure time arithmetic for update control: times of day, maintenance windows and deferral caps.

Nothing here reads a clock: every function takes ``now`` (an aware datetime) so the rules can be
tested exhaustively, including the minute handling that the Avnet Azure Sphere sample got wrong (it
compared only the hour when deciding whether the target time was already past today).
"""

from __future__ import annotations

import datetime
import enum
import math
import re
import zoneinfo
from collections.abc import Callable
from typing import Any

import attrs

from ota_core.errors import ConfigurationError

__all__ = [
    "DEFAULT_MAX_DEFERRAL",
    "MaintenanceWindow",
    "TimeOfDay",
    "UpdateKind",
    "clamp_deferral",
    "deferral_deadline",
    "minutes_until",
    "next_occurrence",
    "parse_target_time",
    "resolve_zone",
]

_UTC = datetime.UTC
_TARGET_TEXT = re.compile(r"([0-9]{2}):([0-9]{2})(?::[0-9]{2})?", re.ASCII)


class UpdateKind(enum.StrEnum):
    """What an update replaces; it decides how long the update may be deferred."""

    OS = "os"
    APPLICATION = "application"


DEFAULT_MAX_DEFERRAL: dict[UpdateKind, datetime.timedelta] = {
    UpdateKind.OS: datetime.timedelta(minutes=1440),
    UpdateKind.APPLICATION: datetime.timedelta(minutes=10020),
}
"""Azure Sphere's limits, counted from the first notification: 24 h for OS images, 167 h for apps."""


def resolve_zone(name: str) -> datetime.tzinfo:
    """Return the time zone called ``name`` (``"UTC"`` or an IANA name); ``ConfigurationError`` if unknown."""
    if name.upper() == "UTC":
        return _UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
        raise ConfigurationError(f"unknown time zone {name!r}") from error


def _require_aware(now: datetime.datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ConfigurationError("update-control times must be aware datetimes")


def _check_zone(_instance: object, _attribute: object, value: object) -> None:
    if not isinstance(value, str):
        raise ConfigurationError(f"a time zone name must be a string, got {type(value).__name__}")
    resolve_zone(value)


def _check_clock_field(limit: int) -> Callable[[Any, Any, Any], None]:
    def check(_instance: Any, attribute: Any, value: Any) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= limit:
            raise ConfigurationError(f"{attribute.name} must be an integer from 0 to {limit}, got {value!r}")

    return check


@attrs.frozen
class TimeOfDay:
    """A wall-clock time (hour and minute) in a named zone; seconds are not used."""

    hour: int = attrs.field(validator=_check_clock_field(23))
    minute: int = attrs.field(validator=_check_clock_field(59))
    zone: str = attrs.field(default="UTC", validator=_check_zone)

    def text(self) -> str:
        """The time as the Avnet twin property reports it back: ``"HH:MM:00"``."""
        return f"{self.hour:02d}:{self.minute:02d}:00"


def parse_target_time(text: str, zone: str = "UTC") -> TimeOfDay | None:
    """Parse an ``otaTargetUtcTime``-style value: ``"HH:MM:SS"`` or ``"HH:MM"``; ``""`` means no target.

    The seconds are accepted and ignored, as in the original. Anything else raises ``ConfigurationError``
    (single-digit fields, letters, 24:00, minute 60).
    """
    if not isinstance(text, str):
        raise ConfigurationError(f"a target time must be a string, got {type(text).__name__}")
    if text == "":
        return None
    match = _TARGET_TEXT.fullmatch(text)
    if match is None:
        raise ConfigurationError(f"target time {text[:32]!r} is not HH:MM or HH:MM:SS")
    hour, minute = int(match.group(1)), int(match.group(2))
    if hour > 23 or minute > 59:
        raise ConfigurationError(f"target time {text!r} is out of range")
    return TimeOfDay(hour, minute, zone)


def next_occurrence(now: datetime.datetime, target: TimeOfDay) -> datetime.datetime:
    """The first instant at or after ``now`` whose local time in ``target.zone`` is ``target``.

    The comparison uses hour *and* minute (the original compared only the hour, so 13:30 with a
    target of 13:02 gave a negative delay and then the maximum deferral). On a day where the local
    time does not exist (a DST gap) the instant maps forward, as zoneinfo does for fold=0.
    """
    _require_aware(now)
    zone = resolve_zone(target.zone)
    local_now = now.astimezone(zone)
    day = local_now.date()
    for offset in range(3):
        candidate_day = day + datetime.timedelta(days=offset)
        candidate = datetime.datetime.combine(
            candidate_day, datetime.time(target.hour, target.minute), tzinfo=zone
        ).astimezone(_UTC)
        if candidate >= now:
            return candidate
    raise AssertionError("unreachable: a time of day recurs within two days")  # pragma: no cover


def minutes_until(now: datetime.datetime, when: datetime.datetime) -> int:
    """Whole minutes from ``now`` until ``when``, rounded up; 0 when ``when`` is not in the future."""
    _require_aware(now)
    _require_aware(when)
    seconds = (when - now).total_seconds()
    if seconds <= 0:
        return 0
    return math.ceil(seconds / 60)


def deferral_deadline(
    first_notified: datetime.datetime,
    kind: UpdateKind,
    limits: dict[UpdateKind, datetime.timedelta] | None = None,
) -> datetime.datetime:
    """The last instant an update first seen at ``first_notified`` may be held back."""
    _require_aware(first_notified)
    return first_notified + (limits or DEFAULT_MAX_DEFERRAL)[kind]


def clamp_deferral(
    requested: datetime.timedelta,
    *,
    now: datetime.datetime,
    first_notified: datetime.datetime,
    kind: UpdateKind,
    limits: dict[UpdateKind, datetime.timedelta] | None = None,
) -> datetime.timedelta:
    """Shorten a requested deferral so that it ends no later than the window allows; never negative."""
    _require_aware(now)
    remaining = deferral_deadline(first_notified, kind, limits) - now
    zero = datetime.timedelta(0)
    return max(zero, min(requested, remaining))


@attrs.frozen
class MaintenanceWindow:
    """A daily window, starting at ``start`` (in its zone) and lasting ``duration`` (up to a day)."""

    start: TimeOfDay
    duration: datetime.timedelta = attrs.field()

    @duration.validator
    def _check_duration(self, _attribute: object, value: object) -> None:
        if not isinstance(value, datetime.timedelta) or not (
            datetime.timedelta(0) < value <= datetime.timedelta(days=1)
        ):
            raise ConfigurationError("a maintenance window lasts more than 0 and at most 24 hours")

    def contains(self, now: datetime.datetime) -> bool:
        """True when ``now`` is inside today's or yesterday's occurrence of the window."""
        _require_aware(now)
        start = self._latest_start(now)
        return start <= now < start + self.duration

    def next_open(self, now: datetime.datetime) -> datetime.datetime:
        """``now`` if the window is open, else the next instant it opens."""
        if self.contains(now):
            return now
        return next_occurrence(now, self.start)

    def _latest_start(self, now: datetime.datetime) -> datetime.datetime:
        zone = resolve_zone(self.start.zone)
        local_day = now.astimezone(zone).date()
        for offset in range(3):
            candidate = datetime.datetime.combine(
                local_day - datetime.timedelta(days=offset),
                datetime.time(self.start.hour, self.start.minute),
                tzinfo=zone,
            ).astimezone(_UTC)
            if candidate <= now:
                return candidate
        raise AssertionError("unreachable: a window started within two days")  # pragma: no cover

"""Plan-level policies: expiry with an injectable clock, and device compatibility.

An update plan may carry ``attributes["expires"]`` (ISO 8601 text, an aware datetime or epoch
seconds); once that time has passed the plan is refused. Compatibility lists (ADU's ``compatibility``
or a plan's ``attributes["compatibility"]``) are lists of property maps; the device matches when every
property of at least one entry equals its own (case-insensitively, ``deviceManufacturer`` and
``manufacturer`` being the same property).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ota_core.clock import Clock
from ota_verify.errors import IncompatibleDeviceError, MalformedInputError, PlanExpiredError

__all__ = ["DeviceIdentity", "check_compatibility", "check_expiry", "parse_expiry"]


def _normalize_key(key: str) -> str:
    lowered = key.strip().lower()
    return lowered.removeprefix("device") if lowered in ("devicemanufacturer", "devicemodel") else lowered


def _normalize_properties(properties: Mapping[str, Any]) -> dict[str, str]:
    return {_normalize_key(str(k)): str(v) for k, v in properties.items()}


@attrs.frozen
class DeviceIdentity:
    """What this device is: properties such as manufacturer, model, hardware class."""

    properties: Mapping[str, str] = attrs.field(converter=_normalize_properties)

    def matches(self, entry: Mapping[str, Any]) -> bool:
        """Whether every property of ``entry`` equals this device's."""
        if not entry:
            return False
        for key, value in entry.items():
            mine = self.properties.get(_normalize_key(str(key)))
            if mine is None or not isinstance(value, str) or mine.lower() != value.lower():
                return False
        return True


def check_compatibility(device: DeviceIdentity, compatibility: Sequence[Mapping[str, Any]], *, what: str) -> None:
    """Refuse unless ``device`` matches one entry of ``compatibility`` (an empty list matches nothing)."""
    if not isinstance(compatibility, list | tuple):
        raise MalformedInputError(f"{what}: compatibility is not a list")
    for entry in compatibility:
        if isinstance(entry, Mapping) and device.matches(entry):
            return
    raise IncompatibleDeviceError(
        f"{what} is not for this device ({dict(device.properties)}); it targets {list(compatibility)!r:.200}"
    )


def parse_expiry(value: Any) -> datetime.datetime:
    """Read an expiry: an aware datetime, ISO 8601 text (``Z`` allowed) or epoch seconds."""
    if isinstance(value, datetime.datetime):
        when = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            when = datetime.datetime.fromtimestamp(value, datetime.UTC)
        except (OverflowError, OSError, ValueError) as error:
            raise MalformedInputError(f"expiry {value!r} is not a valid time") from error
    elif isinstance(value, str):
        try:
            when = datetime.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError as error:
            raise MalformedInputError(f"expiry {value!r:.40} is not ISO 8601") from error
    else:
        raise MalformedInputError(f"expiry must be a time, got {type(value).__name__}")
    if when.tzinfo is None:
        raise MalformedInputError("expiry has no time zone")
    return when


def check_expiry(expires: Any, clock: Clock) -> None:
    """Refuse when the clock reads later than ``expires``."""
    when = parse_expiry(expires)
    now = clock.now()
    if now > when:
        raise PlanExpiredError(
            f"update expired at {when.isoformat()} (now {now.isoformat()})",
            details={"expires": when.isoformat()},
        )

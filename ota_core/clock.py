"""Time as a dependency: monotonic time for timeouts and wall time for schedules, replaceable in tests."""

from __future__ import annotations

import datetime
import threading
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "ManualClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """The two clocks the library needs."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary start that never go backwards; for timeouts and rates."""
        ...

    def now(self) -> datetime.datetime:
        """The current wall time as an aware UTC datetime; for schedules, expiry and reports."""
        ...


class SystemClock:
    """The real clocks of the machine."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime.datetime:
        return datetime.datetime.now(datetime.UTC)


class ManualClock:
    """A clock that moves only when told to; thread-safe, for tests and simulations."""

    def __init__(self, start: datetime.datetime | None = None, monotonic_start: float = 1000.0) -> None:
        self._lock = threading.Lock()
        self._wall = start or datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
        if self._wall.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._monotonic = monotonic_start

    def monotonic(self) -> float:
        with self._lock:
            return self._monotonic

    def now(self) -> datetime.datetime:
        with self._lock:
            return self._wall

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by ``seconds``."""
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        with self._lock:
            self._monotonic += seconds
            self._wall += datetime.timedelta(seconds=seconds)

    def set_wall(self, when: datetime.datetime) -> None:
        """Set the wall clock (device clocks do jump); the monotonic clock is untouched."""
        if when.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        with self._lock:
            self._wall = when

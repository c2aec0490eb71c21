"""Update control: whether, and when, the device lets a pending update proceed.

The device application (and the cloud, through the orchestrator) sets the policy; the engine asks it at
two gates, before the download and before the activation. The model combines Particle's controls
(updates enabled or disabled, a pending flag and event, forced updates that override "disabled"), Azure
Sphere's deferral (a pending update held back by N minutes, never beyond 24 h for OS images or 167 h for
application images counted from the first notification), the Avnet target time of day (``otaTargetUtcTime``)
with correct minute handling, daily maintenance windows and critical sections.

Everything that must survive a restart (enabled, forced, target time, windows, the pending update with its
first-notification time and deferral) is kept in the state store. Critical sections are held by running code
and so are not persisted: a restart ends them. Time comes from an injectable ``Clock``; nothing here sleeps.
"""

from __future__ import annotations

import contextlib
import datetime
import enum
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import attrs

from ota_core._schedule import (
    DEFAULT_MAX_DEFERRAL,
    MaintenanceWindow,
    TimeOfDay,
    UpdateKind,
    clamp_deferral,
    deferral_deadline,
    next_occurrence,
    parse_target_time,
)
from ota_core.clock import Clock, SystemClock
from ota_core.errors import ConfigurationError, PolicyError
from ota_core.protocols import StateStore

__all__ = [
    "DEFAULT_MAX_DEFERRAL",
    "ControlEvent",
    "ControlEventKind",
    "Decision",
    "Gate",
    "MaintenanceWindow",
    "TimeOfDay",
    "UpdateControl",
    "UpdateKind",
    "parse_target_time",
]

_log = logging.getLogger(__name__)

_SCHEMA_VERSION = 1


class Gate(enum.StrEnum):
    """Where the engine asks: before fetching the files, or before switching to the new image."""

    DOWNLOAD = "download"
    ACTIVATE = "activate"


class ControlEventKind(enum.StrEnum):
    """What changed in update control; listeners (and the engine) react to these."""

    PENDING = "pending"
    RELEASED = "released"
    CHANGED = "changed"


@attrs.frozen
class ControlEvent:
    """A change of update control: an update started waiting, was released, or a setting changed."""

    kind: ControlEventKind
    job_id: str | None = None
    reason: str = ""


@attrs.frozen
class Decision:
    """The answer at a gate: go ahead, or wait (until ``retry_at``, or until something changes)."""

    allowed: bool
    reason: str = ""
    retry_at: datetime.datetime | None = None


@attrs.frozen
class _Pending:
    job_id: str
    kind: UpdateKind
    first_notified: datetime.datetime
    deferred_until: datetime.datetime | None = None
    release_at: datetime.datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "kind": self.kind.value,
            "first_notified": self.first_notified.isoformat(),
            "deferred_until": self.deferred_until.isoformat() if self.deferred_until else None,
            "release_at": self.release_at.isoformat() if self.release_at else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> _Pending:
        def when(key: str) -> datetime.datetime | None:
            value = data.get(key)
            return None if value is None else datetime.datetime.fromisoformat(str(value))

        first = when("first_notified")
        if first is None:
            raise ValueError("first_notified missing")
        return cls(
            job_id=str(data["job_id"]),
            kind=UpdateKind(str(data["kind"])),
            first_notified=first,
            deferred_until=when("deferred_until"),
            release_at=when("release_at"),
        )


def _window_to_json(window: MaintenanceWindow) -> dict[str, Any]:
    return {
        "hour": window.start.hour,
        "minute": window.start.minute,
        "zone": window.start.zone,
        "seconds": int(window.duration.total_seconds()),
    }


def _window_from_json(data: Mapping[str, Any]) -> MaintenanceWindow:
    return MaintenanceWindow(
        TimeOfDay(int(data["hour"]), int(data["minute"]), str(data["zone"])),
        datetime.timedelta(seconds=int(data["seconds"])),
    )


class UpdateControl:
    """The device's update policy, persisted in a state store and consulted by the engine at each gate.

    Thread-safe: the application, the cloud adapter and the engine's worker may call it concurrently.
    """

    def __init__(
        self,
        store: StateStore,
        *,
        clock: Clock | None = None,
        name: str = "update-control",
        max_deferral: Mapping[UpdateKind, datetime.timedelta] | None = None,
        download_while_waiting: bool = True,
    ) -> None:
        self._store = store
        self._clock = clock or SystemClock()
        self._name = name
        self._limits = dict(DEFAULT_MAX_DEFERRAL)
        self._limits.update(max_deferral or {})
        self._lock = threading.RLock()
        self._listeners: list[Callable[[ControlEvent], None]] = []
        self._critical = 0
        self.pending_event = threading.Event()
        """Set while an update waits for the policy; cleared when it proceeds or ends."""
        self._enabled = True
        self._forced = False
        self._download_while_waiting = download_while_waiting
        self._target: TimeOfDay | None = None
        self._windows: tuple[MaintenanceWindow, ...] = ()
        self._pending: _Pending | None = None
        self._load()

    # --- persistence -------------------------------------------------------------------------------

    def _load(self) -> None:
        document = self._store.load(self._name)
        if document is None:
            return
        data = document.data
        try:
            self._enabled = bool(data.get("enabled", True))
            self._forced = bool(data.get("forced", False))
            self._download_while_waiting = bool(
                data.get("download_while_waiting", self._download_while_waiting)
            )
            target = data.get("target")
            self._target = (
                None
                if target is None
                else TimeOfDay(int(target["hour"]), int(target["minute"]), str(target["zone"]))
            )
            self._windows = tuple(_window_from_json(item) for item in data.get("windows", []))
            pending = data.get("pending")
            self._pending = None if pending is None else _Pending.from_json(pending)
        except (KeyError, TypeError, ValueError, ConfigurationError) as error:
            _log.warning("update-control document %r is unusable (%s); using defaults", self._name, error)
            self._enabled, self._forced, self._target = True, False, None
            self._windows, self._pending = (), None

    def _save(self) -> None:
        target = self._target
        self._store.save(
            self._name,
            {
                "enabled": self._enabled,
                "forced": self._forced,
                "download_while_waiting": self._download_while_waiting,
                "target": None
                if target is None
                else {"hour": target.hour, "minute": target.minute, "zone": target.zone},
                "windows": [_window_to_json(window) for window in self._windows],
                "pending": None if self._pending is None else self._pending.to_json(),
            },
            schema_version=_SCHEMA_VERSION,
        )

    # --- listeners ---------------------------------------------------------------------------------

    def add_listener(self, callback: Callable[[ControlEvent], None]) -> None:
        """Call ``callback`` on every change; it runs on the caller's thread and must not block."""
        with self._lock:
            self._listeners.append(callback)

    def _emit(self, event: ControlEvent) -> None:
        for callback in list(self._listeners):
            try:
                callback(event)
            except Exception:  # noqa: BLE001 - a listener's bug must never break the policy
                _log.exception("update-control listener failed")

    # --- settings ----------------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """Whether updates may proceed (Particle's ``updatesEnabled``)."""
        return self._enabled

    def enable(self) -> None:
        """Allow updates again; a waiting update is re-evaluated at once."""
        self._set(enabled=True)

    def disable(self) -> None:
        """Hold every update that is not forced until ``enable()``."""
        self._set(enabled=False)

    @property
    def forced(self) -> bool:
        """Whether the operator forces updates through "disabled", deferral and windows."""
        return self._forced

    def set_forced(self, forced: bool) -> None:
        """Set by the cloud adapter when the operator forces an update (Particle ``updatesForced``)."""
        self._set(forced=forced)

    @property
    def download_while_waiting(self) -> bool:
        """Whether the files may be fetched while activation waits for the policy."""
        return self._download_while_waiting

    def set_download_while_waiting(self, allowed: bool) -> None:
        """Choose whether a held update may download ahead of its activation."""
        self._set(download_while_waiting=allowed)

    @property
    def target_time(self) -> TimeOfDay | None:
        """The time of day at which a pending update installs, or ``None`` for "as soon as allowed"."""
        return self._target

    def set_target_time(self, value: TimeOfDay | str | None, zone: str = "UTC") -> str:
        """Set the install time of day, e.g. from the ``otaTargetUtcTime`` twin property.

        ``""`` or ``None`` clears it, which releases a pending update held by it. Returns the value to
        report back (``"HH:MM:00"`` or ``""``). Raises ``ConfigurationError`` for a malformed value and keeps
        the previous setting.
        """
        target = parse_target_time(value, zone) if isinstance(value, str) else value
        with self._lock:
            self._target = target
            if self._pending is not None:
                self._pending = attrs.evolve(self._pending, release_at=self._release_at(self._pending))
            self._save()
        self._emit(ControlEvent(ControlEventKind.CHANGED, reason="target time"))
        return "" if target is None else target.text()

    @property
    def maintenance_windows(self) -> tuple[MaintenanceWindow, ...]:
        """The daily windows in which activation may happen (none means any time)."""
        return self._windows

    def set_maintenance_windows(self, windows: Sequence[MaintenanceWindow]) -> None:
        """Replace the maintenance windows; an empty sequence removes the restriction."""
        with self._lock:
            self._windows = tuple(windows)
            self._save()
        self._emit(ControlEvent(ControlEventKind.CHANGED, reason="maintenance windows"))

    def _set(self, **changes: bool) -> None:
        with self._lock:
            for key, value in changes.items():
                setattr(self, f"_{key}", bool(value))
            self._save()
        self._emit(ControlEvent(ControlEventKind.CHANGED, reason=", ".join(changes)))

    # --- critical sections -------------------------------------------------------------------------

    @property
    def in_critical_section(self) -> bool:
        """True while any code holds a critical section."""
        return self._critical > 0

    @contextlib.contextmanager
    def critical_section(self) -> Iterator[None]:
        """Hold updates (even forced ones) at both gates while the block runs; nests and is thread-safe.

        An update already past the activation gate is not stopped: wrap work that must not be interrupted
        before it starts.
        """
        with self._lock:
            self._critical += 1
        try:
            yield
        finally:
            with self._lock:
                self._critical -= 1
                released = self._critical == 0
            if released:
                self._emit(ControlEvent(ControlEventKind.CHANGED, reason="critical section ended"))

    # --- the pending update ------------------------------------------------------------------------

    @property
    def pending(self) -> bool:
        """True while an update is known and waiting for the policy (Particle's ``updatesPending``)."""
        return self.pending_event.is_set()

    @property
    def pending_job_id(self) -> str | None:
        """The job of the update the policy tracks (waiting or running), if any."""
        pending = self._pending
        return None if pending is None else pending.job_id

    def first_notified(self, job_id: str) -> datetime.datetime | None:
        """When the device first learned of ``job_id``; deferral windows count from here."""
        pending = self._pending
        return pending.first_notified if pending is not None and pending.job_id == job_id else None

    def deadline(self, job_id: str) -> datetime.datetime | None:
        """The last instant ``job_id`` may be held back by deferral, target time or windows."""
        pending = self._pending
        if pending is None or pending.job_id != job_id:
            return None
        return deferral_deadline(pending.first_notified, pending.kind, self._limits)

    def notify(self, job_id: str, kind: UpdateKind = UpdateKind.APPLICATION) -> None:
        """Record that the device learned of ``job_id`` (idempotent; the first time is kept)."""
        with self._lock:
            self._track(job_id, kind)

    def _track(self, job_id: str, kind: UpdateKind) -> _Pending:
        pending = self._pending
        if pending is not None and pending.job_id == job_id:
            return pending
        pending = _Pending(job_id=job_id, kind=kind, first_notified=self._clock.now())
        pending = attrs.evolve(pending, release_at=self._release_at(pending))
        self._pending = pending
        self._save()
        return pending

    def _release_at(self, pending: _Pending) -> datetime.datetime | None:
        if self._target is None:
            return None
        return next_occurrence(pending.first_notified, self._target)

    def defer(self, minutes: float, job_id: str | None = None) -> datetime.datetime:
        """Hold the pending update for ``minutes`` from now, clamped to its window; returns the end.

        Raises ``PolicyError`` when no update is pending (or ``job_id`` names another one).
        """
        if minutes < 0:
            raise ConfigurationError("a deferral cannot be negative")
        with self._lock:
            pending = self._pending
            if pending is None or (job_id is not None and pending.job_id != job_id):
                raise PolicyError("no pending update to defer", details={"job_id": job_id})
            now = self._clock.now()
            granted = clamp_deferral(
                datetime.timedelta(minutes=minutes),
                now=now,
                first_notified=pending.first_notified,
                kind=pending.kind,
                limits=self._limits,
            )
            until = now + granted
            self._pending = attrs.evolve(pending, deferred_until=until)
            self._save()
        self._emit(ControlEvent(ControlEventKind.CHANGED, pending.job_id, reason=f"deferred until {until}"))
        return until

    def resume(self) -> None:
        """Cancel a deferral of the pending update (Azure Sphere's ``ResumeEvent``)."""
        with self._lock:
            if self._pending is None or self._pending.deferred_until is None:
                return
            self._pending = attrs.evolve(self._pending, deferred_until=None)
            self._save()
        self._emit(ControlEvent(ControlEventKind.CHANGED, reason="deferral resumed"))

    def complete(self, job_id: str) -> None:
        """Forget ``job_id``: it finished, failed or was cancelled."""
        with self._lock:
            if self._pending is None or self._pending.job_id != job_id:
                return
            self._pending = None
            self._save()
            self.pending_event.clear()

    # --- the gates ---------------------------------------------------------------------------------

    def decide(self, job_id: str, kind: UpdateKind, gate: Gate) -> Decision:
        """Answer the engine at ``gate`` for ``job_id`` and keep the pending flag and event up to date."""
        with self._lock:
            pending = self._track(job_id, kind)
            now = self._clock.now()
            decision = self._evaluate(pending, now)
            may_fetch = self._download_while_waiting and (self._enabled or self._forced)
            if gate is Gate.DOWNLOAD and not decision.allowed and may_fetch:
                decision = Decision(True, f"download allowed while activation waits ({decision.reason})")
            was_pending = self.pending_event.is_set()
            if decision.allowed:
                if gate is Gate.ACTIVATE or not was_pending:
                    self.pending_event.clear()
            else:
                self.pending_event.set()
        if not decision.allowed and not was_pending:
            self._emit(ControlEvent(ControlEventKind.PENDING, job_id, decision.reason))
        elif decision.allowed and was_pending and not self.pending_event.is_set():
            self._emit(ControlEvent(ControlEventKind.RELEASED, job_id, decision.reason))
        return decision

    def _evaluate(self, pending: _Pending, now: datetime.datetime) -> Decision:
        if self._critical > 0:
            return Decision(False, "a critical section is running")
        if self._forced:
            return Decision(True, "forced")
        if not self._enabled:
            return Decision(False, "updates are disabled")
        deadline = deferral_deadline(pending.first_notified, pending.kind, self._limits)
        if now >= deadline:
            return Decision(True, "maximum deferral reached")
        holds: list[tuple[datetime.datetime, str]] = []
        if pending.deferred_until is not None and now < pending.deferred_until:
            holds.append((pending.deferred_until, "deferred"))
        if pending.release_at is not None and now < pending.release_at:
            holds.append((pending.release_at, "waiting for the target time"))
        if self._windows and not any(window.contains(now) for window in self._windows):
            opens = min(window.next_open(now) for window in self._windows)
            holds.append((opens, "outside the maintenance windows"))
        if not holds:
            return Decision(True, "allowed")
        until, reason = max(holds)
        return Decision(False, reason, min(until, deadline))

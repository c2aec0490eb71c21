"""The self-test of a trial boot: confirm when it passes, revert when it fails or never reports.

Run at application start, after the boot-side step of the backend. The deadline runs on the
monotonic clock of this start: a restart during the trial is a new start, counted by the backend's
boot counter (so a device that keeps resetting before its self-test passes still reverts).
Sans-I/O: time comes from a ``Clock``; the caller restarts the device when told to.
"""

from __future__ import annotations

import enum
import logging

from ota_core.clock import Clock
from ota_core.errors import ConfigurationError
from ota_core.protocols import BootControl, ImageState

__all__ = ["TrialOutcome", "TrialSupervisor"]

_log = logging.getLogger(__name__)


class TrialOutcome(enum.Enum):
    """What the application should do now."""

    NOT_IN_TRIAL = "not-in-trial"
    WAITING = "waiting"
    CONFIRMED = "confirmed"
    REVERTED = "reverted"  # restart the device to boot the previous image


class TrialSupervisor:
    """Watches one trial start: ``report(passed)`` or ``poll()`` past the deadline decide it."""

    def __init__(self, control: BootControl, clock: Clock, *, self_test_timeout: float) -> None:
        if self_test_timeout <= 0:
            raise ConfigurationError("self_test_timeout must be positive")
        self._control = control
        self._clock = clock
        self._timeout = self_test_timeout
        self._deadline: float | None = None
        self._outcome = TrialOutcome.NOT_IN_TRIAL

    def start(self) -> ImageState:
        """Look at the image state; in a trial, start the self-test deadline."""
        state = self._control.state()
        if state.in_trial:
            self._deadline = self._clock.monotonic() + self._timeout
            self._outcome = TrialOutcome.WAITING
            _log.info("trial start of %s: self-test due within %.0f s", state.running_version, self._timeout)
        return state

    @property
    def outcome(self) -> TrialOutcome:
        """The decision so far."""
        return self._outcome

    def report(self, passed: bool) -> TrialOutcome:
        """The application's self-test result; repeated reports keep the first decision."""
        if self._outcome is not TrialOutcome.WAITING:
            if passed and self._outcome is TrialOutcome.CONFIRMED:
                self._control.confirm()  # idempotent
            return self._outcome
        if passed:
            self._control.confirm()
            self._outcome = TrialOutcome.CONFIRMED
        else:
            _log.warning("self-test failed: reverting")
            self._control.revert()
            self._outcome = TrialOutcome.REVERTED
        return self._outcome

    def poll(self) -> TrialOutcome:
        """Revert when the deadline passed without a report."""
        if (
            self._outcome is TrialOutcome.WAITING
            and self._deadline is not None
            and self._clock.monotonic() >= self._deadline
        ):
            _log.warning("self-test did not report within %.0f s: reverting", self._timeout)
            self._control.revert()
            self._outcome = TrialOutcome.REVERTED
        return self._outcome

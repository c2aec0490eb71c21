"""The self-test supervisor against a recording boot control (no I/O)."""

from __future__ import annotations

import pytest

from ota_boot.slot_writer import FlashSlotWriter
from ota_boot.trial import TrialOutcome, TrialSupervisor
from ota_core.clock import ManualClock
from ota_core.errors import ConfigurationError
from ota_core.protocols import BootControl, ImageState
from ota_core.versions import Version


class _Control:
    def __init__(self, in_trial: bool) -> None:
        self.in_trial = in_trial
        self.calls: list[str] = []

    def open_inactive_slot(self, size: int) -> FlashSlotWriter:
        raise NotImplementedError

    def activate(
        self, *, permanent: bool = False, expected_sha256: bytes | None = None, image_size: int | None = None
    ) -> None:
        raise NotImplementedError

    def state(self) -> ImageState:
        return ImageState(running_version=Version(2, 0, 0), in_trial=self.in_trial)

    def confirm(self) -> None:
        self.calls.append("confirm")
        self.in_trial = False

    def revert(self) -> None:
        self.calls.append("revert")


def test_is_a_boot_control() -> None:
    assert isinstance(_Control(True), BootControl)


def test_confirm_then_repeated_reports() -> None:
    control = _Control(True)
    supervisor = TrialSupervisor(control, ManualClock(), self_test_timeout=10)
    supervisor.start()
    assert supervisor.outcome is TrialOutcome.WAITING
    assert supervisor.report(True) is TrialOutcome.CONFIRMED
    assert supervisor.report(True) is TrialOutcome.CONFIRMED
    assert supervisor.report(False) is TrialOutcome.CONFIRMED
    assert supervisor.poll() is TrialOutcome.CONFIRMED
    assert control.calls == ["confirm", "confirm"]


def test_deadline_and_not_in_trial() -> None:
    clock = ManualClock()
    control = _Control(True)
    supervisor = TrialSupervisor(control, clock, self_test_timeout=10)
    assert supervisor.poll() is TrialOutcome.NOT_IN_TRIAL  # not started yet
    supervisor.start()
    clock.advance(10)
    assert supervisor.poll() is TrialOutcome.REVERTED
    assert control.calls == ["revert"]
    idle = TrialSupervisor(_Control(False), clock, self_test_timeout=1)
    idle.start()
    clock.advance(5)
    assert idle.poll() is TrialOutcome.NOT_IN_TRIAL
    with pytest.raises(ConfigurationError):
        TrialSupervisor(control, clock, self_test_timeout=0)

"""Trial semantics on every backend: failed or silent self-tests and used-up attempts revert;
restarts outside a trial cost nothing; confirm is idempotent; a factory image is not on trial."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ota_boot.bootloader import Bootloader
from ota_boot.demo_image import DemoImageValidator
from ota_boot.flash import SimFlash
from ota_boot.layout import BootLayout
from ota_boot.mcu_control import McuBootControl
from ota_boot.trial import TrialOutcome, TrialSupervisor
from ota_core.clock import ManualClock
from ota_core.versions import Version
from tests.boot_fixtures import NEW_IMAGE, OLD_IMAGE
from tests.integration.boot_backends import Device, factory

BACKENDS = ["dir", "uboot", "grub"]
V1, V2 = Version(1, 0, 0), Version(2, 0, 0)


def _update(device: Device, attempts: int = 3) -> None:
    control = device.control(attempts)
    writer = control.open_inactive_slot(len(NEW_IMAGE))
    writer.write_at(0, NEW_IMAGE)
    control.activate(expected_sha256=hashlib.sha256(NEW_IMAGE).digest())


@pytest.fixture(params=BACKENDS)
def device(request: pytest.FixtureRequest, tmp_path: Path) -> Device:
    return factory(request.param, tmp_path / "dev", OLD_IMAGE)


def test_factory_image_is_confirmed(device: Device) -> None:
    state = device.control().state()
    assert state.running_version == V1
    assert not state.in_trial
    assert state.pending_version is None


def test_failed_self_test_reverts(device: Device) -> None:
    _update(device)
    assert device.control().state().pending_version == V2
    assert device.boot() == "B"
    supervisor = TrialSupervisor(device.control(), ManualClock(), self_test_timeout=60)
    assert supervisor.start().in_trial
    assert supervisor.report(False) is TrialOutcome.REVERTED
    assert supervisor.report(True) is TrialOutcome.REVERTED  # the first decision stands
    assert device.boot() == "A"
    assert device.control().state().running_version == V1
    assert not device.control().state().in_trial


def test_silent_self_test_reverts_at_the_deadline(device: Device) -> None:
    _update(device)
    device.boot()
    clock = ManualClock()
    supervisor = TrialSupervisor(device.control(), clock, self_test_timeout=30)
    supervisor.start()
    clock.advance(29)
    assert supervisor.poll() is TrialOutcome.WAITING
    clock.advance(2)
    assert supervisor.poll() is TrialOutcome.REVERTED
    assert device.boot() == "A"


def test_used_up_attempts_revert(device: Device) -> None:
    _update(device, attempts=3)
    seen = [device.boot() for _ in range(3)]
    assert seen == ["B", "B", "B"]
    assert device.control().state().boot_attempts_left == 0
    assert device.boot() == "A"  # fourth start of an unconfirmed trial
    assert device.boot() == "A"
    assert not device.control().state().in_trial


def test_restarts_outside_a_trial_cost_nothing(device: Device) -> None:
    for _ in range(10):  # brown-outs on the factory image
        assert device.boot() == "A"
    _update(device, attempts=2)
    assert device.boot() == "B"
    assert device.control().state().boot_attempts_left == 1
    supervisor = TrialSupervisor(device.control(), ManualClock(), self_test_timeout=5)
    supervisor.start()
    assert supervisor.report(True) is TrialOutcome.CONFIRMED
    for _ in range(10):  # brown-outs after the confirmation
        assert device.boot() == "B"
        assert not device.control().state().in_trial
    assert device.control().state().running_version == V2


def test_confirm_is_idempotent(device: Device) -> None:
    _update(device)
    device.boot()
    control = device.control()
    control.confirm()
    control.confirm()
    device.control().confirm()
    assert device.boot() == "B"
    assert not device.control().state().in_trial
    supervisor = TrialSupervisor(device.control(), ManualClock(), self_test_timeout=5)
    assert not supervisor.start().in_trial
    assert supervisor.report(True) is TrialOutcome.NOT_IN_TRIAL
    assert supervisor.poll() is TrialOutcome.NOT_IN_TRIAL


def test_revert_cancels_a_pending_activation(device: Device) -> None:
    _update(device)
    device.control().revert()
    assert device.boot() == "A"
    assert device.control().state().pending_version is None


def test_new_update_refused_while_on_trial(device: Device) -> None:
    from ota_boot.errors import SlotBusyError

    _update(device)
    device.boot()
    with pytest.raises(SlotBusyError):
        device.control().open_inactive_slot(len(NEW_IMAGE))


def test_mcu_trial_semantics() -> None:
    layout = BootLayout.simple(sector_size=512, image_sectors=6, write_alignment=4)
    flash = SimFlash(layout.flash)
    flash.write(layout.primary_offset, OLD_IMAGE + b"\xff" * (-len(OLD_IMAGE) % 4))
    validator = DemoImageValidator()
    control = McuBootControl(flash, layout, validator)
    assert Bootloader(flash, layout, validator).boot().image.version == V1
    assert not control.state().in_trial
    writer = control.open_inactive_slot(len(NEW_IMAGE))
    writer.write_at(0, NEW_IMAGE)
    control.activate(expected_sha256=hashlib.sha256(NEW_IMAGE).digest())
    assert control.state().pending_version == V2
    assert Bootloader(flash, layout, validator).boot().image.version == V2
    state = control.state()
    assert state.in_trial and state.running_version == V2 and state.boot_attempts_left == 1
    # No confirmation: the next reset reverts.
    assert Bootloader(flash, layout, validator).boot().image.version == V1
    assert not control.state().in_trial
    # Second attempt, confirmed twice this time.
    writer = control.open_inactive_slot(len(NEW_IMAGE))
    writer.write_at(0, NEW_IMAGE)
    control.activate()
    Bootloader(flash, layout, validator).boot()
    supervisor = TrialSupervisor(control, ManualClock(), self_test_timeout=5)
    supervisor.start()
    assert supervisor.report(True) is TrialOutcome.CONFIRMED
    control.confirm()
    for _ in range(3):
        assert Bootloader(flash, layout, validator).boot().image.version == V2
    assert not control.state().in_trial

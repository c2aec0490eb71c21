"""Update control in a device application: deferral, a target time of day and critical sections.

    python examples/update_control.py [STATE_DIRECTORY]

It uses only ota_core. A simulated clock walks through one day so the output is the same every run:
an update arrives while the device is busy, waits for the end of a critical section, is deferred by
the operator, then waits for the install time set from the cloud. The policy is stored in
STATE_DIRECTORY (a temporary directory by default), so running it twice on the same directory shows
the settings surviving a restart.
"""

from __future__ import annotations

import datetime
import sys
import tempfile

from ota_core import FileStateStore, ManualClock
from ota_core.update_control import (
    ControlEvent,
    Gate,
    MaintenanceWindow,
    TimeOfDay,
    UpdateControl,
    UpdateKind,
)

JOB = "firmware-1.0.1"


def show(control: UpdateControl, clock: ManualClock, what: str) -> None:
    """Print what the engine would be told at the activation gate right now."""
    decision = control.decide(JOB, UpdateKind.APPLICATION, Gate.ACTIVATE)
    verdict = "install now" if decision.allowed else f"wait ({decision.reason})"
    until = f" until {decision.retry_at:%a %H:%M} UTC" if decision.retry_at else ""
    print(f"{clock.now():%a %H:%M} UTC  {what:<38} -> {verdict}{until}")


def run(directory: str) -> None:
    """Walk through the scenario with the policy stored in ``directory``."""
    clock = ManualClock(datetime.datetime(2026, 6, 10, 13, 30, tzinfo=datetime.UTC))
    control = UpdateControl(FileStateStore(directory), clock=clock)

    def on_change(event: ControlEvent) -> None:
        print(f"{'':>16}  (control event: {event.kind}{': ' + event.reason if event.reason else ''})")

    control.add_listener(on_change)
    print(f"settings from the last run: target time {control.target_time}, enabled {control.enabled}")
    control.set_maintenance_windows([])
    control.set_target_time("")
    control.complete(JOB)

    # The device is in the middle of something that must not be interrupted when the update arrives.
    with control.critical_section():
        control.notify(JOB, UpdateKind.APPLICATION)
        show(control, clock, "update arrives during a critical section")
        print(f"{'':>16}  pending flag: {control.pending}")
    show(control, clock, "critical section ended")

    # The operator asks for two hours; the request is clamped to what is left of the 167-hour window.
    until = control.defer(120)
    print(f"{'':>16}  deferred until {until:%a %H:%M} UTC")
    show(control, clock, "during the deferral")

    # The cloud sets an install time of 13:02 UTC: already past today, so tomorrow at 13:02 (not in
    # seven days, which is what comparing only the hour would give).
    reported = control.set_target_time("13:02:00")
    print(f"{'':>16}  otaTargetUtcTime reported back as {reported!r}")
    clock.advance(3 * 3600)
    show(control, clock, "deferral over, target time tomorrow")
    clock.set_wall(datetime.datetime(2026, 6, 11, 13, 2, tzinfo=datetime.UTC))
    show(control, clock, "the target minute")

    # Maintenance windows narrow it further; a forced update ignores them (but not critical sections).
    control.set_maintenance_windows([MaintenanceWindow(TimeOfDay(2, 0), datetime.timedelta(hours=2))])
    show(control, clock, "outside the 02:00-04:00 window")
    control.set_forced(True)
    show(control, clock, "operator forces the update")
    control.set_forced(False)
    control.complete(JOB)


def main() -> int:
    """Run the scenario in the given directory or a temporary one."""
    if len(sys.argv) > 1:
        run(sys.argv[1])
    else:
        with tempfile.TemporaryDirectory() as directory:
            run(directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The killed-in-state matrix again, in one process: the worker thread dies right after a state is saved.

The child-process matrix (test_engine_killed_matrix.py) is the authoritative one (a real SIGKILL); this
one freezes the worker at the same points and cuts it off, which is fast and measured by coverage.
"""

from __future__ import annotations

import functools
import threading
import time
from pathlib import Path

import pytest

from ota_core import JobStatus, Version
from ota_core.engine import DownloadInterruptedError, EngineConfig, EngineState, UpdateEngine
from tests.engine_rig import Rig
from tests.unit.test_engine_killed_matrix import Case, _cases

MAX_BOOTS = 8


class PowerSwitch:
    """A fault hook that freezes the worker right after a kill point, until the test cuts the power.

    Cutting the power stops the engine (so nothing more runs) and then lets the frozen worker unwind
    with an exception; nothing is saved after the kill point, as with a real power cut.
    """

    def __init__(self, case: Case) -> None:
        self.case = case
        self.fired: list[str] = []
        self.frozen = threading.Event()
        self.release = threading.Event()

    def hook(self, point: str) -> None:
        case = self.case
        hit = point == case.kill_point or (case.kill_point.endswith(":") and point.startswith(case.kill_point))
        if hit and (case.mode == "always" or not self.fired):
            self.fired.append(point)
            self.frozen.set()
            self.release.wait(10)
            raise DownloadInterruptedError("power cut")

    def cut(self, engine: UpdateEngine) -> None:
        stopper = threading.Thread(target=engine.stop)
        stopper.start()
        deadline = time.monotonic() + 10
        while not engine._stopping.is_set() and time.monotonic() < deadline:
            time.sleep(0.001)
        self.release.set()
        stopper.join(10)
        self.frozen = threading.Event()
        self.release = threading.Event()


def _finished(rig: Rig) -> bool:
    engine = rig.engine
    assert engine is not None
    return (
        engine.wait_until_idle(0.05)
        and engine.state is EngineState.IDLE
        and rig.source.status_of("job-1").is_terminal
    )


def _stopped_or_done(rig: Rig, switch: PowerSwitch, engine: UpdateEngine) -> bool:
    return switch.frozen.is_set() or engine.awaiting_restart or _finished(rig)


@pytest.mark.parametrize("case", _cases(), ids=lambda case: f"{case.kill_point}-{case.self_test}-{case.mode}")
def test_power_cut_in_every_state(tmp_path: Path, case: Case) -> None:
    switch = PowerSwitch(case)
    config = EngineConfig(report_retry_delays=(0.0,), poll_interval=0.2, fault_hook=switch.hook)
    rig = Rig(tmp_path, config=config, self_test=lambda _context: case.self_test == "pass", chunk_size=4096)
    rig.publish("job-1", size=64 * 1024, notify=False)
    rig.start()
    for _ in range(MAX_BOOTS):
        engine = rig.engine
        assert engine is not None
        rig.wait_for(functools.partial(_stopped_or_done, rig, switch, engine))
        if switch.frozen.is_set():
            switch.cut(engine)
            rig.engine = None
            rig.boot.boot()
            rig.start()
        elif engine.awaiting_restart:
            rig.reboot()
        else:
            break
    else:
        raise AssertionError("did not settle")
    rig.stop()
    status, version, steps = case.expected
    if case.kill_point != "none":
        assert switch.fired
    assert [r.status for r in rig.source.reports if r.status.is_terminal] == [status]
    assert rig.source.steps("job-1") == steps
    if case.code is not None:
        assert rig.source.reports[-1].details["code"] == case.code
    image = rig.boot.state()
    assert image.running_version == Version.parse(version) and not image.in_trial
    assert rig.store.load("engine-progress") is None
    assert status in (JobStatus.SUCCEEDED, JobStatus.FAILED)

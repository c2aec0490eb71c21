"""The killed-in-state matrix (Mender's method) for the AWS flow, with the device as a real child process.

For every persisted engine state (and mid-download), the simulated device is SIGKILLed right after that state
is saved, then started again (and again after each restart it asks for) until the update settles. Each case
must end in SUCCEEDED, or in a clean rollback with FAILED, with a valid image running and exactly the expected
status history at the cloud (IN_PROGRESS ..., then the final status). MCUboot's test swap gives one trial
boot, so a cut during the self-test or before the confirm ends in a rollback (FAILED), as docs/engine.md says.
"""

from __future__ import annotations

import queue
import time
from pathlib import Path
from typing import Any

import attrs
import pytest

from ota_boot import Bootloader, SimFlash
from ota_orchestrators.demo import DeviceSupervisor
from ota_orchestrators.simulated_device import EXIT_RESTART, DeviceConfig, layout_for
from ota_verify import KeyRing, McubootVerifier
from tests.orchestrator_aws_fixtures import GEOMETRY, AwsCloud, Keys, aws_cloud_fixture, keys_fixture

__all__ = ["aws_cloud_fixture", "keys_fixture"]

pytestmark = pytest.mark.broker


@attrs.frozen
class Case:
    kill_at: str
    self_test: str
    final: str
    running: str


CASES = [
    Case("state:received", "pass", "SUCCEEDED", "1.0.1"),
    Case("state:downloading", "pass", "SUCCEEDED", "1.0.1"),
    Case("progress>=40000", "pass", "SUCCEEDED", "1.0.1"),
    Case("state:downloaded", "pass", "SUCCEEDED", "1.0.1"),
    Case("state:activating", "pass", "SUCCEEDED", "1.0.1"),
    Case("state:restarting", "pass", "SUCCEEDED", "1.0.1"),
    Case("state:self-testing", "pass", "FAILED", "1.0.0"),
    Case("state:confirming", "pass", "FAILED", "1.0.0"),
    Case("state:reporting", "pass", "SUCCEEDED", "1.0.1"),
    Case("state:self-testing", "fail", "FAILED", "1.0.0"),
    Case("state:reverting", "fail", "FAILED", "1.0.0"),
    Case("state:reporting", "fail", "FAILED", "1.0.0"),
]


def _run_case(cloud: AwsCloud, keys: Keys, root: Path, number: int, case: Case) -> list[str]:
    """Run one case; returns the problems found (empty when the case passed)."""
    thing = f"matrix-{number}"
    job_id = f"job-{number}"
    directory = root / thing
    directory.mkdir(parents=True)
    config = DeviceConfig(
        flow="aws",
        device_dir=directory / "device",
        public_key=keys.public_file,
        factory_image=keys.firmware("1.0.0").path,
        flash=GEOMETRY,
        self_test=case.self_test,
        self_test_timeout=3.0,
        save_interval_bytes=16 * 1024,
        flow_settings={"broker_url": cloud.broker.url, "thing_name": thing, "allow_http": True},
    )
    config_file = directory / "device.json"
    config.write(config_file)
    cloud.add_thing(thing)
    supervisor = DeviceSupervisor(config_file, directory / "device.log")
    problems: list[str] = []
    kills = 0
    finished: str | None = None
    try:
        fault = ("--kill-at", case.kill_at, "--fault-once", str(directory / "killed"))
        supervisor.start(*fault)
        published = False
        deadline = time.monotonic() + 30.0
        settle_until: float | None = None
        while time.monotonic() < deadline:
            if settle_until is not None and time.monotonic() > settle_until:
                break
            try:
                event: dict[str, Any] = supervisor.events.get(timeout=0.2)
            except queue.Empty:
                continue
            kind = event.get("event")
            if kind == "ready" and not published:
                cloud.publish_mqtt(job_id, thing, keys.firmware("1.0.1"))
                published = True
            elif kind == "engine" and event.get("kind") == "finished":
                finished = str(event.get("status"))
                settle_until = time.monotonic() + 1.0
            elif kind == "killed":
                kills += 1
            elif kind == "exit":
                if event.get("code") in (EXIT_RESTART, -9):
                    settle_until = None if finished is None else time.monotonic() + 2.0
                    supervisor.start(*fault)
                else:
                    problems.append(f"device exited with {event.get('code')}")
                    break
        else:
            problems.append("did not settle within 30 s")
    finally:
        supervisor.stop()
    if kills != 1:
        problems.append(f"expected one kill at {case.kill_at}, saw {kills}")
    status, _details = cloud.execution(job_id, thing)
    if status != case.final:
        problems.append(f"cloud status {status}, expected {case.final}")
    if finished != case.final:
        problems.append(f"device finished with {finished}, expected {case.final}")
    history = cloud.statuses(job_id)
    if history != ["IN_PROGRESS", case.final]:
        problems.append(f"status history {history}")
    flash = SimFlash.open(config.flash_path)
    layout = layout_for(config)
    booted = Bootloader(flash, layout, McubootVerifier(KeyRing([keys.public]))).boot()
    if str(booted.image.version) != case.running:
        problems.append(f"running {booted.image.version}, expected {case.running}")
    return problems


def test_killed_in_state_matrix(aws_cloud: AwsCloud, keys: Keys, tmp_path: Path) -> None:
    failures: list[str] = []
    for number, case in enumerate(CASES):
        problems = _run_case(aws_cloud, keys, tmp_path, number, case)
        if problems:
            failures.append(f"{case.kill_at} (self-test {case.self_test}): {'; '.join(problems)}")
    print(f"AWS killed-in-state matrix: {len(CASES)} cases, {len(failures)} failures")
    assert not failures, "\n".join(failures)

"""Mender's killed-in-state matrix for the Device Update agent.

For every persisted engine state (and mid-download), the device process is killed with SIGKILL right after
that state is saved, then powered on again until it settles. Each case must end with the deployment
Succeeded (agent Idle, the new update id installed, the new image confirmed) or, where a one-trial-boot
bootloader must roll back, Failed (agent Failed, the old update id, the old image running); the running image
must be intact, and the agent states the cloud saw must follow the expected order.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest

from ota_cloud.azure import AzureStandIn
from ota_cloud.broker import MosquittoBroker
from tests.adu_fixtures import DEVICE_KEY, firmware, import_manifest, wait_for
from tests.azure_fixtures import azure_standin
from tests.engine_fixtures import FileBootControl

pytestmark = pytest.mark.broker
__all__ = ["azure_standin"]

RESTART_EXIT = 75
MAX_BOOTS = 8
REPO = Path(__file__).resolve().parents[2]


@attrs.frozen
class Case:
    kill_point: str
    self_test: str
    expect: str  # "Succeeded" or "Failed"


CASES = [
    Case("none", "pass", "Succeeded"),
    Case("state:received", "pass", "Succeeded"),
    Case("state:downloading", "pass", "Succeeded"),
    Case("progress:0:", "pass", "Succeeded"),
    Case("state:downloaded", "pass", "Succeeded"),
    Case("state:activating", "pass", "Succeeded"),
    Case("state:restarting", "pass", "Succeeded"),
    # one trial boot: a cut during the self-test or before the confirm goes back to the old image
    Case("state:self-testing", "pass", "Failed"),
    Case("state:confirming", "pass", "Failed"),
    Case("state:reporting", "pass", "Succeeded"),
    Case("none", "fail", "Failed"),
    Case("state:self-testing", "fail", "Failed"),
    Case("state:reverting", "fail", "Failed"),
    Case("state:reporting", "fail", "Failed"),
]


class History:
    """Agent states per device, as the cloud received them."""

    def __init__(self, standin: AzureStandIn) -> None:
        self.states: dict[str, list[tuple[int, int | None]]] = {}
        self._lock = threading.Lock()
        standin.hub.on_reported(self._on_reported)

    def _on_reported(self, device_id: str, patch: Mapping[str, Any], _twin: Any) -> None:
        component = patch.get("deviceUpdate")
        agent = component.get("agent") if isinstance(component, Mapping) else None
        if isinstance(agent, Mapping) and "state" in agent:
            result = agent.get("lastInstallResult")
            code = result.get("resultCode") if isinstance(result, Mapping) else None
            with self._lock:
                self.states.setdefault(device_id, []).append((agent["state"], code))


def run_case(index: int, case: Case, standin: AzureStandIn, broker: MosquittoBroker, tmp: Path,
             history: History, update: dict[str, str]) -> list[str]:
    """Run one case; return the problems found (empty: the case passed)."""
    device_id = f"kill-{index}"
    work = tmp / device_id
    work.mkdir()
    standin.hub.register_device(device_id, DEVICE_KEY)
    FileBootControl(work / "boot")  # the factory image 1.0.0
    pem = work / "root.pem"
    pem.write_bytes(standin.adu.keys.root_public_pem())
    config = {"work": str(work), "host": broker.host, "port": broker.port,
              "prefix": standin.hub.prefix_for(device_id), "device_id": device_id,
              "root_kid": standin.adu.keys.root_kid, "root_pem_file": str(pem),
              "kill_point": case.kill_point, "self_test": case.self_test}
    (work / "config.json").write_text(json.dumps(config))
    standin.adu.create_deployment(f"dep-{index}", update, [device_id])
    codes = []
    for _ in range(MAX_BOOTS):
        child = subprocess.run(
            [sys.executable, "-m", "tests.integration._adu_kill_child", str(work / "config.json")],
            cwd=REPO, capture_output=True, timeout=60, check=False,
        )
        codes.append(child.returncode)
        if child.returncode == 0:
            break
        if child.returncode not in (RESTART_EXIT, -9):
            return [f"child exited {child.returncode}: {child.stderr.decode(errors='replace')[-800:]}"]
    problems = []
    if codes[-1] != 0:
        problems.append(f"did not settle in {MAX_BOOTS} boots: {codes}")
    if case.kill_point != "none" and not (work / "killed").exists():
        problems.append("the kill point was never reached")
    status = standin.adu.deployment_status(f"dep-{index}")["devices"][device_id]
    wait_for(lambda: history.states.get(device_id, [(None, None)])[-1][0] in (0, 255), timeout=5)
    if status["state"] != case.expect:
        problems.append(f"deployment {status['state']}, expected {case.expect}")
    agent = status["agent"] or {}
    installed = json.loads(agent.get("installedUpdateId", "null") or "null") or {}
    boot = FileBootControl(work / "boot")
    image = boot.state()
    want_version = "1.0.1" if case.expect == "Succeeded" else "1.0.0"
    if str(image.running_version) != want_version or image.in_trial:
        problems.append(f"running {image.running_version} (trial {image.in_trial}), expected {want_version}")
    slot = work / "boot" / f"slot-{image.slot}.bin"
    if slot.read_bytes() != firmware(want_version, slot.stat().st_size):
        problems.append("the running slot does not hold an intact image")
    if installed.get("version") != want_version:
        problems.append(f"installedUpdateId {installed}, expected version {want_version}")
    seen = history.states.get(device_id, [])
    final = (0, 700) if case.expect == "Succeeded" else (255, 0)
    result = agent.get("lastInstallResult") or {}
    if (agent.get("state"), result.get("resultCode")) != final:
        problems.append(f"agent ended {agent.get('state')}/{result.get('resultCode')}, expected {final}")
    if not seen or seen[-1][0] != final[0]:
        problems.append(f"last agent state {seen[-1:]} expected {final[0]}")
    if 6 not in [state for state, _ in seen]:
        problems.append("DeploymentInProgress was never reported")
    if case.expect == "Succeeded" and any(state == 255 for state, _ in seen):
        problems.append(f"Failed reported in a successful case: {seen}")
    if case.expect == "Failed" and any(code == 700 for _, code in seen):
        problems.append(f"success reported in a failed case: {seen}")
    return problems


def test_killed_in_state_matrix(azure_standin: AzureStandIn, mosquitto: MosquittoBroker, tmp_path: Path) -> None:
    history = History(azure_standin)
    data = firmware("1.0.1")
    update = azure_standin.adu.import_update(import_manifest("1.0.1", data), {"firmware-1.0.1.bin": data})
    failures: dict[str, list[str]] = {}
    for index, case in enumerate(CASES):
        problems = run_case(index, case, azure_standin, mosquitto, tmp_path, history, update)
        if problems:
            failures[f"{case.kill_point}/{case.self_test}"] = problems
    print(f"ADU killed-in-state matrix: {len(CASES)} cases, {len(failures)} failures")
    assert not failures, failures

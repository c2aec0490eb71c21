"""Mender's killed-in-state matrix for the Azure twin firmware flow, over the stand-in on a real mosquitto.

For every persisted engine state (and mid-download), a device process (``tests.azure_twin_child``) runs
the update and is killed with SIGKILL right after that state is saved; it is started again (a power
cycle: the bootloader runs) until the update has ended. Each case must end in ``Current`` with 1.0.1 or in
a clean rollback (``Error``, ``Rolled back to: 1.0.0``, 1.0.0 running), with a valid confirmed image, and
the cloud must have seen exactly the expected status history (consecutive repeats folded). A last case
kills the device mid-download on every boot: the loop breaker must end it. All devices share one broker
and one stand-in, each with its own topic prefix.
"""

from __future__ import annotations

import concurrent.futures
import subprocess
import sys
import threading
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from ota_cloud.azure import AzureStandIn
from ota_cloud.broker import MosquittoBroker
from ota_core.engine import EngineState
from tests.azure_fixtures import session_keys
from tests.azure_twin_rig import boot, build_firmware, check_value, make_spec

ROOT = Path(__file__).resolve().parents[2]
MAX_BOOTS = 8
SUCCESS = ("Current", "1.0.1", ["Current", "Downloading", "Verifying", "Applying", "Current"])
ROLLBACK = ("Error", "1.0.0", ["Current", "Downloading", "Verifying", "Applying", "Error"])
LOOP = ("Error", "1.0.0", ["Current", "Downloading", "Error"])


@attrs.frozen
class Case:
    kill_point: str
    self_test: str
    expected: tuple[str, str, list[str]]
    mode: str = "once"
    substatus: str | None = None


def _cases() -> list[Case]:
    cases = [Case("none", "pass", SUCCESS), Case("none", "fail", ROLLBACK)]
    for state in EngineState:
        if state is EngineState.IDLE:
            continue
        point = f"state:{state.value}"
        if state is not EngineState.REVERTING:
            # A restart while testing or before the confirm: the bootloader (one trial boot) went back.
            rolled = state in (EngineState.SELF_TESTING, EngineState.CONFIRMING)
            cases.append(Case(point, "pass", ROLLBACK if rolled else SUCCESS))
        if state is not EngineState.CONFIRMING:
            cases.append(Case(point, "fail", ROLLBACK))
    cases.append(Case("progress:0:8192", "pass", SUCCESS))
    cases.append(Case("progress:0:8192", "fail", ROLLBACK))
    cases.append(Case("progress:0:8192", "pass", LOOP, mode="always", substatus="UPDATE_LOOP_ABORTED"))
    return cases


class History:
    """The ``fwUpdateStatus`` values each device reported, in order."""

    def __init__(self, cloud: AzureStandIn) -> None:
        self._lock = threading.Lock()
        self.seen: dict[str, list[str]] = defaultdict(list)
        cloud.hub.on_reported(self._on_reported)

    def _on_reported(self, device_id: str, patch: Mapping[str, Any], _twin: object) -> None:
        firmware = patch.get("firmware")
        if isinstance(firmware, dict) and "fwUpdateStatus" in firmware:
            with self._lock:
                self.seen[device_id].append(str(firmware["fwUpdateStatus"]))

    def folded(self, device_id: str) -> list[str]:
        with self._lock:
            seen = list(self.seen[device_id])
        return [s for i, s in enumerate(seen) if i == 0 or seen[i - 1] != s]


def _run_case(root: Path, cloud: AzureStandIn, broker: MosquittoBroker, history: History, url: str,
              image: bytes, index: int, case: Case) -> str | None:
    device_id = f"kill-{index}"
    spec = make_spec(root / device_id, cloud, broker.host, broker.port, device_id, self_test=case.self_test)
    spec_file = root / f"{device_id}.json"
    spec_file.write_text(spec.to_json())
    cloud.mxchip.set_firmware([device_id], version="1.0.1", uri=url, check_value=check_value(image),
                              size=len(image))
    codes = []
    for _ in range(MAX_BOOTS):
        result = subprocess.run(
            [sys.executable, "-m", "tests.azure_twin_child", str(spec_file), case.kill_point, case.mode],
            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
        codes.append(result.returncode)
        if result.returncode == 0:
            break
        if result.returncode not in (-9, 75):
            return f"{case}: exit {result.returncode}: {result.stderr[-800:]}"
    else:
        return f"{case}: did not settle in {MAX_BOOTS} boots ({codes})"
    status, version, statuses = case.expected
    reported = cloud.hub.twins.get(device_id).reported.get("firmware", {})
    _flash, control = boot(spec)
    image_state = control.state()
    problems = []
    if reported.get("fwUpdateStatus") != status or reported.get("currentFwVersion") != version:
        problems.append(f"reported {reported}")
    if str(image_state.running_version) != version or image_state.in_trial:
        problems.append(f"running {image_state}")
    if history.folded(device_id) != statuses:
        problems.append(f"history {history.folded(device_id)}")
    if status == "Error":
        wanted = case.substatus or "Rolled back to: 1.0.0"
        if reported.get("fwUpdateSubstatus") != wanted:
            problems.append(f"substatus {reported.get('fwUpdateSubstatus')!r}")
    if (Path(spec.work) / "state" / "engine-progress.json").exists():
        problems.append("progress record left behind")
    return f"{case} (boots {codes}): {'; '.join(problems)}" if problems else None


def test_killed_in_state_matrix(mosquitto: MosquittoBroker, tmp_path: Path) -> None:
    cases = _cases()
    image = build_firmware("1.0.1")
    with AzureStandIn(mosquitto.url, tmp_path / "azure", keys=session_keys(), admin_port=None) as cloud:
        history = History(cloud)
        url = cloud.files.add_file("fw-1.0.1.bin", image)
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            futures = [pool.submit(_run_case, tmp_path, cloud, mosquitto, history, url, image, index, case)
                       for index, case in enumerate(cases)]
            failures = [message for future in futures if (message := future.result()) is not None]
    print(f"azure twin killed-in-state matrix: {len(cases)} cases, {len(failures)} failures")
    assert not failures, "\n".join(failures)

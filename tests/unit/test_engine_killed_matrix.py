"""Mender's killed-in-state matrix for the engine.

For every persisted engine state (and mid-download), a device process runs the update and is killed with
SIGKILL right after that state is saved; it is restarted (as a power cycle: the simulated bootloader runs)
until it has nothing left to do. Each case must end in SUCCEEDED or in a clean rollback with FAILED, with
a valid image running, no progress record left, and exactly the expected status history at the cloud.
A last case kills the device mid-download on every boot: the loop breaker must end it.
"""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import sys
from pathlib import Path

import attrs

from ota_core import JobStatus, StatusReport, Version
from ota_core.engine import EngineState
from tests.engine_fixtures import FileBootControl, job_document, make_image

ROOT = Path(__file__).resolve().parents[2]
MAX_BOOTS = 8

SUCCESS = (JobStatus.SUCCEEDED, "1.0.1", ["accepted", "ready", "self-test", "succeeded"])
ROLLBACK = (JobStatus.FAILED, "1.0.0", ["accepted", "ready", "self-test", "failed"])
EARLY_ROLLBACK = (JobStatus.FAILED, "1.0.0", ["accepted", "ready", "failed"])


@attrs.frozen
class Case:
    kill_point: str
    self_test: str
    expected: tuple[JobStatus, str, list[str]]
    mode: str = "once"
    code: str | None = None


def _cases() -> list[Case]:
    cases = [Case("none", "pass", SUCCESS), Case("none", "fail", ROLLBACK)]
    for state in EngineState:
        if state is EngineState.IDLE:
            continue
        point = f"state:{state.value}"
        if state is not EngineState.REVERTING:
            # The device restarts while testing (or before confirming) the trial image: the bootloader
            # abandons it, so these two end in a rollback although the self-test would have passed.
            pass_result = {
                EngineState.SELF_TESTING: EARLY_ROLLBACK,
                EngineState.CONFIRMING: ROLLBACK,
            }.get(state, SUCCESS)
            cases.append(Case(point, "pass", pass_result))
        if state is not EngineState.CONFIRMING:
            fail_result = EARLY_ROLLBACK if state is EngineState.SELF_TESTING else ROLLBACK
            cases.append(Case(point, "fail", fail_result))
    cases.append(Case("progress:0:16384", "pass", SUCCESS))
    cases.append(Case("progress:0:16384", "fail", ROLLBACK))
    cases.append(
        Case("progress:", "pass", (JobStatus.FAILED, "1.0.0", ["accepted", "failed"]), mode="always",
             code="UPDATE_LOOP_ABORTED")
    )
    return cases


def _history(work: Path) -> list[StatusReport]:
    path = work / "cloud.jsonl"
    if not path.exists():
        return []
    return [
        StatusReport(item["job_id"], JobStatus(item["status"]), item["details"])
        for item in map(json.loads, path.read_text().splitlines())
    ]


def _run_case(root: Path, index: int, case: Case) -> str | None:
    """Run one case; return a description of what went wrong, or None."""
    work = root / f"case-{index}"
    work.mkdir()
    FileBootControl(work / "boot", initial=make_image("1.0.0"))
    image = make_image("1.0.1", 64 * 1024)
    (work / "image.bin").write_bytes(image)
    document = job_document(work / "image.bin", image, "1.0.1")
    (work / "job.json").write_text(json.dumps({"id": "job-1", "document": document}))
    codes = []
    for _ in range(MAX_BOOTS):
        process = subprocess.run(
            [sys.executable, "-m", "tests.engine_child", str(work), case.kill_point, case.mode, case.self_test],
            cwd=ROOT,
            capture_output=True,
            timeout=60,
            check=False,
        )
        codes.append(process.returncode)
        if process.returncode == 0:
            break
        if process.returncode not in (-9, 75):
            return f"child exited {process.returncode}: {process.stderr.decode()[-2000:]}"
    else:
        return f"did not settle within {MAX_BOOTS} boots (exit codes {codes})"
    problems = []
    if case.kill_point != "none" and not (work / "killed").exists():
        problems.append("the kill point was never reached")
    status, version, steps = case.expected
    history = _history(work)
    terminal = [report.status for report in history if report.status.is_terminal]
    if terminal != [status]:
        problems.append(f"terminal statuses {terminal}, expected [{status}]")
    if history and history[-1].status is not status:
        problems.append("the final status is not the last report")
    seen = [report.details.get("step") for report in history if report.details.get("step") != "progress"]
    if seen != steps:
        problems.append(f"steps {seen}, expected {steps}")
    if case.code is not None and history and history[-1].details.get("code") != case.code:
        problems.append(f"code {history[-1].details.get('code')}, expected {case.code}")
    boot = FileBootControl(work / "boot")
    running = boot.state()
    if running.running_version != Version.parse(version) or running.in_trial:
        problems.append(f"running {running.running_version} (trial={running.in_trial}), expected {version}")
    if (work / "state" / "engine-progress.json").exists():
        problems.append("a progress record was left behind")
    return "; ".join(problems) or None


def test_killed_in_every_state(tmp_path: Path) -> None:
    cases = _cases()
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda item: _run_case(tmp_path, *item), enumerate(cases)))
    failures = [f"{case.kill_point}/{case.self_test}: {problem}"
                for case, problem in zip(cases, results, strict=True) if problem]
    print(f"killed-in-state matrix: {len(cases)} cases, {len(failures)} failures")
    for failure in failures:
        print("  FAILED", failure)
    assert not failures

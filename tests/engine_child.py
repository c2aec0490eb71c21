"""One power-on of a simulated device, for the killed-in-state matrix.

Usage: python -m tests.engine_child WORKDIR KILL_POINT MODE SELF_TEST
  KILL_POINT  a fault-hook point ("state:downloading", "progress:0:16384"), a prefix ending in ":", or "none"
  MODE        "once" (a barrier file stops a second kill) or "always" (a reboot loop)
  SELF_TEST   "pass" or "fail"

Exit status: 0 when the job is finished and nothing is left to do, 75 when the engine asked for a restart,
2 on a timeout; a kill shows as -9 to the parent.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

from ota_core import FileStateStore
from ota_core.engine import EngineConfig, EngineState, SelfTestContext, UpdateEngine
from tests.engine_fixtures import FakeJobSource, FileBootControl, FileDownloader, JsonPlanParser, Sha256Verifier

RESTART_EXIT = 75


def main(argv: list[str]) -> int:
    work = Path(argv[1])
    kill_point, mode, self_test = argv[2], argv[3], argv[4]
    barrier = work / "killed"

    def fault(point: str) -> None:
        hit = point == kill_point or (kill_point.endswith(":") and point.startswith(kill_point))
        if hit and (mode == "always" or not barrier.exists()):
            with barrier.open("a") as stream:
                stream.write(point + "\n")
                stream.flush()
                os.fsync(stream.fileno())
            os.kill(os.getpid(), signal.SIGKILL)

    boot = FileBootControl(work / "boot")
    boot.boot()  # power-on: the simulated bootloader decides which slot runs
    store = FileStateStore(work / "state")
    source = FakeJobSource(history_file=work / "cloud.jsonl")
    job = json.loads((work / "job.json").read_text())
    source.jobs[job["id"]] = job["document"]

    def restart() -> None:
        os._exit(RESTART_EXIT)

    def test(_context: SelfTestContext) -> bool:
        return self_test == "pass"

    engine = UpdateEngine(
        job_source=source,
        parsers=[JsonPlanParser()],
        downloaders=[FileDownloader(store, chunk_size=4096)],
        verifier=Sha256Verifier(),
        boot_control=boot,
        state_store=store,
        restart=restart,
        self_test=test,
        config=EngineConfig(report_retry_delays=(0.0,), poll_interval=0.5, fault_hook=fault),
    )
    engine.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if (
            engine.wait_until_idle(0.5)
            and engine.state is EngineState.IDLE
            and source.status_of(job["id"]).is_terminal
        ):
            engine.stop()
            return 0
    engine.stop()
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

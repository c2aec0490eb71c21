"""One power-on of a simulated Device Update device, for the killed-in-state matrix.

Usage: python -m tests.integration._adu_kill_child CONFIG.json
CONFIG: work, host, port, prefix, device_id, root_kid, root_pem_file, kill_point ("state:<s>", a prefix
ending in ":", or "none"), self_test ("pass" or "fail").

The device is killed with SIGKILL at the kill point once (a barrier file remembers it). Exit status: 0 when
the agent has nothing left to do, 75 when the engine asked for a restart, 2 on a timeout.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

from ota_core.engine import EngineState, SelfTestContext
from tests.adu_fixtures import AduDevice

RESTART_EXIT = 75


def main(argv: list[str]) -> int:
    config = json.loads(Path(argv[1]).read_text())
    work = Path(config["work"])
    kill_point = config["kill_point"]
    barrier = work / "killed"

    def fault(point: str) -> None:
        hit = point == kill_point or (kill_point.endswith(":") and point.startswith(kill_point))
        if hit and not barrier.exists():
            with barrier.open("a") as stream:
                stream.write(point + "\n")
                stream.flush()
                os.fsync(stream.fileno())
            os.kill(os.getpid(), signal.SIGKILL)

    def self_test(_context: SelfTestContext) -> bool:
        return bool(config["self_test"] == "pass")

    device = AduDevice(
        work, broker_host=config["host"], broker_port=config["port"], topic_prefix=config["prefix"],
        device_id=config["device_id"], root_kid=config["root_kid"],
        root_pem=Path(config["root_pem_file"]).read_bytes(), self_test=self_test, fault_hook=fault,
    )
    device.boot.boot()  # power-on: the bootloader decides which slot runs
    agent = device.power_on()
    deadline = time.monotonic() + 30
    code = 2
    while time.monotonic() < deadline:
        if device.restarted.is_set():
            code = RESTART_EXIT
            break
        if (
            agent.engine.wait_until_idle(0.5)
            and agent.engine.state is EngineState.IDLE
            and not agent.source.tracker.running
            and not device.restarted.is_set()
        ):
            code = 0
            break
    os._exit(code)  # no clean shutdown: a restart is a power cut as far as the device state goes


if __name__ == "__main__":
    sys.exit(main(sys.argv))

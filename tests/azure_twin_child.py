"""One power-on of a simulated twin-firmware device, for the Azure killed-in-state matrix.

Usage: python -m tests.azure_twin_child SPEC_JSON KILL_POINT MODE
  KILL_POINT  a fault-hook point ("state:downloading"), "progress:0:N" (first progress at or past N bytes),
              or "none"
  MODE        "once" (a barrier file stops a second kill) or "always" (killed on every boot)

Exit status: 0 when the update has ended (final status acknowledged, nothing in flight), 75 when the
engine asked for a restart, 2 on a timeout; a kill shows as -9 to the parent.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import attrs

from ota_core.engine import EngineState, SelfTestContext
from tests.azure_twin_rig import FAST_ENGINE, DeviceSpec, SimDevice

RESTART_EXIT = 75


def _hit(point: str, kill_point: str) -> bool:
    if kill_point.startswith("progress:"):
        prefix, _, threshold = kill_point.rpartition(":")
        return point.startswith(prefix + ":") and int(point.rsplit(":", 1)[1]) >= int(threshold)
    return point == kill_point


def main(argv: list[str]) -> int:
    spec = DeviceSpec.from_json(Path(argv[1]).read_text())
    kill_point, mode = argv[2], argv[3]
    barrier = Path(spec.work) / "killed"

    def fault(point: str) -> None:
        if _hit(point, kill_point) and (mode == "always" or not barrier.exists()):
            with barrier.open("a") as stream:
                stream.write(point + "\n")
                stream.flush()
                os.fsync(stream.fileno())
            os.kill(os.getpid(), signal.SIGKILL)

    def self_test(_context: SelfTestContext) -> bool:
        return spec.self_test == "pass"

    device = SimDevice(spec, self_test=self_test, engine=attrs.evolve(FAST_ENGINE, fault_hook=fault))
    device.restarted.clear()
    twin = device.power_on()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if device.restarted.wait(0.05):
            os._exit(RESTART_EXIT)
        if (twin.engine.wait_until_idle(0.2) and twin.engine.state is EngineState.IDLE
                and twin.store.load("azure-twin-last") is not None and not device.restarted.is_set()):
            device.power_off()
            return 0
    device.power_off()
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

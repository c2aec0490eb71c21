"""A child process that runs one update step list and SIGKILLs itself at a chosen persisted step.

Usage: python -m tests.integration._boot_kill_child BACKEND SCENARIO ROOT KILL_AT
KILL_AT 0 runs to the end and prints the number of steps.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sys
from pathlib import Path

from tests.integration.boot_backends import make_backend


def main() -> None:
    backend, scenario, root, kill_at = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
    steps = 0

    def hook(_name: str) -> None:
        nonlocal steps
        steps += 1
        if steps == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    device = make_backend(backend, root, hook)
    new = (root / "new.img").read_bytes()
    if scenario == "update":
        control = device.control()
        writer = control.open_inactive_slot(len(new))
        for offset in range(0, len(new), 256):
            writer.write_at(offset, new[offset : offset + 256])
            hook("chunk")
        control.activate(expected_sha256=hashlib.sha256(new).digest(), image_size=len(new))
        device.boot()
        device.control().confirm()
    elif scenario == "revert":
        device.control().revert()
        device.boot()
    print(steps)


if __name__ == "__main__":
    main()

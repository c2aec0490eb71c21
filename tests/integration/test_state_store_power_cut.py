"""Power cuts as a real process sees them: a writer is killed with SIGKILL at random moments, many times."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

from ota_core.state_store import FileStateStore

KILLS = 40


def test_sigkill_during_saves_never_yields_garbage(tmp_path: Path) -> None:
    rng = random.Random(20261125)
    store_dir = tmp_path / "state"
    last_confirmed = -1
    for _ in range(KILLS):
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.integration._state_writer", str(store_dir), str(last_confirmed + 1)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        first = child.stdout.readline()  # the writer is up and has saved once: now cut at a random moment
        time.sleep(rng.uniform(0.0, 0.05))
        child.kill()
        output, _ = child.communicate(timeout=10)
        confirmed = [int(line) for line in (first + output).split()]
        document = FileStateStore(store_dir).load("progress")  # never raises, never garbage
        if confirmed:
            assert document is not None
            value = document.data["n"]
            # The newest save that returned is on disk, or the one after it that was in flight.
            assert value in (confirmed[-1], confirmed[-1] + 1)
            assert document.data["pad"] == "x" * (value % 5000)
            last_confirmed = value
        elif document is not None:
            assert document.data["n"] in (last_confirmed, last_confirmed + 1)
            last_confirmed = document.data["n"]
    assert last_confirmed > 0
    print(f"state store: {KILLS} SIGKILLs, last document {last_confirmed}, no garbage, no error")

"""Child process for the power-cut test: saves numbered documents in a loop until it is killed."""

from __future__ import annotations

import sys

from ota_core.state_store import FileStateStore


def main() -> None:
    """Write ``{"n": i, "pad": ...}`` for i = start, start+1, ...; print each i after its save returns."""
    directory, start = sys.argv[1], int(sys.argv[2])
    store = FileStateStore(directory)
    index = start
    while True:
        store.save("progress", {"n": index, "pad": "x" * (index % 5000)})
        sys.stdout.write(f"{index}\n")
        sys.stdout.flush()
        index += 1


if __name__ == "__main__":
    main()

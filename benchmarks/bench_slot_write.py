"""Slot write throughput of each ota_boot backend against a plain file write of the same bytes.

Every backend receives the same image in 4 KiB blocks through its BlockSink and is made durable
(close: fsync for files); the baseline opens a file, writes the same blocks and fsyncs it. The figure
is the median of several runs; the ratio is backend time / baseline time (1.0 = as fast as a plain write).

    python benchmarks/bench_slot_write.py [--size-mib 16] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ota_boot import (
    BootLayout,
    CountingScheme,
    DemoImageValidator,
    DirectorySlots,
    EnvBootControl,
    EnvCopy,
    FileSlot,
    GrubEnvFile,
    McuBootControl,
    SimFlash,
    UBootEnvStore,
)
from ota_core.protocols import BlockSink

BLOCK = 4096


def _feed(sink: BlockSink, data: bytes) -> None:
    for offset in range(0, len(data), BLOCK):
        sink.write_at(offset, data[offset : offset + BLOCK])
    sink.flush()
    close = getattr(sink, "close", None)
    if close is not None:
        close()


def _plain(directory: Path, data: bytes) -> None:
    descriptor = os.open(directory / "plain.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for offset in range(0, len(data), BLOCK):
            os.write(descriptor, data[offset : offset + BLOCK])
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _directory(directory: Path, data: bytes) -> None:
    root = directory / "dirslots"
    slots = DirectorySlots.initialise(root, b"factory") if not root.exists() else DirectorySlots(root)
    _feed(slots.open_inactive_slot(len(data)), data)


def _env(kind: str) -> Callable[[Path, bytes], None]:
    def run(directory: Path, data: bytes) -> None:
        scheme = CountingScheme()
        slots = {name: FileSlot(directory / f"{kind}{name}.img", len(data)) for name in ("A", "B")}
        store: UBootEnvStore | GrubEnvFile
        if kind == "uboot":
            store = UBootEnvStore([EnvCopy(directory / "e1", 0, 0x2000), EnvCopy(directory / "e2", 0, 0x2000)])
        else:
            store = GrubEnvFile(directory / "grubenv")
        store.initialise(scheme.initial("A"))
        control = EnvBootControl(store, scheme, slots, booted_slot="A")
        _feed(control.open_inactive_slot(len(data)), data)

    return run


def _mcu(file_backed: bool) -> Callable[[Path, bytes], None]:
    def run(directory: Path, data: bytes) -> None:
        layout = BootLayout.simple(sector_size=4096, image_sectors=len(data) // 4096 + 1, write_alignment=8)
        flash = SimFlash.create(directory / "flash.bin", layout.flash) if file_backed else SimFlash(layout.flash)
        control = McuBootControl(flash, layout, DemoImageValidator())
        _feed(control.open_inactive_slot(len(data)), data)

    return run


BACKENDS: dict[str, Callable[[Path, bytes], None]] = {
    "directory slots (file + fsync)": _directory,
    "U-Boot env backend (slot file + fsync)": _env("uboot"),
    "GRUB env backend (slot file + fsync)": _env("grub"),
    "MCU, simulated NOR in memory": _mcu(False),
    "MCU, simulated NOR in a file": _mcu(True),
}


def _time(action: Callable[[Path, bytes], None], data: bytes, runs: int) -> float:
    samples = []
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        for _ in range(runs):
            start = time.perf_counter()
            action(directory, data)
            samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description="slot write throughput vs plain file write")
    parser.add_argument("--size-mib", type=int, default=16)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    data = os.urandom(args.size_mib * 1024 * 1024)
    mib = len(data) / (1024 * 1024)
    print(f"image {mib:.0f} MiB in {BLOCK}-byte blocks, median of {args.runs} runs\n")
    print("| backend | backend MiB/s | plain file MiB/s | ratio (backend time / plain time) |")
    print("|---|---|---|---|")
    for name, action in BACKENDS.items():
        baseline = _time(_plain, data, args.runs)
        measured = _time(action, data, args.runs)
        print(f"| {name} | {mib / measured:.0f} | {mib / baseline:.0f} | {measured / baseline:.2f} |")


if __name__ == "__main__":
    main()

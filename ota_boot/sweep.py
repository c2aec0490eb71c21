"""The power-cut sweep: MCUboot's simulator method, applied to the bootloader model.

For a scenario (a permanent upgrade, a test upgrade with confirmation, a revert), a clean run counts
the flash operations N. Then for every i in 1..N the scenario is replayed on a fresh device with the
power cut after operation i (or with operation i torn part-way); the device restarts, the bootloader
runs to the end, and the result is checked: exactly the old or the new image boots, byte-identical
to what was written, the trailers agree with what booted, and a second start is consistent with the
first. Any other outcome is counted as a brick. Random runs cut the power several times in a row.

Run a larger sweep by hand with ``python -m ota_boot.sweep --large``.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
from collections.abc import Callable, Iterable

import attrs

from ota_boot.bootloader import Bootloader, BootResult
from ota_boot.demo_image import DemoImageValidator, build_demo_image
from ota_boot.errors import PowerCut
from ota_boot.flash import SimFlash
from ota_boot.layout import BootLayout, SwapMode
from ota_boot.mcu_control import McuBootControl
from ota_boot.trailer import FlagState, MagicState
from ota_core.errors import OtaError
from ota_core.protocols import ImageValidator

__all__ = ["SCENARIOS", "SweepReport", "power_cut_sweep", "random_cut_runs", "standard_layouts"]

SCENARIOS = ("upgrade-perm", "upgrade-test", "revert")

_Phase = Callable[[SimFlash], None]


@attrs.frozen
class SweepReport:
    """The outcome of a sweep: how many cut points were tried and how many bricked the device."""

    layout: str
    scenario: str
    mode: str
    cut_points: int
    bricks: int
    failures: tuple[str, ...] = ()


@attrs.frozen
class _Case:
    layout: BootLayout
    old: bytes
    new: bytes
    validator: ImageValidator
    loader: type[Bootloader] = Bootloader


def standard_layouts(scale: int = 1) -> dict[str, BootLayout]:
    """The flash layouts every sweep covers: small and large sectors, alignments 1..8, 0xFF and 0x00."""
    return {
        "small-256B-align1-ff": BootLayout.simple(sector_size=256, image_sectors=6 * scale, write_alignment=1),
        "medium-1K-align4-ff-bootsector": BootLayout.simple(
            sector_size=1024, image_sectors=4 * scale, write_alignment=4, boot_sectors=(16384,)
        ),
        "large-4K-align8-00": BootLayout.simple(
            sector_size=4096, image_sectors=3 * scale, write_alignment=8, erased_value=0x00
        ),
        "small-512B-align2-00": BootLayout.simple(
            sector_size=512, image_sectors=4 * scale, write_alignment=2, erased_value=0x00
        ),
        "overwrite-1K-align4-ff": BootLayout.simple(
            sector_size=1024, image_sectors=4 * scale, write_alignment=4, mode=SwapMode.OVERWRITE_ONLY
        ),
    }


def make_images(layout: BootLayout, seed: int = 1) -> tuple[bytes, bytes]:
    """An old and a new demo image of different sizes that fit the layout."""
    rng = random.Random(seed)
    capacity = layout.image_capacity - 64
    old = build_demo_image(rng.randbytes(capacity * 2 // 3 + 5), "1.0.0")
    new = build_demo_image(rng.randbytes(capacity - 3), "2.0.0")
    return old, new


def _factory(case: _Case) -> SimFlash:
    flash = SimFlash(case.layout.flash)
    align = case.layout.flash.write_alignment
    padded = case.old + bytes([case.layout.flash.erased_value]) * ((-len(case.old)) % align)
    flash.write(case.layout.primary_offset, padded)
    return flash


def _install(case: _Case, permanent: bool) -> _Phase:
    def phase(flash: SimFlash) -> None:
        control = McuBootControl(flash, case.layout, case.validator)
        writer = control.open_inactive_slot(len(case.new))
        chunk = 97  # deliberately not aligned: exercises the writer's partial units
        for offset in range(0, len(case.new), chunk):
            writer.write_at(offset, case.new[offset : offset + chunk])
        control.activate(permanent=permanent, expected_sha256=hashlib.sha256(case.new).digest())

    return phase


def _boot(case: _Case) -> _Phase:
    def phase(flash: SimFlash) -> None:
        case.loader(flash, case.layout, case.validator).boot()

    return phase


def _confirm(case: _Case) -> _Phase:
    def phase(flash: SimFlash) -> None:
        McuBootControl(flash, case.layout, case.validator).confirm()

    return phase


def _scenario(case: _Case, scenario: str) -> tuple[bytes, list[_Phase]]:
    """The initial device contents and the phases of a scenario."""
    factory = _factory(case)
    if scenario == "upgrade-perm":
        return factory.snapshot(), [_install(case, True), _boot(case)]
    if scenario == "upgrade-test":
        return factory.snapshot(), [_install(case, False), _boot(case), _confirm(case)]
    if scenario == "revert":
        _install(case, False)(factory)
        _boot(case)(factory)
        return factory.snapshot(), [_boot(case)]
    raise ValueError(f"unknown scenario {scenario!r}")  # pragma: no cover - callers use SCENARIOS


def _run(case: _Case, initial: bytes, phases: list[_Phase], cuts: Iterable[tuple[int, bool, int | None]]) -> SimFlash:
    """Replay the phases with the given cuts; after the first cut only recovery boots run."""
    flash = SimFlash.from_bytes(case.layout.flash, initial)
    pending = list(cuts)
    if pending:
        at, tear, tear_bytes = pending.pop(0)
        flash.arm_power_cut(at, tear=tear, tear_bytes=tear_bytes)
    try:
        for phase in phases:
            phase(flash)
        flash.disarm()
        return flash
    except PowerCut:
        flash = flash.reboot()
    for at, tear, tear_bytes in pending:  # cuts during recovery boots
        flash.arm_power_cut(at, tear=tear, tear_bytes=tear_bytes)
        try:
            case.loader(flash, case.layout, case.validator).boot()
            flash.disarm()
        except PowerCut:
            flash = flash.reboot()
    return flash


def _check(case: _Case, scenario: str, flash: SimFlash, committed: bool | None) -> str | None:
    """None if the device is healthy, else what is wrong."""
    loader = case.loader(flash, case.layout, case.validator)
    try:
        first = loader.boot()
        problem = _check_result(case, flash, loader, first)
        if problem:
            return problem
        second_trailer = loader.read_trailer("primary")
        second = case.loader(flash, case.layout, case.validator).boot()
    except (OtaError, PowerCut) as error:
        return f"no boot: {error}"
    image = _which(case, flash)
    if image is None:
        return "second boot: primary holds neither image"
    trial = second_trailer.image_ok is FlagState.UNSET and second_trailer.copy_done is FlagState.SET
    if trial and image != "old":
        return "an unconfirmed trial image booted twice"
    if not trial and _version(first) != _version(second):
        return f"a confirmed image changed between starts ({_version(first)} then {_version(second)})"
    booted_first = "new" if _version(first) == "2.0.0" else "old"
    if scenario == "revert" and booted_first != "old":
        return "revert: the rejected image booted again"
    if scenario == "upgrade-perm" and committed is not None and booted_first != ("new" if committed else "old"):
        return f"permanent upgrade: {booted_first} image booted, committed={committed}"
    if scenario == "upgrade-test" and committed is False and booted_first != "old":
        return "test upgrade: new image booted before it was activated"
    return None


def _version(result: BootResult) -> str:
    return str(result.image.version)


def _which(case: _Case, flash: SimFlash) -> str | None:
    primary = case.layout.primary_offset
    if flash.read(primary, len(case.new)) == case.new:
        return "new"
    if flash.read(primary, len(case.old)) == case.old:
        return "old"
    return None


def _check_result(case: _Case, flash: SimFlash, loader: Bootloader, result: BootResult) -> str | None:
    image = _which(case, flash)
    if image is None:
        return "primary holds neither the old nor the new image"
    if (image == "new") != (_version(result) == "2.0.0"):
        return "booted version does not match the primary bytes"
    primary, secondary = loader.read_trailer("primary"), loader.read_trailer("secondary")
    if secondary.magic is MagicState.GOOD:
        return "secondary still requests a swap after boot"
    swapped = primary.magic is MagicState.GOOD and primary.copy_done is FlagState.SET
    if image == "new" and case.layout.mode is SwapMode.SWAP_MOVE:
        if not swapped or primary.image_ok is FlagState.BAD:
            return f"new image booted with an inconsistent primary trailer {primary}"
        if flash.read(case.layout.secondary_offset, len(case.old)) != case.old:
            return "after the swap the secondary does not hold the old image"
    if image == "old" and swapped:
        if primary.image_ok is not FlagState.SET:
            return "old image running unconfirmed after a revert"
        if flash.read(case.layout.secondary_offset, len(case.new)) != case.new:
            return "after the revert the secondary does not hold the new image"
    return None


def _commit_op(case: _Case, initial: bytes, phases: list[_Phase]) -> tuple[int, int | None]:
    """Total operations of a clean run, and the operation that makes the upgrade unstoppable."""
    flash = SimFlash.from_bytes(case.layout.flash, initial)
    flash.record_ops = True
    for phase in phases:
        phase(flash)
    magic = case.layout.trailer_offset("secondary") + case.layout.trailer.magic_offset
    commit = next(
        (index + 1 for index, (kind, offset, _n) in enumerate(flash.op_log) if kind == "write" and offset == magic),
        None,
    )
    return flash.ops, commit


def power_cut_sweep(
    layout: BootLayout,
    scenario: str,
    *,
    tear: bool = False,
    tear_fractions: tuple[float, ...] = (0.5,),
    name: str = "",
    validator: ImageValidator | None = None,
    images: tuple[bytes, bytes] | None = None,
    bootloader: type[Bootloader] = Bootloader,
) -> SweepReport:
    """Cut the power after (or during) every flash operation of a scenario and check every outcome.

    ``bootloader`` lets a test check that the sweep catches a deliberately broken bootloader.
    """
    old, new = images if images is not None else make_images(layout)
    case = _Case(layout, old, new, validator or DemoImageValidator(), bootloader)
    initial, phases = _scenario(case, scenario)
    total, commit = _commit_op(case, initial, phases)
    failures: list[str] = []
    points = 0
    clean = _run(case, initial, phases, [])
    problem = _check(case, scenario, clean, commit is not None)
    if problem is None and _which(case, clean) != ("old" if scenario == "revert" else "new"):
        problem = "the uninterrupted scenario did not end on the expected image"
    if problem:
        failures.append(f"no cut: {problem}")
    lengths = _op_lengths(case, initial, phases)
    for index in range(1, total + 1):
        variants: list[tuple[bool, int | None]] = [(False, None)]
        if tear:
            variants = [(True, int(lengths[index - 1] * fraction)) for fraction in tear_fractions]
        for torn, keep in variants:
            points += 1
            flash = _run(case, initial, phases, [(index, torn, keep)])
            committed = None if commit is None else (index > commit or (index == commit and not torn))
            problem = _check(case, scenario, flash, committed)
            if problem:
                failures.append(f"op {index}{' torn' if torn else ''}: {problem}")
    return SweepReport(name, scenario, "tear" if tear else "cut", points, len(failures), tuple(failures))


def _op_lengths(case: _Case, initial: bytes, phases: list[_Phase]) -> list[int]:
    flash = SimFlash.from_bytes(case.layout.flash, initial)
    flash.record_ops = True
    for phase in phases:
        phase(flash)
    return [length for _kind, _offset, length in flash.op_log]


def random_cut_runs(
    layout: BootLayout,
    scenario: str,
    *,
    runs: int,
    seed: int,
    max_cuts: int = 5,
    name: str = "",
) -> SweepReport:
    """Runs with several power cuts in a row (some torn), each in the first half of what remains."""
    rng = random.Random(seed)
    old, new = make_images(layout)
    case = _Case(layout, old, new, DemoImageValidator())
    initial, phases = _scenario(case, scenario)
    total, _commit = _commit_op(case, initial, phases)
    failures = []
    for run in range(runs):
        cuts = []
        remaining = total
        for _ in range(rng.randint(2, max_cuts)):
            at = rng.randint(1, max(1, remaining // 2))
            cuts.append((at, rng.random() < 0.3, None))
            remaining = max(2, remaining - at)
        flash = _run(case, initial, phases, cuts)
        problem = _check(case, scenario, flash, None)
        if problem:
            failures.append(f"run {run} cuts {cuts}: {problem}")
    return SweepReport(name, scenario, "random", runs, len(failures), tuple(failures))


def main(argv: list[str] | None = None) -> int:
    """Print the sweep table; ``--large`` uses bigger images and more tear points."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help="4x larger slots, 4 tear points, 200 random runs")
    args = parser.parse_args(argv)
    scale, fractions, runs = (4, (0.0, 0.25, 0.5, 0.9), 200) if args.large else (1, (0.5,), 40)
    bricks = points = 0
    out = sys.stdout
    out.write("| layout | scenario | mode | cut points | bricks |\n|---|---|---|---|---|\n")
    for name, layout in standard_layouts(scale).items():
        scenarios = ["upgrade-perm"] if layout.mode is SwapMode.OVERWRITE_ONLY else list(SCENARIOS)
        for scenario in scenarios:
            reports = [
                power_cut_sweep(layout, scenario, name=name),
                power_cut_sweep(layout, scenario, tear=True, tear_fractions=fractions, name=name),
                random_cut_runs(layout, scenario, runs=runs, seed=7, name=name),
            ]
            for report in reports:
                out.write(f"| {name} | {scenario} | {report.mode} | {report.cut_points} | {report.bricks} |\n")
                points += report.cut_points
                bricks += report.bricks
                for failure in report.failures[:5]:
                    out.write(f"    {failure}\n")
    out.write(f"\ntotal cut points: {points}, bricks: {bricks}\n")
    return 1 if bricks else 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

"""The power-cut sweep over the bootloader model: every flash operation, cut and torn, zero bricks."""

from __future__ import annotations

import pytest

from ota_boot.bootloader import Bootloader
from ota_boot.layout import BootLayout, SwapMode
from ota_boot.sweep import SCENARIOS, SweepReport, main, power_cut_sweep, random_cut_runs, standard_layouts
from ota_boot.trailer import Trailer

LAYOUTS = standard_layouts()
CASES = [
    (name, scenario)
    for name, layout in LAYOUTS.items()
    for scenario in SCENARIOS
    if layout.mode is SwapMode.SWAP_MOVE or scenario == "upgrade-perm"
]


def _report(report: SweepReport) -> None:
    print(f"{report.layout} {report.scenario} {report.mode}: {report.cut_points} cut points, {report.bricks} bricks")


@pytest.mark.parametrize(("name", "scenario"), CASES)
def test_cut_after_every_operation(name: str, scenario: str) -> None:
    report = power_cut_sweep(LAYOUTS[name], scenario, name=name)
    _report(report)
    assert report.cut_points > 10
    assert report.bricks == 0, report.failures[:5]


@pytest.mark.parametrize(("name", "scenario"), CASES)
def test_tear_every_operation(name: str, scenario: str) -> None:
    report = power_cut_sweep(LAYOUTS[name], scenario, tear=True, tear_fractions=(0.5,), name=name)
    _report(report)
    assert report.bricks == 0, report.failures[:5]


@pytest.mark.parametrize(("name", "scenario"), CASES)
def test_random_multi_cut_runs(name: str, scenario: str) -> None:
    report = random_cut_runs(LAYOUTS[name], scenario, runs=25, seed=11, name=name)
    _report(report)
    assert report.bricks == 0, report.failures[:5]


class _StatusFirstBootloader(Bootloader):
    """A broken bootloader: records a swap step as done before doing it."""

    def _step(self, primary: Trailer, entry: int, source: int, destination: int) -> None:
        if primary.status[entry]:
            return
        trailer = self.layout.trailer
        self.flash.write(self.layout.trailer_offset("primary") + trailer.status_offset(entry), trailer.flag())
        sector = self.layout.sector_size
        data = self.flash.read(source, sector)
        if not self.flash.is_erased(destination, sector):
            self.flash.erase(destination, sector)
        self.flash.write(destination, data)


def test_the_sweep_catches_a_broken_bootloader() -> None:
    layout = LAYOUTS["small-256B-align1-ff"]
    report = power_cut_sweep(layout, "upgrade-perm", bootloader=_StatusFirstBootloader)
    assert report.bricks > 0
    assert not any(failure.startswith("no cut") for failure in report.failures)


@pytest.mark.slow
def test_sweep_table_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "bricks: 0" in out


@pytest.mark.slow
def test_larger_sweep() -> None:
    layout = BootLayout.simple(sector_size=512, image_sectors=12, write_alignment=8)
    for scenario in SCENARIOS:
        report = power_cut_sweep(layout, scenario, tear=True, tear_fractions=(0.0, 0.25, 0.9))
        _report(report)
        assert report.bricks == 0, report.failures[:5]

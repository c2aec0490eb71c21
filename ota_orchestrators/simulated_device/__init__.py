"""The simulated device used by ``ota demo`` and the end-to-end tests.

``python -m ota_orchestrators.simulated_device CONFIG.json`` boots a simulated MCU (file-backed NOR
flash, MCUboot-style bootloader, MCUboot image checks), runs the configured flow's orchestrator, prints
one JSON object per line for every event, and exits with ``EXIT_RESTART`` (75) when the engine asks for
a restart, so that its supervisor starts it again. Exit codes: 0 stopped, 1 no bootable image or the
flow failed to start, 2 broken configuration, 75 restart.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from ota_core.errors import OtaError
from ota_orchestrators.simulated_device._config import DeviceConfig, FlashGeometry, load_device_config
from ota_orchestrators.simulated_device._device import (
    EXIT_BOOT_FAILED,
    EXIT_CONFIG,
    EXIT_RESTART,
    EXIT_STOPPED,
    DeviceContext,
    Emitter,
    FaultPlan,
    ReportingJobSource,
    layout_for,
    run_device,
)
from ota_orchestrators.simulated_device._flows import FLOW_MODULES, FlowRunner, RunningFlow, get_flow, register_flow

__all__ = [
    "EXIT_BOOT_FAILED",
    "EXIT_CONFIG",
    "EXIT_RESTART",
    "EXIT_STOPPED",
    "FLOW_MODULES",
    "DeviceConfig",
    "DeviceContext",
    "Emitter",
    "FaultPlan",
    "FlashGeometry",
    "FlowRunner",
    "ReportingJobSource",
    "RunningFlow",
    "get_flow",
    "layout_for",
    "load_device_config",
    "main",
    "register_flow",
    "run_device",
]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one start of the device process; returns its exit code."""
    parser = argparse.ArgumentParser(prog="python -m ota_orchestrators.simulated_device")
    parser.add_argument("config", type=Path, help="device configuration (JSON)")
    parser.add_argument("--kill-at", default=None, help="SIGKILL itself at this engine point (tests)")
    parser.add_argument("--pause-at", default=None, help="pause at this engine point until killed (demo)")
    parser.add_argument("--fault-once", type=Path, default=None, help="fire the fault once: marker file")
    parser.add_argument("--log-level", default="WARNING")
    arguments = parser.parse_args(argv)
    logging.basicConfig(
        level=arguments.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    emit = Emitter()
    try:
        config = load_device_config(arguments.config)
    except OtaError as error:
        emit("error", code=error.code, message=str(error))
        return EXIT_CONFIG
    try:
        return run_device(
            config,
            FaultPlan(kill_at=arguments.kill_at, pause_at=arguments.pause_at, once_file=arguments.fault_once),
            emit,
        )
    except OtaError as error:
        emit("error", code=error.code, message=str(error))
        return EXIT_BOOT_FAILED

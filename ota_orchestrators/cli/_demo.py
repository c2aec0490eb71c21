"""``ota demo aws|azure|adu``: watch a whole update happen on this machine, in one command."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from ota_orchestrators.demo import DEFAULT_IMAGE_SIZE, SCENARIO_MODULES, DemoOptions, run_demo

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``ota demo FLOW``."""
    parser = subparsers.add_parser(
        "demo",
        help="run a whole update locally: broker, cloud stand-in, simulated device",
        description="Start a private mosquitto, the cloud stand-in and a simulated device with firmware 1.0.0, "
        "publish signed firmware 1.0.1 and show the update live. Exit status 0 only when the expected "
        "end state was reached.",
    )
    parser.add_argument("flow", choices=sorted(SCENARIO_MODULES), help="which cloud flow to show")
    parser.add_argument("--protocol", choices=("mqtt", "http"), default="mqtt", help="AWS: MQTT streams or HTTP")
    parser.add_argument("--fail-self-test", action="store_true", help="the new image fails its self-test: rollback")
    parser.add_argument("--power-cut", action="store_true", help="kill the device mid-download, then resume")
    parser.add_argument("--broker", default=None, help="use this broker (mqtt://host:port) instead of a private one")
    parser.add_argument("--image-size", type=int, default=DEFAULT_IMAGE_SIZE, help="firmware payload bytes")
    parser.add_argument("--work-dir", type=Path, default=None, help="keep the demo's files here (default: temporary)")
    parser.add_argument("--timeout", type=float, default=55.0, help="give up after this many seconds")
    parser.add_argument("--debug", dest="demo_debug", action="store_true", help="tracebacks, device debug log")
    parser.set_defaults(handler=_run)


def _run(arguments: argparse.Namespace) -> int:
    arguments.debug = bool(arguments.debug or arguments.demo_debug)
    # The live view is the output; library logs only when debugging.
    logging.getLogger().setLevel(logging.DEBUG if arguments.debug else logging.ERROR)
    options = DemoOptions(
        flow=arguments.flow,
        protocol=arguments.protocol,
        fail_self_test=arguments.fail_self_test,
        power_cut=arguments.power_cut,
        broker=arguments.broker,
        debug=arguments.debug,
        image_size=arguments.image_size,
        work_dir=arguments.work_dir,
        timeout=arguments.timeout,
    )
    status, _result = run_demo(options)
    return status

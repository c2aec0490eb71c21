"""Pieces shared by the ``ota`` subcommand modules."""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

_CLOUD_GROUP = "_ota_cloud_subparsers"


def cloud_subparsers(subparsers: Any) -> Any:
    """The subparsers of ``ota cloud``, created on first use so that several modules can add clouds."""
    existing = getattr(subparsers, _CLOUD_GROUP, None)
    if existing is not None:
        return existing
    cloud = subparsers.add_parser("cloud", help="run a local stand-in of a cloud service")
    group = cloud.add_subparsers(dest="cloud", metavar="CLOUD")
    cloud.set_defaults(handler=lambda _arguments: _print_help(cloud))
    setattr(subparsers, _CLOUD_GROUP, group)
    return group


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def wait_for_interrupt() -> None:
    """Block until SIGINT or SIGTERM, so that a foreground server stops cleanly."""
    stop = threading.Event()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda *_: stop.set())
    try:
        stop.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

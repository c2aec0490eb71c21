"""The ``ota`` command: local clouds, a broker, signing tools, device agents and the demo.

Each group of subcommands lives in its own module with a ``register(subparsers)`` function; this module
only assembles them and turns the project's typed errors into one clear line and an exit status.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from ota_core.errors import OtaError

__all__ = ["main"]

_COMMAND_MODULES: tuple[str, ...] = (
    "ota_orchestrators.cli._broker",
    "ota_orchestrators.cli._cloud_aws",
    "ota_orchestrators.cli._cloud_azure",
    "ota_orchestrators.cli._signing",
    "ota_orchestrators.cli._demo",
    "ota_orchestrators.cli._device",
)

EXIT_FAILURE = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(prog="ota", description="modular-ota: over-the-air updates, end to end.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in _COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``ota`` command; return the process exit status."""
    parser = build_parser()
    arguments = parser.parse_args(argv)
    level = logging.DEBUG if arguments.debug else logging.WARNING if arguments.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler = getattr(arguments, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        result: int = handler(arguments)
    except OtaError as error:
        if arguments.debug:
            raise
        print(f"ota: error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("ota: interrupted", file=sys.stderr)
        return 130
    return result

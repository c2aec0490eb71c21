"""The registry of device flows: each reference orchestrator registers how it runs on the simulated device.

A flow module calls ``register_flow(name, runner)`` when imported; ``get_flow(name)`` imports the modules
listed in ``FLOW_MODULES`` first, so a new flow is one module plus one line here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from ota_core.errors import ConfigurationError

if TYPE_CHECKING:
    from ota_orchestrators.simulated_device._device import DeviceContext

__all__ = ["FLOW_MODULES", "FlowRunner", "RunningFlow", "get_flow", "register_flow"]

FLOW_MODULES: list[str] = [
    "ota_orchestrators.simulated_device._aws_flow",
    "ota_orchestrators.simulated_device._adu_flow",
    "ota_orchestrators.simulated_device._azure_flow",
]
"""Modules that register flows when imported (the Azure and ADU flows add theirs here)."""


class RunningFlow(Protocol):
    """A started orchestrator: the device stops it before it exits or restarts."""

    def stop(self) -> None: ...


FlowRunner = Callable[["DeviceContext"], RunningFlow]
"""Builds and starts a flow's orchestrator from the device context; returns it running."""

_FLOWS: dict[str, FlowRunner] = {}


def register_flow(name: str, runner: FlowRunner) -> None:
    """Make ``name`` available to device configurations (``"flow": name``)."""
    _FLOWS[name] = runner


def get_flow(name: str) -> FlowRunner:
    """The runner registered as ``name``; ``ConfigurationError`` naming the known flows otherwise."""
    for module in FLOW_MODULES:
        try:
            importlib.import_module(module)
        except ImportError as error:  # a flow whose optional module is missing does not break the others
            if name in module:
                raise ConfigurationError(f"flow {name!r} cannot be loaded: {error}") from None
    try:
        return _FLOWS[name]
    except KeyError:
        known = ", ".join(sorted(_FLOWS)) or "none"
        raise ConfigurationError(f"unknown flow {name!r} (known: {known})") from None

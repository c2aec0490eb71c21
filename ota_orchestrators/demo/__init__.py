"""``ota demo``: a whole update on a laptop, one command per flow.

``run_demo(DemoOptions(flow="aws"))`` runs the demo; ``_runner.py`` holds the shared framework, each
flow's scenario module registers itself with ``register_scenario``.
"""

from ota_orchestrators.demo._runner import (
    DEFAULT_IMAGE_SIZE,
    SCENARIO_MODULES,
    DemoContext,
    DemoError,
    DemoOptions,
    DemoResult,
    DeviceSupervisor,
    Expected,
    Firmware,
    Scenario,
    TerminalView,
    build_firmware,
    register_scenario,
    run_demo,
)

__all__ = [
    "DEFAULT_IMAGE_SIZE",
    "SCENARIO_MODULES",
    "DemoContext",
    "DemoError",
    "DemoOptions",
    "DemoResult",
    "DeviceSupervisor",
    "Expected",
    "Firmware",
    "Scenario",
    "TerminalView",
    "build_firmware",
    "register_scenario",
    "run_demo",
]

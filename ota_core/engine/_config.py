"""Engine settings and the types the application hands in (self-test, restart, sinks, policy)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import attrs

from ota_core.clock import Clock
from ota_core.models import FileTarget, UpdatePlan
from ota_core.protocols import BlockSink
from ota_core.update_control import ControlEvent, Decision, Gate, UpdateKind

__all__ = [
    "EngineConfig",
    "FaultHook",
    "SelfTest",
    "SelfTestContext",
    "SinkFactory",
    "UpdatePolicy",
]

FaultHook = Callable[[str], None]
"""Called at named points (``"state:<state>"`` after each save, ``"progress:<file>:<bytes>"``); tests cut
power here."""

SinkFactory = Callable[[UpdatePlan, FileTarget, int], BlockSink]
"""Opens where file number ``index`` of a plan is written; the default writes file 0 to the inactive slot."""


@attrs.frozen
class SelfTestContext:
    """What a self-test gets: the plan it tests, its deadline (monotonic seconds) and the clock."""

    plan: UpdatePlan | None
    job_id: str
    deadline: float
    clock: Clock

    def remaining(self) -> float:
        """Seconds left before the deadline (never negative)."""
        return max(0.0, self.deadline - self.clock.monotonic())


SelfTest = Callable[[SelfTestContext], bool]
"""The application's check of the new image after the restart: True to confirm, False (or raise) to revert."""


@runtime_checkable
class UpdatePolicy(Protocol):
    """What the engine needs from update control; ``ota_core.update_control.UpdateControl`` provides it."""

    def decide(self, job_id: str, kind: UpdateKind, gate: Gate) -> Decision: ...

    def complete(self, job_id: str) -> None: ...

    def add_listener(self, callback: Callable[[ControlEvent], None]) -> None: ...


@attrs.frozen
class EngineConfig:
    """Tunable behaviour of the engine; the defaults follow FreeRTOS OTA and Mender where they exist.

    - ``name``: prefix of the engine's state-store documents (one engine per prefix).
    - ``max_unexpected_restarts``: the loop breaker; restarts other than the planned one after activation.
    - ``max_transitions``: the loop breaker's budget of persisted state changes per update (Mender: 28).
    - ``self_test_timeout``: seconds the self-test may take (FreeRTOS: 16 s).
    - ``report_retry_delays``: waits between attempts of a final report; the last one repeats.
    - ``poll_interval``: longest wait before the policy is asked again while an update is held.
    - ``progress_report_step``: fraction of the download between IN_PROGRESS progress reports (0: none).
    - ``download_attempts``: tries per file for retryable download errors.
    - ``allow_downgrade`` / ``allow_same_version``: reject (REJECTED) plans older than / equal to what runs.
    - ``supersede``: a new job arriving before activation replaces the current one (else it waits).
    - ``fault_hook``: test hook, see ``FaultHook``.
    """

    name: str = "engine"
    max_unexpected_restarts: int = 3
    max_transitions: int = 28
    self_test_timeout: float = 16.0
    report_retry_delays: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 30.0)
    poll_interval: float = 30.0
    progress_report_step: float = 0.25
    download_attempts: int = 3
    allow_downgrade: bool = False
    allow_same_version: bool = False
    supersede: bool = True
    fault_hook: FaultHook | None = None

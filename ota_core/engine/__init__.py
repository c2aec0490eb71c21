"""The orchestration engine: one update at a time, from job notification to the final report.

The engine composes the component protocols of ``ota_core.protocols`` (job source, parsers, downloaders,
verifier, boot control, state store) with the application's restart and self-test callbacks and an
optional update-control policy. See docs/engine.md.
"""

from ota_core.engine._config import (
    EngineConfig,
    FaultHook,
    SelfTest,
    SelfTestContext,
    SinkFactory,
    UpdatePolicy,
)
from ota_core.engine._engine import UpdateEngine
from ota_core.engine._errors import (
    DownloadInterruptedError,
    EngineInternalError,
    NoDownloaderError,
    NoParserError,
    RolledBackError,
    SelfTestFailedError,
    SelfTestTimeoutError,
    UpdateLoopError,
    VersionRejectedError,
)
from ota_core.engine._events import EngineEvent, EngineEventKind, EngineState
from ota_core.engine._record import Outcome, ProgressRecord
from ota_core.engine._reports import ReportContext, ReportFormatter, ReportPoint, default_report_details

__all__ = [
    "DownloadInterruptedError",
    "EngineConfig",
    "EngineEvent",
    "EngineEventKind",
    "EngineInternalError",
    "EngineState",
    "FaultHook",
    "NoDownloaderError",
    "NoParserError",
    "Outcome",
    "ProgressRecord",
    "ReportContext",
    "ReportFormatter",
    "ReportPoint",
    "RolledBackError",
    "SelfTest",
    "SelfTestContext",
    "SelfTestFailedError",
    "SelfTestTimeoutError",
    "SinkFactory",
    "UpdateEngine",
    "UpdateLoopError",
    "UpdatePolicy",
    "VersionRejectedError",
    "default_report_details",
]

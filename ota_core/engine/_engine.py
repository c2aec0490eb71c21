"""The orchestration engine: drives one update at a time through every phase, safely across restarts.

One worker thread runs everything. The job source's callback only puts events on the engine's queue
(and raises an interrupt flag when the event may stop a running download). Before every state change
the engine persists its progress record, so a power cut anywhere resumes or rolls back:

    RECEIVED -> DOWNLOADING -> DOWNLOADED -> ACTIVATING -> RESTARTING -> (restart)
      -> SELF_TESTING -> CONFIRMING -> REPORTING(SUCCEEDED)
    any failure before activation -> REPORTING(REJECTED or FAILED)
    any failure after activation  -> REVERTING -> REPORTING(FAILED) -> (restart into the old image)

See docs/engine.md for the state diagram and the guarantees.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from ota_core.clock import Clock, SystemClock
from ota_core.engine._config import (
    EngineConfig,
    SelfTest,
    SelfTestContext,
    SinkFactory,
    UpdatePolicy,
)
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
from ota_core.engine._record import Outcome, ProgressRecord, RecordStore
from ota_core.engine._reports import ReportContext, ReportFormatter, ReportPoint, default_report_details
from ota_core.errors import ConfigurationError, DownloadError, JobDocumentError, OtaError
from ota_core.models import (
    FileLocation,
    FileTarget,
    JobEvent,
    JobEventKind,
    JobStatus,
    Phase,
    ProgressEvent,
    StatusReport,
    UpdatePlan,
)
from ota_core.protocols import (
    BlockSink,
    BootControl,
    Downloader,
    DownloadRequest,
    ImageState,
    JobParser,
    JobSource,
    StateStore,
    Verifier,
)
from ota_core.update_control import ControlEvent, Decision, Gate, UpdateKind
from ota_core.versions import Version

__all__ = ["UpdateEngine"]

_log = logging.getLogger(__name__)

_STOP = object()
_WAKE = object()
_MAX_STEPS_PER_ADVANCE = 64
_MIN_POLICY_WAIT = 0.05


@attrs.frozen
class _Wait:
    """Returned by a step that cannot go on now: wait this long (None: until an event) and try again."""

    seconds: float | None


class _GuardedSink:
    """Passes writes through to the real sink unless the engine wants the download stopped."""

    def __init__(self, sink: BlockSink, interrupt: threading.Event) -> None:
        self._sink = sink
        self._interrupt = interrupt

    def write_at(self, offset: int, data: bytes) -> None:
        if self._interrupt.is_set():
            raise DownloadInterruptedError("download interrupted by the engine")
        self._sink.write_at(offset, data)

    def flush(self) -> None:
        self._sink.flush()


class _ReadableGuardedSink(_GuardedSink):
    """A guarded sink over a sink that can read back (downloaders re-feed the verifier after a restart)."""

    def read(self, offset: int, length: int) -> bytes:
        data: bytes = self._sink.read(offset, length)  # type: ignore[attr-defined]
        return data


def _guard(sink: BlockSink, interrupt: threading.Event) -> _GuardedSink:
    """Wrap ``sink``, keeping its ability to read back when it has one."""
    if callable(getattr(sink, "read", None)):
        return _ReadableGuardedSink(sink, interrupt)
    return _GuardedSink(sink, interrupt)


class UpdateEngine:
    """Runs updates from a job source through parse, policy, download, verify, install, self-test, report.

    Every component is a protocol from ``ota_core.protocols``, so any of them can be swapped:

    - ``job_source``: Notify and Report (``JobSource``);
    - ``parsers``: one ``JobParser`` or a chain tried in order (the first plan that is not ``None`` wins);
    - ``downloaders``: tried in order; the first whose ``supports()`` accepts a file location is used;
    - ``verifier``: ``check_plan`` before anything is fetched, an incremental verifier per file, then final;
    - ``boot_control``: the inactive slot, activation for a trial boot, confirm or revert;
    - ``state_store``: where the progress record lives;
    - ``restart``: called when the device must restart (after activation, after a revert); on a real device
      it does not return; if it returns, the engine does nothing more until it is constructed again;
    - ``self_test``: the application's check of the new image (default: passes), bounded by a deadline;
    - ``update_control``: the policy asked before download and before activation (default: always go);
    - ``report_details``: builds the status details of each report (default: protocol-neutral);
    - ``sink_factory``: where file ``i`` of a plan is written (default: file 0 into the inactive slot).
    """

    def __init__(
        self,
        *,
        job_source: JobSource,
        parsers: JobParser | Sequence[JobParser],
        downloaders: Sequence[Downloader],
        verifier: Verifier,
        boot_control: BootControl,
        state_store: StateStore,
        restart: Callable[[], None],
        self_test: SelfTest | None = None,
        update_control: UpdatePolicy | None = None,
        clock: Clock | None = None,
        config: EngineConfig | None = None,
        report_details: ReportFormatter | None = None,
        sink_factory: SinkFactory | None = None,
    ) -> None:
        self._source = job_source
        self._parsers: tuple[JobParser, ...] = (parsers,) if isinstance(parsers, JobParser) else tuple(parsers)
        if not self._parsers:
            raise ConfigurationError("the engine needs at least one job parser")
        self._downloaders = tuple(downloaders)
        if not self._downloaders:
            raise ConfigurationError("the engine needs at least one downloader")
        self._verifier = verifier
        self._boot = boot_control
        self._records = RecordStore(state_store, (config or EngineConfig()).name)
        self._store = state_store
        self._restart = restart
        self._self_test = self_test
        self._policy = update_control
        self._clock = clock or SystemClock()
        self._config = config or EngineConfig()
        self._format = report_details or default_report_details
        self._sink_factory = sink_factory or self._default_sink

        self._queue: queue.Queue[object] = queue.Queue()
        self._interrupt = threading.Event()
        self._stopping = threading.Event()
        self._listeners: list[Callable[[EngineEvent], None]] = []
        self._idle = threading.Condition()
        self._blocked = False
        self._worker: threading.Thread | None = None

        # Worker-thread state (only the worker touches these after start()).
        self._record: ProgressRecord | None = None
        self._completed: dict[str, str] = {}
        self._plan: UpdatePlan | None = None
        self._checked = False
        self._sinks: dict[int, BlockSink] = {}
        self._awaiting_restart = False
        self._queued: JobEvent | None = None
        self._report_attempt = 0
        self._report_not_before: float | None = None
        self._next_progress_report = 0.0
        self._current_job: str | None = None
        self._waiting: str | None = None

    # --- public API --------------------------------------------------------------------------------

    def add_listener(self, callback: Callable[[EngineEvent], None]) -> None:
        """Receive every ``EngineEvent``; called on the worker thread, so keep it short."""
        self._listeners.append(callback)

    def start(self) -> None:
        """Start the job source and the worker; the worker first resumes any persisted update."""
        if self._worker is not None:
            raise ConfigurationError("the engine is already started")
        if self._policy is not None:
            self._policy.add_listener(self._on_control_event)
        self._source.start(self._on_event)
        self._worker = threading.Thread(target=self._run, name=f"ota-{self._config.name}", daemon=True)
        self._worker.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the worker (a running download is interrupted and resumes next time) and the job source."""
        self._stopping.set()
        self._interrupt.set()
        self._queue.put(_STOP)
        worker = self._worker
        if worker is not None:
            worker.join(timeout)
            if worker.is_alive():
                _log.warning("engine worker did not stop within %.1f s", timeout)
        self._source.stop()

    def poke(self) -> None:
        """Ask the worker to look at the policy again now (e.g. after a clock change)."""
        self._queue.put(_WAKE)

    @property
    def state(self) -> EngineState:
        """The persisted state of the update in flight, or ``IDLE``."""
        record = self._record
        return EngineState.IDLE if record is None else record.state

    @property
    def current_job_id(self) -> str | None:
        """The job of the update in flight, if any."""
        return self._current_job

    @property
    def running(self) -> bool:
        """True while the worker thread is alive."""
        worker = self._worker
        return worker is not None and worker.is_alive()

    @property
    def awaiting_restart(self) -> bool:
        """True once the engine asked for a restart and the restart callback returned."""
        return self._awaiting_restart

    def wait_until_idle(self, timeout: float) -> bool:
        """Wait until the worker has nothing to do until the next event or timer; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while not (self._blocked and self._queue.empty()):
                if time.monotonic() >= deadline or (self._worker is not None and not self._worker.is_alive()):
                    return False
                self._idle.wait(0.01)
            return True

    # --- callbacks from other threads (they only enqueue) --------------------------------------------

    def _on_event(self, event: JobEvent) -> None:
        self._queue.put(event)
        current = self._current_job
        if current is None or event.job_id is None:
            return
        cancels = event.kind is JobEventKind.CANCELLED and event.job_id == current
        replaces = self._config.supersede and (
            (event.kind is JobEventKind.NEW and event.job_id != current)
            or (event.kind is JobEventKind.CHANGED and event.job_id == current)
        )
        if cancels or replaces:
            self._interrupt.set()

    def _on_control_event(self, _event: ControlEvent) -> None:
        self._queue.put(_WAKE)

    # --- the worker --------------------------------------------------------------------------------

    def _run(self) -> None:
        self._guarded(self._resume)
        while not self._stopping.is_set():
            self._interrupt.clear()
            if self._drain():
                break
            wait = self._guarded_advance()
            if self._stopping.is_set():
                break
            if wait is not None and wait <= 0:
                continue
            with self._idle:
                self._blocked = True
                self._idle.notify_all()
            try:
                poll = self._config.poll_interval
                item = self._queue.get(timeout=poll if wait is None else min(wait, poll))
            except queue.Empty:
                item = None
            finally:
                with self._idle:
                    self._blocked = False
            if item is _STOP:
                break
            if item is not None:
                self._guarded(functools.partial(self._dispatch, item))

    def _drain(self) -> bool:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return False
            if item is _STOP:
                return True
            self._guarded(functools.partial(self._dispatch, item))

    def _guarded(self, action: Callable[[], None]) -> None:
        try:
            action()
        except Exception:  # noqa: BLE001 - the worker must survive a broken component or store
            _log.exception("engine worker: unexpected error")

    def _guarded_advance(self) -> float | None:
        try:
            return self._advance()
        except Exception:  # noqa: BLE001 - e.g. the state store failing while recording a failure
            _log.exception("engine worker: cannot advance the update; trying again later")
            return self._config.poll_interval

    def _dispatch(self, item: object) -> None:
        if isinstance(item, JobEvent):
            self._handle_job_event(item)

    def _advance(self) -> float | None:
        for _ in range(_MAX_STEPS_PER_ADVANCE):
            record = self._record
            if record is None or self._awaiting_restart or self._stopping.is_set():
                return None
            try:
                result = self._step(record)
            except DownloadInterruptedError:
                return 0.0 if not self._stopping.is_set() else None
            except OtaError as error:
                self._fail(error)
                if self._record is record:  # nothing could be recorded (e.g. the store fails): back off
                    return self._config.poll_interval
                continue
            except Exception as error:  # noqa: BLE001 - a component bug becomes a reported failure
                _log.exception("engine: component raised a non-OtaError")
                self._fail(EngineInternalError(f"{type(error).__name__}: {error}"))
                if self._record is record:
                    return self._config.poll_interval
                continue
            if result is not None:
                return result.seconds
        return 0.0

    def _step(self, record: ProgressRecord) -> _Wait | None:
        state = record.state
        if state is EngineState.RECEIVED:
            return self._step_received(record)
        if state is EngineState.DOWNLOADING:
            return self._step_downloading(record)
        if state is EngineState.DOWNLOADED:
            return self._step_downloaded(record)
        if state is EngineState.SELF_TESTING:
            return self._step_self_test(record)
        if state is EngineState.CONFIRMING:
            return self._step_confirming(record)
        if state is EngineState.REVERTING:
            return self._step_reverting(record)
        if state is EngineState.REPORTING:
            return self._step_reporting(record)
        # ACTIVATING and RESTARTING are settled by _resume; in this process they only wait for the restart.
        return _Wait(None)

    # --- resume after a restart ----------------------------------------------------------------------

    def _resume(self) -> None:
        self._completed = self._records.completed()
        record = self._records.load()
        if record is None:
            self._request_next()
            return
        planned = record.state is EngineState.RESTARTING
        if not planned:
            record = attrs.evolve(record, unexpected_restarts=record.unexpected_restarts + 1)
        if record.outcome is not None and record.outcome.restart_after:
            # The restart the outcome asked for has just happened (a power cut counts as one).
            record = attrs.evolve(record, outcome=attrs.evolve(record.outcome, restart_after=False))
        self._records.save(record)
        self._record = record
        self._current_job = record.job_id
        _log.info("engine: resuming job %s in state %s", record.job_id, record.state)
        self._emit(EngineEvent(EngineEventKind.STATE, record.job_id, state=record.state, message="resumed"))
        with contextlib.suppress(OtaError):
            # A parse failure is reported by the step in RECEIVED; later states run without the plan.
            self._ensure_plan()
        if record.unexpected_restarts > self._config.max_unexpected_restarts and record.state not in (
            EngineState.REPORTING,
            EngineState.REVERTING,
        ):
            self._fail(
                UpdateLoopError(
                    f"the update restarted unexpectedly {record.unexpected_restarts} times",
                    details={"state": record.state.value},
                )
            )
            return
        state = record.state
        if state is EngineState.ACTIVATING:
            if self._boot.state().in_trial:
                self._transition(EngineState.SELF_TESTING)
            else:
                self._transition(EngineState.DOWNLOADED)
        elif state is EngineState.RESTARTING:
            problem = self._check_new_image(record, self._boot.state())
            if problem is None:
                self._transition(EngineState.SELF_TESTING)
            else:
                self._fail(problem)
        elif state is EngineState.SELF_TESTING:
            if self._boot.state().in_trial:
                self._fail(SelfTestFailedError("the device restarted during the self-test"))
            else:
                self._fail(RolledBackError("the trial image was abandoned during the self-test"))

    def _check_new_image(self, record: ProgressRecord, image: ImageState) -> OtaError | None:
        """After the planned restart: is the new image running, and is its version acceptable?"""
        if not image.in_trial:
            return RolledBackError("the new image is not running after the restart")
        running = image.running_version
        plan = self._plan
        if running is None:
            return None
        if plan is not None and plan.version is not None and running != plan.version:
            return RolledBackError(
                f"running {running} after the restart, expected {plan.version}",
                details={"running": str(running), "expected": str(plan.version)},
            )
        previous = self._previous_version(record)
        if previous is None:
            return None
        if running < previous and not self._config.allow_downgrade:
            return VersionRejectedError(f"the new image {running} is older than {previous}")
        if running == previous and not self._config.allow_same_version:
            return VersionRejectedError(f"the new image has the same version {running}")
        return None

    @staticmethod
    def _previous_version(record: ProgressRecord) -> Version | None:
        if record.previous_version is None:
            return None
        try:
            return Version.parse(record.previous_version)
        except OtaError:
            return None

    # --- steps ---------------------------------------------------------------------------------------

    def _step_received(self, record: ProgressRecord) -> _Wait | None:
        plan = self._ensure_plan()
        if not self._checked:
            self._emit_phase(Phase.PARSE)
            self._check_version(plan)
            self._emit_phase(Phase.VERIFY, "checking the plan")
            self._verifier.check_plan(plan)
            self._checked = True
        if not record.started:
            record = attrs.evolve(record, started=True)
            self._records.save(record)
            self._record = record
            self._report_best_effort(ReportPoint.ACCEPTED, JobStatus.IN_PROGRESS)
        if self._waiting is None:
            self._emit_phase(Phase.POLICY)
        decision = self._decide(plan, Gate.DOWNLOAD)
        if not decision.allowed:
            return self._wait_for(decision)
        keys = tuple(self._progress_key(record.job_id, index) for index in range(len(plan.files)))
        self._next_progress_report = self._config.progress_report_step
        self._transition(EngineState.DOWNLOADING, file_index=0, progress_keys=keys)
        return None

    def _step_downloading(self, record: ProgressRecord) -> _Wait | None:
        plan = self._ensure_plan()
        if not self._checked:
            self._check_version(plan)
            self._verifier.check_plan(plan)
            self._checked = True
        self._emit_phase(Phase.DOWNLOAD)
        for index in range(record.file_index, len(plan.files)):
            self._download_file(plan, index)
            record = attrs.evolve(record, file_index=index + 1)
            self._records.save(record)
            self._record = record
        self._transition(EngineState.DOWNLOADED)
        return None

    def _step_downloaded(self, record: ProgressRecord) -> _Wait | None:
        plan = self._ensure_plan()
        decision = self._decide(plan, Gate.ACTIVATE)
        if not decision.allowed:
            return self._wait_for(decision)
        self._delete_progress(record)
        self._transition(EngineState.ACTIVATING)
        self._emit_phase(Phase.ACTIVATE)
        self._report_best_effort(ReportPoint.READY, JobStatus.IN_PROGRESS)
        digest, size = self._handoff_check(plan)
        self._boot.activate(permanent=False, expected_sha256=digest, image_size=size)
        self._transition(EngineState.RESTARTING)
        self._request_restart()
        return _Wait(None)

    def _step_self_test(self, record: ProgressRecord) -> _Wait | None:
        self._emit_phase(Phase.SELF_TEST)
        self._report_best_effort(ReportPoint.SELF_TEST, JobStatus.IN_PROGRESS)
        self._run_self_test(record)
        self._transition(EngineState.CONFIRMING)
        return None

    def _step_confirming(self, record: ProgressRecord) -> _Wait | None:
        self._emit_phase(Phase.CONFIRM)
        image = self._boot.state()
        if image.in_trial:
            self._boot.confirm()
        elif not self._plan_matches(image):
            raise RolledBackError("the trial image was abandoned before it was confirmed")
        details = self._details(ReportPoint.SUCCEEDED, record) or {}
        self._transition(EngineState.REPORTING, outcome=Outcome(JobStatus.SUCCEEDED, details), check=False)
        return None

    def _step_reverting(self, record: ProgressRecord) -> _Wait | None:
        self._emit_phase(Phase.REVERT)
        restart_after = False
        if self._boot.state().in_trial:
            self._boot.revert()
            restart_after = True
        outcome = record.outcome or Outcome(JobStatus.FAILED, self._details(ReportPoint.FAILED, record) or {})
        self._transition(EngineState.REPORTING, outcome=attrs.evolve(outcome, restart_after=restart_after), check=False)
        return None

    def _step_reporting(self, record: ProgressRecord) -> _Wait | None:
        outcome = record.outcome
        if outcome is None:  # pragma: no cover - REPORTING is always written with an outcome
            outcome = Outcome(JobStatus.FAILED, {"reason": "no outcome recorded"})
        now = self._clock.monotonic()
        if self._report_not_before is not None and now < self._report_not_before:
            return _Wait(self._report_not_before - now)
        self._emit_phase(Phase.REPORT)
        try:
            self._source.report(StatusReport(record.job_id, outcome.status, outcome.details))
        except Exception as raised:  # noqa: BLE001 - any failure to report means "send it again later"
            error = raised if isinstance(raised, OtaError) else EngineInternalError(repr(raised))
            if error.retryable or not isinstance(raised, OtaError):
                delays = self._config.report_retry_delays or (1.0,)
                delay = delays[min(self._report_attempt, len(delays) - 1)]
                self._report_attempt += 1
                self._report_not_before = now + delay
                _log.warning("engine: final report for %s not acknowledged (%s)", record.job_id, error)
                retry = EngineEvent(EngineEventKind.REPORT_RETRY, record.job_id, status=outcome.status, error=error)
                self._emit(retry)
                return _Wait(delay)
            _log.error("engine: final report for %s refused (%s); not sending it again", record.job_id, error)
        self._report_attempt = 0
        self._report_not_before = None
        self._records.finish(record.job_id, outcome.status)
        self._completed[record.job_id] = outcome.status.value
        if self._policy is not None:
            self._policy.complete(record.job_id)
        self._clear_current()
        self._emit(EngineEvent(EngineEventKind.FINISHED, record.job_id, status=outcome.status))
        if outcome.restart_after:
            self._request_restart()
            return _Wait(None)
        self._after_finish()
        return None

    # --- phases' helpers -----------------------------------------------------------------------------

    def _ensure_plan(self) -> UpdatePlan:
        record = self._record
        if record is None:  # pragma: no cover - steps run only with a record
            raise EngineInternalError("no update in flight")
        if self._plan is not None:
            return self._plan
        for parser in self._parsers:
            plan = parser.parse(record.event)
            if plan is not None:
                if plan.job_id != record.job_id:
                    _log.warning("engine: parser %s gave job id %r for %r", parser.name, plan.job_id, record.job_id)
                self._plan = plan
                return plan
        raise NoParserError(
            "no parser recognised the job document",
            details={"job_id": record.job_id, "parsers": [parser.name for parser in self._parsers]},
        )

    def _check_version(self, plan: UpdatePlan) -> None:
        running = self._boot.state().running_version
        if plan.version is None or running is None:
            return
        if plan.version < running and not self._config.allow_downgrade:
            raise VersionRejectedError(
                f"{plan.version} is older than the running {running}",
                details={"running": str(running), "offered": str(plan.version)},
            )
        if plan.version == running and not self._config.allow_same_version:
            raise VersionRejectedError(f"{plan.version} is already running", details={"running": str(running)})

    def _plan_matches(self, image: ImageState) -> bool:
        """Whether the running image is the plan's: by version, or for a plan without one (AWS ``afr_ota``)
        by the image that ran when the job arrived not running again (the bootloader went back)."""
        plan = self._plan
        if plan is None or plan.version is None or image.running_version is None:
            if image.in_trial or image.pending_version is not None:
                return False
            # Without a plan version, the version that ran when the job arrived tells a rollback apart.
            record = self._record
            previous = None if record is None else self._previous_version(record)
            return previous is None or image.running_version is None or image.running_version != previous
        return image.running_version == plan.version

    def _decide(self, plan: UpdatePlan, gate: Gate) -> Decision:
        if self._policy is None:
            return Decision(True, "no update control")
        raw_kind = plan.attributes.get("update_kind", UpdateKind.APPLICATION.value)
        try:
            kind = UpdateKind(str(raw_kind))
        except ValueError:
            kind = UpdateKind.APPLICATION
        decision = self._policy.decide(plan.job_id, kind, gate)
        message = None if decision.allowed else f"{gate}: {decision.reason}"
        if message is not None and message != self._waiting:
            self._emit(EngineEvent(EngineEventKind.WAITING, plan.job_id, message=message))
        self._waiting = message
        return decision

    def _wait_for(self, decision: Decision) -> _Wait:
        if decision.retry_at is None:
            return _Wait(self._config.poll_interval)
        seconds = (decision.retry_at - self._clock.now()).total_seconds()
        return _Wait(min(self._config.poll_interval, max(_MIN_POLICY_WAIT, seconds)))

    def _progress_key(self, job_id: str, index: int) -> str:
        digest = hashlib.sha256(job_id.encode()).hexdigest()[:16]
        return f"{self._config.name}-dl-{digest}-{index}"

    def _handoff_check(self, plan: UpdatePlan) -> tuple[bytes | None, int | None]:
        """The SHA-256 the slot must read back before activation, when the plan says what it is.

        Only for the default layout (file 0 in the inactive slot): a custom sink factory decides itself
        where bytes go, so the engine cannot know what the slot should hold.
        """
        if self._sink_factory != self._default_sink or not plan.files:
            return None, None
        target = plan.files[0]
        return target.integrity.digests.get("sha256"), target.size

    def _default_sink(self, plan: UpdatePlan, target: FileTarget, index: int) -> BlockSink:
        if index != 0:
            raise JobDocumentError(
                f"the plan has {len(plan.files)} files; the default installs one image (pass sink_factory)",
                details={"files": len(plan.files)},
            )
        return self._boot.open_inactive_slot(target.size)

    def _choose(self, target: FileTarget) -> tuple[FileLocation, Downloader]:
        for location in target.locations:
            for downloader in self._downloaders:
                if downloader.supports(location):
                    return location, downloader
        raise NoDownloaderError(
            f"no downloader supports any location of {target.name!r}",
            details={"kinds": [location.kind.value for location in target.locations]},
        )

    def _download_file(self, plan: UpdatePlan, index: int) -> None:
        target = plan.files[index]
        location, downloader = self._choose(target)
        sink = self._sinks.get(index)
        if sink is None:
            self._emit_phase(Phase.INSTALL, f"opening the destination of {target.name}")
            sink = self._sink_factory(plan, target, index)
            self._sinks[index] = sink
        attempts = max(1, self._config.download_attempts)
        offset = sum(item.size for item in plan.files[:index])
        for attempt in range(1, attempts + 1):
            verifier = self._verifier.begin(plan, target)
            request = DownloadRequest(
                job_id=plan.job_id,
                target=target,
                location=location,
                sink=_guard(sink, self._interrupt),
                progress_key=self._progress_key(plan.job_id, index),
                verifier=verifier,
                on_progress=functools.partial(self._on_progress, plan, index, offset),
            )
            try:
                downloader.download(request)
            except OtaError as error:
                if self._interrupt.is_set():
                    raise DownloadInterruptedError("download interrupted by the engine") from error
                if isinstance(error, DownloadError) and error.retryable and attempt < attempts:
                    _log.warning("engine: download of %s failed (%s); trying again", target.name, error)
                    continue
                raise
            self._emit_phase(Phase.VERIFY, f"final check of {target.name}")
            self._report_best_effort(
                ReportPoint.VERIFYING, JobStatus.IN_PROGRESS, offset + target.size, plan.total_size
            )
            sink.flush()
            verifier.finish()
            return

    def _on_progress(self, plan: UpdatePlan, index: int, offset: int, event: ProgressEvent) -> None:
        if self._interrupt.is_set():
            raise DownloadInterruptedError("download interrupted by the engine")
        total = plan.total_size
        done = offset + event.bytes_done
        progress = ProgressEvent(
            job_id=plan.job_id,
            phase=Phase.DOWNLOAD,
            bytes_done=done,
            bytes_total=total,
            rate_bytes_per_second=event.rate_bytes_per_second,
            eta_seconds=event.eta_seconds,
            message=plan.files[index].name,
        )
        self._emit(EngineEvent(EngineEventKind.PROGRESS, plan.job_id, phase=Phase.DOWNLOAD, progress=progress))
        step = self._config.progress_report_step
        if step > 0 and total > 0 and done / total >= self._next_progress_report and done < total:
            while self._next_progress_report <= done / total:
                self._next_progress_report += step
            self._report_best_effort(ReportPoint.PROGRESS, JobStatus.IN_PROGRESS, done, total)
        self._fault(f"progress:{index}:{event.bytes_done}")

    def _run_self_test(self, record: ProgressRecord) -> None:
        test = self._self_test
        if test is None:
            return
        context = SelfTestContext(
            plan=self._plan,
            job_id=record.job_id,
            deadline=self._clock.monotonic() + self._config.self_test_timeout,
            clock=self._clock,
        )
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["passed"] = bool(test(context))
            except Exception as error:  # noqa: BLE001 - any exception from the application fails the test
                outcome["error"] = error

        thread = threading.Thread(target=run, name="ota-self-test", daemon=True)
        thread.start()
        thread.join(self._config.self_test_timeout)
        if thread.is_alive():
            raise SelfTestTimeoutError(f"the self-test took longer than {self._config.self_test_timeout} s")
        if "error" in outcome:
            error = outcome["error"]
            if isinstance(error, SelfTestFailedError):
                raise error
            raise SelfTestFailedError(f"the self-test raised {type(error).__name__}: {error}") from error
        if not outcome.get("passed", False):
            raise SelfTestFailedError("the self-test reported a failure")

    # --- state changes -------------------------------------------------------------------------------

    def _transition(self, state: EngineState, *, check: bool = True, **changes: Any) -> None:
        record = self._record
        if record is None:  # pragma: no cover - transitions need a record
            raise EngineInternalError("no update in flight")
        record = attrs.evolve(record, state=state, transitions=record.transitions + 1, **changes)
        if check and record.transitions > self._config.max_transitions:
            raise UpdateLoopError(
                f"the update changed state {record.transitions} times", details={"state": state.value}
            )
        self._records.save(record)
        self._record = record
        self._emit(EngineEvent(EngineEventKind.STATE, record.job_id, state=state))
        self._fault(f"state:{state.value}")

    def _fail(self, error: OtaError) -> None:
        record = self._record
        if record is None:
            return
        if record.state is EngineState.REPORTING:  # pragma: no cover - reporting does not raise
            return
        _log.warning("engine: job %s failed in %s: %s", record.job_id, record.state, error)
        activated = record.state.activated
        point = ReportPoint.FAILED if record.started else ReportPoint.REJECTED
        details = self._details(point, record, error=error, rolled_back=activated) or {}
        if activated:
            self._transition(EngineState.REVERTING, outcome=Outcome(JobStatus.FAILED, details), check=False)
            return
        status = JobStatus.FAILED if record.started else JobStatus.REJECTED
        self._delete_progress(record)
        self._transition(
            EngineState.REPORTING,
            outcome=Outcome(status, details, restart_after=record.state is EngineState.REVERTING),
            check=False,
        )

    def _handle_job_event(self, event: JobEvent) -> None:
        job_id = event.job_id
        if event.kind is JobEventKind.NOTHING_PENDING or job_id is None:
            return
        record = self._record
        if event.kind is JobEventKind.CANCELLED:
            if self._queued is not None and self._queued.job_id == job_id:
                self._queued = None
            if record is None or record.job_id != job_id:
                return
            if record.state.cancellable and not self._awaiting_restart:
                self._drop(record, EngineEventKind.CANCELLED)
                self._after_finish()
            else:
                self._emit(EngineEvent(EngineEventKind.IGNORED, job_id, message="cancel after activation"))
            return
        if job_id in self._completed:
            self._emit(EngineEvent(EngineEventKind.IGNORED, job_id, message="job already finished"))
            return
        if record is None:
            self._begin(event)
            return
        replaceable = record.state.cancellable and not self._awaiting_restart and self._config.supersede
        if record.job_id == job_id:
            changed = dict(event.document) != dict(record.event.document)
            if event.kind is JobEventKind.CHANGED and changed and replaceable:
                self._drop(record, EngineEventKind.SUPERSEDED)
                self._begin(event)
            else:
                self._emit(EngineEvent(EngineEventKind.IGNORED, job_id, message="job already in progress"))
            return
        if replaceable:
            self._drop(record, EngineEventKind.SUPERSEDED)
            self._begin(event)
            return
        self._queued = event
        message = "queued until the update in flight ends"
        self._emit(EngineEvent(EngineEventKind.IGNORED, job_id, message=message))

    def _begin(self, event: JobEvent) -> None:
        job_id = event.job_id
        if job_id is None:  # pragma: no cover - checked by the caller
            return
        self._clear_current()
        try:
            running = self._boot.state().running_version
        except OtaError as error:
            _log.warning("engine: cannot read the running version: %s", error)
            running = None
        record = ProgressRecord(
            job_id=job_id,
            state=EngineState.RECEIVED,
            event=event,
            transitions=1,
            previous_version=None if running is None else str(running),
        )
        try:
            self._records.save(record)
        except OtaError as error:
            # A document the store cannot keep (not JSON, too large) cannot be updated from safely.
            _log.error("engine: cannot record job %s (%s); rejecting it", job_id, error)
            self._completed[job_id] = JobStatus.REJECTED.value
            with contextlib.suppress(OtaError):
                self._source.report(StatusReport(job_id, JobStatus.REJECTED, error.as_report()))
            self._emit(EngineEvent(EngineEventKind.FINISHED, job_id, status=JobStatus.REJECTED, error=error))
            return
        self._record = record
        self._current_job = job_id
        self._emit_phase(Phase.NOTIFY, "job received")
        self._emit(EngineEvent(EngineEventKind.STATE, job_id, state=EngineState.RECEIVED))
        self._fault(f"state:{EngineState.RECEIVED.value}")

    def _drop(self, record: ProgressRecord, kind: EngineEventKind) -> None:
        self._delete_progress(record)
        self._records.clear()
        if self._policy is not None:
            self._policy.complete(record.job_id)
        self._clear_current()
        self._emit(EngineEvent(kind, record.job_id, message=f"{kind} in {record.state}"))

    def _clear_current(self) -> None:
        self._waiting = None
        self._record = None
        self._current_job = None
        self._plan = None
        self._checked = False
        self._sinks = {}
        self._report_attempt = 0
        self._report_not_before = None

    def _delete_progress(self, record: ProgressRecord) -> None:
        for key in record.progress_keys:
            try:
                self._store.delete(key)
            except OtaError as error:
                _log.warning("engine: cannot delete download progress %s: %s", key, error)

    def _after_finish(self) -> None:
        queued, self._queued = self._queued, None
        if queued is not None:
            self._handle_job_event(queued)
        else:
            self._request_next()

    def _request_next(self) -> None:
        try:
            self._source.request_next()
        except OtaError as error:
            _log.warning("engine: cannot ask for the next job: %s", error)

    def _request_restart(self) -> None:
        self._awaiting_restart = True
        self._emit_phase(Phase.RESTART)
        self._emit(EngineEvent(EngineEventKind.RESTART_REQUESTED, self._current_job))
        try:
            self._restart()
        except Exception:  # noqa: BLE001 - the state is saved; the next power-on resumes from it
            _log.exception("engine: the restart callback failed; waiting for the device to restart")

    # --- reports and telemetry -----------------------------------------------------------------------

    def _details(
        self,
        point: ReportPoint,
        record: ProgressRecord,
        *,
        error: OtaError | None = None,
        rolled_back: bool = False,
        done: int = 0,
        total: int = 0,
    ) -> dict[str, str] | None:
        try:
            running = self._boot.state().running_version
        except OtaError:
            running = None
        context = ReportContext(
            point=point,
            job_id=record.job_id,
            plan=self._plan,
            error=error,
            bytes_done=done,
            bytes_total=total,
            running_version=running,
            rolled_back=rolled_back,
            previous_version=self._previous_version(record),
        )
        details = self._format(context)
        if details is None:
            return None
        return {str(key): str(value) for key, value in details.items()}

    def _report_best_effort(self, point: ReportPoint, status: JobStatus, done: int = 0, total: int = 0) -> None:
        record = self._record
        if record is None:  # pragma: no cover - reports need a record
            return
        details = self._details(point, record, done=done, total=total)
        if details is None:
            return
        try:
            self._source.report(StatusReport(record.job_id, status, details))
        except OtaError as error:
            _log.warning("engine: %s report for %s not sent: %s", point, record.job_id, error)

    def _emit_phase(self, phase: Phase, message: str = "") -> None:
        self._emit(EngineEvent(EngineEventKind.PHASE, self._current_job, phase=phase, message=message))

    def _emit(self, event: EngineEvent) -> None:
        for callback in list(self._listeners):
            try:
                callback(event)
            except Exception:  # noqa: BLE001 - a listener's bug must not stop an update
                _log.exception("engine listener failed")

    def _fault(self, point: str) -> None:
        hook = self._config.fault_hook
        if hook is not None:
            hook(point)

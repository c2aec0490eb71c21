"""One start of the simulated device: bootloader, then the flow's orchestrator, until it asks to restart.

On start the MCUboot-style bootloader model of ``ota_boot`` runs over the file-backed ``SimFlash`` (it
finishes or reverts a swap), validating images with ``ota_verify``'s ``McubootVerifier``; then the flow's
orchestrator runs with a ``McuBootControl`` over the same flash. Every engine event, status report and
boot is printed on stdout as one JSON object per line. When the engine asks for a restart, the process
exits with ``EXIT_RESTART`` and its supervisor starts it again: that is the reboot.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

import attrs

from ota_boot import BootLayout, Bootloader, McuBootControl, SimFlash
from ota_core.engine import EngineConfig, EngineEvent, EngineEventKind, SelfTestContext
from ota_core.errors import OtaError
from ota_core.models import JobEvent, StatusReport
from ota_core.protocols import JobSource
from ota_core.state_store import FileStateStore
from ota_orchestrators.simulated_device._config import DeviceConfig
from ota_orchestrators.simulated_device._flows import get_flow
from ota_verify import KeyRing, McubootVerifier, PlanVerifier, load_public_key

__all__ = [
    "EXIT_BOOT_FAILED",
    "EXIT_CONFIG",
    "EXIT_RESTART",
    "EXIT_STOPPED",
    "DeviceContext",
    "Emitter",
    "FaultPlan",
    "ReportingJobSource",
    "run_device",
]

EXIT_STOPPED = 0
"""The device was stopped (SIGTERM / SIGINT)."""
EXIT_BOOT_FAILED = 1
"""No bootable image, or the flow failed to start."""
EXIT_CONFIG = 2
"""The configuration file is broken."""
EXIT_RESTART = 75
"""The engine asked for a restart: start the process again."""


_SLOT_DONE = frozenset({EngineEventKind.CANCELLED, EngineEventKind.SUPERSEDED, EngineEventKind.FINISHED})


class Emitter:
    """Writes one JSON object per line (thread-safe) on the device's stdout."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stdout
        self._lock = threading.Lock()

    def __call__(self, event: str, **fields: Any) -> None:
        """Emit ``{"event": event, ...fields}``."""
        line = json.dumps({"event": event, "t": round(time.time(), 3), **fields}, default=str, sort_keys=True)
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()


@attrs.frozen
class FaultPlan:
    """Faults for tests and the demo: SIGKILL the process at an engine point, or pause there.

    ``kill_at``: a fault point (``state:downloading``) or ``progress>=N`` (bytes of file 0).
    ``pause_at``: same syntax; the device prints ``paused`` and waits to be killed by its supervisor.
    """

    kill_at: str | None = None
    pause_at: str | None = None
    once_file: Path | None = None
    """With ``once_file``, the kill (or pause) happens only if the file does not exist; it is created first,
    so a fault given to every start of the device fires once over all of them."""

    def fire(self, spec: str | None, point: str) -> bool:
        """Should the fault ``spec`` fire at ``point`` now?"""
        if not self.matches(spec, point):
            return False
        if self.once_file is None:
            return True
        if self.once_file.exists():
            return False
        self.once_file.write_text(point, encoding="utf-8")
        return True

    @staticmethod
    def matches(spec: str | None, point: str) -> bool:
        """Does the engine's fault ``point`` match ``spec``?"""
        if spec is None:
            return False
        if spec.startswith("progress>="):
            if not point.startswith("progress:0:"):
                return False
            return int(point.rsplit(":", 1)[1]) >= int(spec.split(">=", 1)[1])
        return spec == point


class ReportingJobSource:
    """Wraps a job source to print every job event it delivers and every report the cloud accepted."""

    def __init__(self, inner: JobSource, emit: Emitter) -> None:
        self._inner = inner
        self._emit = emit

    def start(self, on_event: Callable[[JobEvent], None]) -> None:
        """Start the inner source; its events are printed, then handed on."""

        def forward(event: JobEvent) -> None:
            self._emit("job", kind=event.kind.value, job_id=event.job_id)
            on_event(event)

        self._inner.start(forward)

    def request_next(self) -> None:
        """Ask the inner source for the next job."""
        self._inner.request_next()

    def report(self, report: StatusReport) -> None:
        """Send the report; print it once the cloud accepted it."""
        self._inner.report(report)
        self._emit("report", job_id=report.job_id, status=report.status.value, details=dict(report.details))

    def stop(self) -> None:
        """Stop the inner source."""
        self._inner.stop()


@attrs.define
class DeviceContext:
    """What a flow gets to build its orchestrator: the device's parts and the hooks into the process."""

    config: DeviceConfig
    emit: Emitter
    boot_control: McuBootControl
    verifier: PlanVerifier
    engine_config: EngineConfig
    restart: Callable[[], None]
    self_test: Callable[[SelfTestContext], bool]
    listener: Callable[[EngineEvent], None]
    wrap_job_source: Callable[[JobSource], JobSource]

    @property
    def flow_settings(self) -> Mapping[str, Any]:
        """The flow's own section of the configuration."""
        return self.config.flow_settings


def layout_for(config: DeviceConfig) -> BootLayout:
    """The boot layout of the simulated flash."""
    geometry = config.flash
    return BootLayout.simple(
        sector_size=geometry.sector_size,
        image_sectors=geometry.image_sectors,
        write_alignment=geometry.write_alignment,
    )


def _open_flash(config: DeviceConfig, layout: BootLayout, emit: Emitter) -> SimFlash:
    if config.flash_path.exists():
        return SimFlash.open(config.flash_path)
    if config.factory_image is None:
        raise OtaError(f"no flash at {config.flash_path} and no factory image configured")
    config.device_dir.mkdir(parents=True, exist_ok=True)
    flash = SimFlash.create(config.flash_path, layout.flash)
    image = config.factory_image.read_bytes()
    alignment = layout.flash.write_alignment
    flash.write(layout.primary_offset, image + b"\xff" * (-len(image) % alignment))
    emit("factory", size=len(image))
    return flash


def _event_fields(event: EngineEvent) -> dict[str, Any]:
    fields: dict[str, Any] = {"kind": event.kind.value, "job_id": event.job_id}
    if event.state is not None:
        fields["state"] = event.state.value
    if event.phase is not None:
        fields["phase"] = event.phase.value
    if event.progress is not None:
        fields["done"] = event.progress.bytes_done
        fields["total"] = event.progress.bytes_total
    if event.status is not None:
        fields["status"] = event.status.value
    if event.error is not None:
        fields["code"] = event.error.code
    if event.message:
        fields["message"] = event.message
    return fields


def _self_test(mode: str, emit: Emitter) -> Callable[[SelfTestContext], bool]:
    def run(context: SelfTestContext) -> bool:
        emit("self-test", mode=mode, job_id=context.job_id)
        if mode == "hang":
            time.sleep(context.remaining() + 1.0)
        return mode == "pass"

    return run


def run_device(config: DeviceConfig, faults: FaultPlan | None = None, emit: Emitter | None = None) -> int:
    """Boot the simulated device and run its flow until a restart is asked for or it is stopped."""
    emit = emit or Emitter()
    faults = faults or FaultPlan()
    layout = layout_for(config)
    public_key = load_public_key(config.public_key.read_bytes(), source=str(config.public_key))
    images = McubootVerifier(KeyRing([public_key]))
    flash = _open_flash(config, layout, emit)
    try:
        result = Bootloader(flash, layout, images).boot()
    except OtaError as error:
        emit("boot-failed", code=error.code, message=str(error))
        return EXIT_BOOT_FAILED
    emit("boot", version=str(result.image.version), swap=result.swap.name, resumed=result.resumed, pid=os.getpid())

    restart_requested = threading.Event()
    stop_requested = threading.Event()

    def restart() -> None:
        emit("restart")
        restart_requested.set()

    def fault(point: str) -> None:
        if faults.fire(faults.kill_at, point):
            emit("killed", point=point)
            os.kill(os.getpid(), signal.SIGKILL)
        if faults.fire(faults.pause_at, point):
            emit("paused", point=point)
            time.sleep(60.0)

    boot_control = McuBootControl(flash, layout, images, state_store=FileStateStore(config.state_dir))

    def listener(event: EngineEvent) -> None:
        if event.kind in _SLOT_DONE:
            boot_control.discard_partial()  # a later download of another image starts on an erased slot
        if event.kind is EngineEventKind.RESTART_REQUESTED:
            return
        emit("engine", **_event_fields(event))

    engine_config = EngineConfig(
        self_test_timeout=config.self_test_timeout,
        report_retry_delays=(0.5, 1.0, 2.0),
        poll_interval=1.0,
        fault_hook=fault,
    )
    context = DeviceContext(
        config=config,
        emit=emit,
        boot_control=boot_control,
        verifier=PlanVerifier(key_ring=KeyRing([public_key]), mcuboot=images),
        engine_config=engine_config,
        restart=restart,
        self_test=_self_test(config.self_test, emit),
        listener=listener,
        wrap_job_source=lambda source: ReportingJobSource(source, emit),
    )
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_args: stop_requested.set())
    try:
        flow = get_flow(config.flow)(context)
    except OtaError as error:
        emit("error", code=error.code, message=str(error))
        return EXIT_BOOT_FAILED
    emit("ready", flow=config.flow)
    while not (restart_requested.is_set() or stop_requested.is_set()):
        restart_requested.wait(0.1)
    flow.stop()
    if restart_requested.is_set():
        return EXIT_RESTART
    emit("stopped")
    return EXIT_STOPPED

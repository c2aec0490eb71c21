"""What every ``ota demo`` shares: broker, keys and firmware, the device supervisor, the live view, the verdict.

A scenario (``_aws.py``, ``_azure.py``, ``_adu.py``) supplies only what is specific to its cloud: starting the
cloud stand-in, the flow settings of the device, publishing firmware 1.0.1 (creating the job or the
deployment), the expected end state and the query of the cloud's final state. ``run_demo`` does the rest:
starts a private mosquitto (unless ``--broker``), makes a signing key and the two MCUboot images, starts
the simulated device as a child process and restarts it whenever it asks (or after the power cut of
``--power-cut``), shows the update live, and exits 0 only when the expected end state was reached.
"""

from __future__ import annotations

import importlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Protocol, TextIO

import attrs
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ota_cloud.broker import MosquittoBroker, MosquittoNotInstalledError
from ota_core.errors import ConfigurationError, OtaError
from ota_orchestrators.simulated_device import EXIT_RESTART, DeviceConfig, FlashGeometry
from ota_verify import McubootVersion, SignOptions, sign_image

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
    "register_scenario",
    "run_demo",
]

DEFAULT_IMAGE_SIZE = 1024 * 1024
"""Payload bytes of the demo firmware (the signed image adds a header and TLVs)."""

OLD_VERSION = "1.0.0"
NEW_VERSION = "1.0.1"

SCENARIO_MODULES: dict[str, str] = {
    "aws": "ota_orchestrators.demo._aws",
    "azure": "ota_orchestrators.demo._azure",
    "adu": "ota_orchestrators.demo._adu",
}
"""Where each demo's scenario lives; the module calls ``register_scenario`` when imported."""

MOSQUITTO_HINT = (
    "mosquitto is not installed: install it with 'sudo apt-get install mosquitto' (Debian/Ubuntu), "
    "'brew install mosquitto' (macOS), or pass --broker URL"
)


class DemoError(ConfigurationError):
    """The demo could not run or did not reach its expected end state."""

    code = "DEMO_FAILED"


@attrs.frozen
class DemoOptions:
    """The command line of ``ota demo FLOW``."""

    flow: str
    protocol: str = "mqtt"
    fail_self_test: bool = False
    power_cut: bool = False
    broker: str | None = None
    debug: bool = False
    image_size: int = DEFAULT_IMAGE_SIZE
    work_dir: Path | None = None
    timeout: float = 55.0


@attrs.frozen
class Firmware:
    """A signed MCUboot image and what a scenario needs to publish it."""

    version: str
    image: bytes
    path: Path
    sha256: str
    signature_b64: str
    """Detached ECDSA P-256 / SHA-256 signature of the whole image (for documents that carry one)."""


@attrs.frozen
class Expected:
    """The end state the demo must reach: the cloud's status and the version the device runs."""

    cloud_status: str
    running_version: str


@attrs.define
class DemoContext:
    """Shared facts of one demo run, handed to the scenario."""

    options: DemoOptions
    work_dir: Path
    broker_url: str
    device_id: str
    public_key_file: Path
    new_firmware: Firmware
    print_line: Callable[[str], None]


class Scenario(Protocol):
    """The cloud side of one demo."""

    title: str

    def start_cloud(self, context: DemoContext) -> None:
        """Start the cloud stand-in(s) and register the device."""

    def device_settings(self, context: DemoContext) -> dict[str, Any]:
        """The ``flow_settings`` of the simulated device (broker, identity ...)."""

    def publish(self, context: DemoContext) -> str:
        """Publish ``context.new_firmware`` (create the job/deployment); returns a one-line description."""

    def expected(self, context: DemoContext) -> Expected:
        """The end state this run must reach."""

    def cloud_state(self, context: DemoContext) -> tuple[str, dict[str, Any]]:
        """The cloud's current status of the update and its details."""

    def close(self) -> None:
        """Stop everything ``start_cloud`` started."""


_SCENARIOS: dict[str, Callable[[], Scenario]] = {}


def register_scenario(name: str, factory: Callable[[], Scenario]) -> None:
    """Make ``ota demo NAME`` available."""
    _SCENARIOS[name] = factory


def _scenario(name: str) -> Scenario:
    module = SCENARIO_MODULES.get(name)
    if module is None:
        raise DemoError(f"unknown demo {name!r} (known: {', '.join(sorted(SCENARIO_MODULES))})")
    try:
        importlib.import_module(module)
    except ModuleNotFoundError:
        raise DemoError(f"the {name} demo is not available in this version") from None
    return _SCENARIOS[name]()


# --- terminal view -----------------------------------------------------------------------------------


class TerminalView:
    """The live view: one line per step, a progress bar for the download (redrawn in place on a terminal)."""

    def __init__(self, stream: TextIO | None = None, *, width: int = 30) -> None:
        self._stream = stream or sys.stdout
        self._tty = self._stream.isatty()
        self._width = width
        self._bar_open = False
        self._last_quarter = -1
        self._start = time.monotonic()

    def line(self, text: str) -> None:
        """Print one step."""
        self._close_bar()
        self._stream.write(f"[{time.monotonic() - self._start:5.1f}s] {text}\n")
        self._stream.flush()

    def progress(self, done: int, total: int, rate: float | None = None) -> None:
        """Show download progress."""
        if total <= 0:
            return
        fraction = min(1.0, done / total)
        filled = int(fraction * self._width)
        bar = "#" * filled + "-" * (self._width - filled)
        speed = f"  {rate / 1048576:6.1f} MiB/s" if rate else ""
        text = f"        download [{bar}] {fraction:6.1%} {done:>10,}/{total:,} B{speed}"
        if self._tty:
            self._stream.write("\r" + text)
            self._bar_open = True
        else:
            quarter = int(fraction * 4)
            if quarter == self._last_quarter:
                return
            self._last_quarter = quarter
            self._stream.write(text + "\n")
        self._stream.flush()

    def reset_progress(self) -> None:
        """A new download (or a resumed one) starts."""
        self._last_quarter = -1

    def _close_bar(self) -> None:
        if self._bar_open:
            self._stream.write("\n")
            self._bar_open = False


# --- firmware and keys -------------------------------------------------------------------------------


def _payload(version: str, size: int) -> bytes:
    seed = f"modular-ota demo firmware {version} ".encode()
    block = (seed * (4096 // len(seed) + 1))[:4096]
    counter = bytearray()
    for index in range(-(-size // 4096)):
        counter += block[:-8] + index.to_bytes(8, "little")
    return bytes(counter[:size])


def build_firmware(directory: Path, key: ec.EllipticCurvePrivateKey, version: str, size: int) -> Firmware:
    """A signed MCUboot image of ``size`` payload bytes, version ``version``, written to ``directory``."""
    import base64  # noqa: PLC0415
    import hashlib  # noqa: PLC0415

    image = sign_image(
        _payload(version, size), key, SignOptions(version=McubootVersion.parse(version), pad_header=True, align=4)
    )
    path = directory / f"firmware-{version}.bin"
    path.write_bytes(image)
    signature = key.sign(image, ec.ECDSA(hashes.SHA256()))
    return Firmware(version, image, path, hashlib.sha256(image).hexdigest(), base64.b64encode(signature).decode())


def _flash_geometry(image_size: int) -> FlashGeometry:
    sector = 4096
    sectors = -(-(image_size + 8192) // sector) + 2
    return FlashGeometry(sector_size=sector, image_sectors=sectors, write_alignment=4)


# --- the device supervisor ---------------------------------------------------------------------------


class DeviceSupervisor:
    """Runs the simulated device as a child process, restarts it when it asks, and cuts its power."""

    def __init__(self, config_file: Path, log_file: Path, *, debug: bool = False) -> None:
        self._config_file = config_file
        self._log_file = log_file
        self._debug = debug
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self.starts = 0

    def start(self, *extra: str) -> None:
        """Power the device on (a new process)."""
        command = [sys.executable, "-m", "ota_orchestrators.simulated_device", str(self._config_file), *extra]
        if self._debug:
            command += ["--log-level", "DEBUG"]
        with self._log_file.open("a", encoding="utf-8") as log:
            log.write(f"--- start {self.starts + 1}: {' '.join(command)}\n")
        stderr = self._log_file.open("a", encoding="utf-8")
        try:
            self._process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True, bufsize=1)
        finally:
            stderr.close()
        self.starts += 1
        process = self._process
        self._reader = threading.Thread(target=self._read, args=(process,), name="device-reader", daemon=True)
        self._reader.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        with process.stdout:
            for raw in process.stdout:
                text = raw.strip()
                if not text:
                    continue
                try:
                    event = json.loads(text)
                except json.JSONDecodeError:
                    event = {"event": "output", "text": text}
                if isinstance(event, dict):
                    self.events.put(event)
        code = process.wait()
        self.events.put({"event": "exit", "code": code})

    def power_cut(self) -> None:
        """SIGKILL the device process (no chance to save anything)."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the device (SIGTERM, then SIGKILL after ``timeout``)."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5.0)
        if self._reader is not None:
            self._reader.join(5.0)
        self._process = None


# --- the run -----------------------------------------------------------------------------------------


@attrs.define
class DemoResult:
    """What happened, for the summary and for tests."""

    cloud_status: str = ""
    cloud_details: dict[str, Any] = attrs.Factory(dict)
    running_version: str = ""
    bytes_total: int = 0
    download_seconds: float = 0.0
    update_seconds: float = 0.0
    wall_seconds: float = 0.0
    restarts: int = 0
    power_cuts: int = 0
    resumed_from: int = 0
    reports: list[dict[str, Any]] = attrs.Factory(list)


@contextmanager
def _broker(options: DemoOptions, work_dir: Path, view: TerminalView) -> Iterator[str]:
    if options.broker:
        view.line(f"broker: using {options.broker}")
        yield options.broker
        return
    if shutil.which("mosquitto") is None:
        raise DemoError(MOSQUITTO_HINT)
    try:
        broker = MosquittoBroker(work_dir / "broker")
        broker.start()
    except MosquittoNotInstalledError:
        raise DemoError(MOSQUITTO_HINT) from None
    try:
        view.line(f"broker: private mosquitto on {broker.url}")
        yield broker.url
    finally:
        broker.stop()


class _Run:
    """One demo run: the event loop over the device's output."""

    def __init__(self, options: DemoOptions, scenario: Scenario, context: DemoContext, view: TerminalView) -> None:
        self.options = options
        self.scenario = scenario
        self.context = context
        self.view = view
        self.result = DemoResult()
        self.deadline = time.monotonic() + options.timeout
        self._download_started: float | None = None
        self._download_done: float | None = None
        self._update_started: float | None = None
        self._finished_status: str | None = None
        self._last_done = 0
        self._cut_done = False
        self._after_cut = False

    def _next_event(self, supervisor: DeviceSupervisor, wait: float = 1.0) -> dict[str, Any]:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise DemoError(f"the update did not finish within {self.options.timeout:.0f} s")
        try:
            return supervisor.events.get(timeout=max(0.0, min(remaining, wait)))
        except queue.Empty:
            return {"event": "tick"}

    def wait_ready(self, supervisor: DeviceSupervisor) -> None:
        """Wait until the device runs its flow."""
        while True:
            event = self._next_event(supervisor)
            if self._show(event, supervisor) == "ready":
                return

    def _show(self, event: dict[str, Any], supervisor: DeviceSupervisor) -> str:
        kind = event.get("event")
        view = self.view
        if kind == "boot":
            self.result.running_version = str(event.get("version"))
            swap = event.get("swap", "NONE")
            how = {
                "NONE": "",
                "TEST": " (swapped in the new image for a trial boot)",
                "REVERT": " (bootloader reverted the unconfirmed image)",
                "PERM": " (permanent swap)",
            }.get(swap, "")
            view.line(f"device: booted firmware {event.get('version')}{how}")
        elif kind == "factory":
            view.line(f"device: factory image {OLD_VERSION} written to the simulated flash")
        elif kind == "ready":
            view.line("device: connected, asking for jobs")
            return "ready"
        elif kind == "engine":
            return self._show_engine(event, supervisor)
        elif kind == "report":
            self.result.reports.append(event)
            details = ", ".join(f"{k}={v}" for k, v in sorted(event.get("details", {}).items()))
            view.line(f"report -> cloud: {event.get('status')} {details}".rstrip())
        elif kind == "self-test":
            view.line(f"device: self-test of the new image ({event.get('mode')})")
        elif kind == "restart":
            view.line("device: restarting")
        elif kind == "paused":
            view.line("POWER CUT: killing the device mid-download (SIGKILL)")
            supervisor.power_cut()
            self.result.power_cuts += 1
            self._cut_done = True
        elif kind in ("error", "boot-failed"):
            raise DemoError(f"device: {event.get('message')}")
        elif kind == "exit":
            return self._on_exit(event, supervisor)
        return str(kind)

    def _show_engine(self, event: dict[str, Any], supervisor: DeviceSupervisor) -> str:
        kind = event.get("kind")
        view = self.view
        if kind == "phase":
            view.line(f"phase: {event.get('phase')}")
            if event.get("phase") == "download":
                view.reset_progress()
                if self._download_started is None:
                    self._download_started = time.monotonic()
        elif kind == "progress":
            done, total = int(event.get("done", 0)), int(event.get("total", 0))
            now = time.monotonic()
            if self._download_started is None:
                self._download_started = now
                self.result.resumed_from = done if self.result.power_cuts else 0
            if self._after_cut:
                self._after_cut = False
                self.result.resumed_from = done
            self._last_done = done
            self.result.bytes_total = total
            elapsed = now - self._download_started
            view.progress(done, total, done / elapsed if elapsed > 0.05 else None)
            if done >= total:
                self._download_done = now
        elif kind == "state":
            view.line(f"state: {event.get('state')} (persisted)")
        elif kind == "waiting":
            view.line(f"waiting: {event.get('message')}")
        elif kind == "finished":
            self._finished_status = str(event.get("status"))
            view.line(f"device: update finished, cloud acknowledged {self._finished_status}")
            return "finished"
        elif kind in ("cancelled", "superseded", "ignored", "report-retry"):
            view.line(f"engine: {kind} {event.get('message', '')}".rstrip())
        return f"engine-{kind}"

    def _on_exit(self, event: dict[str, Any], supervisor: DeviceSupervisor) -> str:
        code = event.get("code")
        if code == EXIT_RESTART:
            self.result.restarts += 1
            supervisor.start()
            return "restarted"
        if code == -signal.SIGKILL and self._cut_done:
            self.view.line("device: power restored, booting again")
            self._cut_done = False
            self._after_cut = True
            self._last_done = 0
            supervisor.start()
            return "restarted"
        raise DemoError(f"the device process ended unexpectedly (exit status {code}); see {supervisor_log(self)}")

    def run(self, supervisor: DeviceSupervisor) -> DemoResult:
        """Publish, follow the update to its end, check the end state."""
        self._update_started = time.monotonic()
        self.view.line(f"cloud: {self.scenario.publish(self.context)}")
        while self._finished_status is None:
            self._show(self._next_event(supervisor), supervisor)
        finished = time.monotonic()
        # After a failure the device restarts into the old image: follow it until it runs its flow again.
        settle = time.monotonic() + 0.5
        while time.monotonic() < settle:
            event = self._next_event(supervisor, wait=settle - time.monotonic())
            outcome = self._show(event, supervisor)
            if outcome == "restarted":
                self.wait_ready(supervisor)
                break
        self.result.update_seconds = finished - self._update_started
        if self._download_started is not None:
            self.result.download_seconds = (self._download_done or finished) - self._download_started
        self.result.cloud_status, self.result.cloud_details = self._settled_cloud_state()
        return self.result

    def _settled_cloud_state(self) -> tuple[str, dict[str, Any]]:
        expected = self.scenario.expected(self.context)
        status, details = self.scenario.cloud_state(self.context)
        limit = time.monotonic() + 5.0
        while status != expected.cloud_status and time.monotonic() < limit:
            time.sleep(0.1)
            status, details = self.scenario.cloud_state(self.context)
        return status, details


def supervisor_log(run: _Run) -> Path:
    """Where the device's log goes."""
    return run.context.work_dir / "device.log"


def _summary(view: TerminalView, result: DemoResult) -> None:
    mib = result.bytes_total / 1048576
    rate = mib / result.download_seconds if result.download_seconds > 0 else 0.0
    view.line(
        f"summary: {result.bytes_total:,} bytes, download {result.download_seconds:.2f} s ({rate:.1f} MiB/s), "
        f"update {result.update_seconds:.1f} s, {result.restarts} restart(s), {result.power_cuts} power cut(s)"
    )


def run_demo(options: DemoOptions, *, stream: TextIO | None = None) -> tuple[int, DemoResult]:
    """Run one demo; returns the exit status (0 only when the expected end state was reached) and the result."""
    out = stream or sys.stdout
    view = TerminalView(out)
    started = time.monotonic()
    scenario = _scenario(options.flow)
    with ExitStack() as stack:
        if options.work_dir is not None:
            work_dir = options.work_dir
            work_dir.mkdir(parents=True, exist_ok=True)
        else:
            work_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"ota-demo-{options.flow}-")))
        view.line(f"demo {options.flow}: {scenario.title}")
        broker_url = stack.enter_context(_broker(options, work_dir, view))
        key = ec.generate_private_key(ec.SECP256R1())
        public_key_file = work_dir / "signing-key.pub.pem"
        public_key_file.write_bytes(
            key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        factory = build_firmware(work_dir, key, OLD_VERSION, options.image_size)
        new = build_firmware(work_dir, key, NEW_VERSION, options.image_size)
        view.line(
            f"build: signed MCUboot images {OLD_VERSION} (factory) and {NEW_VERSION} "
            f"({len(new.image):,} bytes, ECDSA P-256)"
        )
        device_id = f"demo-device-{os.getpid()}"
        context = DemoContext(options, work_dir, broker_url, device_id, public_key_file, new, view.line)
        stack.callback(scenario.close)
        scenario.start_cloud(context)
        config = DeviceConfig(
            flow=options.flow,
            device_dir=work_dir / "device",
            public_key=public_key_file,
            factory_image=factory.path,
            flash=_flash_geometry(options.image_size),
            self_test="fail" if options.fail_self_test else "pass",
            flow_settings=scenario.device_settings(context),
        )
        config_file = work_dir / "device.json"
        config.write(config_file)
        supervisor = DeviceSupervisor(config_file, work_dir / "device.log", debug=options.debug)
        stack.callback(supervisor.stop)
        run = _Run(options, scenario, context, view)
        supervisor.start(*(["--pause-at", f"progress>={len(new.image) * 2 // 5}"] if options.power_cut else []))
        run.wait_ready(supervisor)
        result = run.run(supervisor)
        expected = scenario.expected(context)
        result.wall_seconds = time.monotonic() - started
        view.line(f"cloud: final state {result.cloud_status} {json.dumps(result.cloud_details, sort_keys=True)}")
        _summary(view, result)
        if result.power_cuts:
            view.line(
                f"power cut: after the restart the download went on from where it was "
                f"(first progress: {result.resumed_from:,} of {result.bytes_total:,} bytes)"
            )
        ok = result.cloud_status == expected.cloud_status and result.running_version == expected.running_version
        if ok:
            outcome = "rolled back, old image running" if options.fail_self_test else "new image running and confirmed"
            view.line(
                f"RESULT: OK: cloud reports {result.cloud_status}, device runs {result.running_version} ({outcome})"
            )
            return 0, result
        view.line(
            f"RESULT: FAILED: expected {expected.cloud_status} with {expected.running_version} running, "
            f"got {result.cloud_status or 'no status'} with {result.running_version or 'nothing'} running"
        )
        return 1, result
    raise AssertionError("unreachable")  # pragma: no cover


def describe_error(error: OtaError) -> str:
    """One line for an error (no traceback)."""
    return f"{error.code}: {error}"

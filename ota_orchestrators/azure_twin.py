"""Azure IoT Hub twin firmware update (MXChip IoT DevKit schema), composed from the components.

The cloud writes the desired property ``firmware`` (``fwVersion``, ``fwPackageURI``,
``fwPackageCheckValue`` (CRC-16/XMODEM), ``fwSize``); the device reports ``firmware`` with
``fwUpdateStatus`` Current, Downloading, Verifying, Applying or Error, a substatus and the update's start
and end times. What this module adds to the DevKit flow: the image is written to an inactive slot and
booted on trial, a self-test confirms it or the bootloader goes back (reported as a rollback), signed
MCUboot images are verified as they stream, and update control (enabled, forced, deferral, the Avnet
``otaTargetUtcTime`` time of day) decides when it happens.

The pieces, each replaceable:

- Notify/Report: ``TwinClient`` over ``MqttConnection`` and ``FirmwareTwinJobSource`` (a subclass of
  ota_jobs' ``MxchipJobSource`` that gives every desired firmware a job id and turns a withdrawn one into
  a cancellation);
- Parse: ``FirmwareTwinParser`` (ota_jobs' ``MxchipFirmwareParser`` plus the plan version and update kind);
- Download: ota_stream's ``HttpRangeDownloader`` (resumes after a power cut);
- Verify: ota_verify's ``PlanVerifier`` (CRC-16, size, and MCUboot signature when keys are given);
- Install: any ``BootControl`` (``McuBootControl`` over a simulated flash in the demo);
- Policy: ota_core's ``UpdateControl``; state: ota_core's ``FileStateStore``.

See docs/orchestrator-azure-twin.md for the state and status diagrams.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from ota_core.clock import Clock, SystemClock
from ota_core.engine import (
    EngineConfig,
    EngineEvent,
    EngineEventKind,
    ReportContext,
    ReportPoint,
    SelfTest,
    UpdateEngine,
)
from ota_core.errors import ConfigurationError, OtaError
from ota_core.models import JobEvent, JobEventKind, JobStatus, StatusReport, UpdatePlan
from ota_core.mqtt import MqttConnection
from ota_core.protocols import BootControl, JobSource, StateStore, Verifier
from ota_core.state_store import FileStateStore
from ota_core.update_control import UpdateControl
from ota_core.versions import Version
from ota_jobs.azure import (
    DEVKIT_VOCABULARY,
    DesiredPatch,
    FirmwareStatus,
    FirmwareSubstatus,
    FirmwareVocabulary,
    IotHubSettings,
    MxchipFirmwareParser,
    MxchipJobSource,
    MxchipReporter,
    RetryPolicy,
    TwinClient,
    TwinDocument,
    compare_fw_versions,
    format_fw_time,
)
from ota_stream import HttpDownloadConfig, HttpRangeDownloader

__all__ = [
    "AzureTwinDevice",
    "AzureTwinSettings",
    "FirmwareTwinJobSource",
    "FirmwareTwinParser",
    "TwinStatusFormatter",
    "substatus_for",
]

_log = logging.getLogger(__name__)

_UPDATE_DOC = "azure-twin-update"
_LAST_DOC = "azure-twin-last"


@attrs.frozen
class AzureTwinSettings:
    """What a twin-firmware device needs to know; everything else has a sensible default.

    - ``hub``: how to reach IoT Hub (``parse_connection_string(...)`` or ``IotHubSettings(...)``; X.509 too).
    - ``state_dir``: where the crash-safe state lives (engine record, download progress, update control).
    - ``vocabulary``: the status strings (``DEVKIT_VOCABULARY`` ``Current``..., or ``TUTORIAL_VOCABULARY``).
    - ``allow_http``: accept ``http://`` package URIs (the local stand-in serves plain HTTP); off by default.
    - ``require_size`` / ``max_image_size``: ``fwSize`` is mandatory, as on the DevKit; optional cap.
    - ``update_kind``: ``"os"`` (a whole firmware image, 24 h deferral window) or ``"application"`` (167 h).
    - ``current_version``: the version to report when the boot control cannot tell which image runs.
    - ``check_method``: the direct method that makes the device look at its twin again now.
    - ``target_time_property`` / ``force_property``: desired properties read into update control.
    """

    hub: IotHubSettings
    state_dir: str
    vocabulary: FirmwareVocabulary = DEVKIT_VOCABULARY
    allow_http: bool = False
    require_size: bool = True
    max_image_size: int | None = None
    update_kind: str = "os"
    current_version: str = "0.0.0"
    check_method: str = "checkForUpdates"
    target_time_property: str = "otaTargetUtcTime"
    force_property: str = "otaForceUpdate"
    engine: EngineConfig = attrs.field(factory=EngineConfig)
    http: HttpDownloadConfig = attrs.field(factory=HttpDownloadConfig)
    retry: RetryPolicy | None = None
    report_timeout: float = 60.0


# --- Parse -----------------------------------------------------------------------------------------


def _semver(text: str) -> Version | None:
    try:
        return Version.parse(text.strip().removeprefix("v"))
    except OtaError:
        return None


class FirmwareTwinParser:
    """``MxchipFirmwareParser`` with the plan version (checked against the image after the restart) and
    the update kind; the "is it newer" check uses the version that ran when the job arrived, so the
    same job parses the same way after the restart into the new image."""

    name = "azure-mxchip"

    def __init__(self, *, allow_http: bool = False, require_size: bool = True, max_size: int | None = None,
                 update_kind: str = "os") -> None:
        self._options: dict[str, Any] = {"allow_http": allow_http, "require_size": require_size,
                                         "max_size": max_size}
        self.update_kind = update_kind

    def parse(self, event: JobEvent) -> UpdatePlan | None:
        """The single-file plan of a desired ``firmware`` newer than the event's ``base_version``."""
        base = str(event.attributes.get("base_version", "0"))
        plan = MxchipFirmwareParser(base, **self._options).parse(event)
        if plan is None:
            return None
        attributes = {**plan.attributes, "update_kind": self.update_kind}
        return attrs.evolve(plan, version=_semver(str(plan.attributes["fw_version"])), attributes=attributes)


# --- Notify / Report -------------------------------------------------------------------------------


def firmware_job_id(firmware: Mapping[str, Any]) -> str:
    """A stable job id per desired firmware: its version and a short hash of the whole object, so the same
    version published again with another package or check value is a new job."""
    canonical = json.dumps(firmware, sort_keys=True, separators=(",", ":"), default=str)
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:10]
    version = "".join(c if c.isalnum() or c in ".-_" else "_" for c in str(firmware.get("fwVersion", "")))[:40]
    return f"fw-{version}-{digest}"


class FirmwareTwinJobSource(MxchipJobSource):
    """The twin ``firmware`` as an engine job source.

    A desired firmware strictly newer than the running one becomes a NEW job (id from
    ``firmware_job_id``); a withdrawn firmware (``null``), or one no longer newer, cancels the job it
    replaced. Reports are built from the details ``TwinStatusFormatter`` produces. Events are held back
    until the boot report has been queued, so the twin always shows the boot state first.
    """

    def __init__(self, client: TwinClient, reporter: MxchipReporter, parser: MxchipFirmwareParser, *,
                 state_store: StateStore, report_timeout: float = 60.0) -> None:
        super().__init__(client, reporter, parser=parser, report_timeout=report_timeout)
        self._store = state_store
        self._gate = threading.Lock()
        self._held: list[JobEvent] | None = []
        self._deliver: Callable[[JobEvent], None] | None = None
        self._last_job: str | None = None
        self._versions: dict[str, str] = {}
        self.boot_patch: Mapping[str, Any] | None = None

    def start(self, on_event: Callable[[JobEvent], None]) -> None:
        """Subscribe and GET the twin, send the boot report, then let the events through."""
        self._deliver = on_event
        super().start(self._route)
        if self.boot_patch is not None:
            try:
                self.client.patch_reported(self.boot_patch, timeout=self.report_timeout)
            except OtaError as exc:
                _log.warning("boot report not sent: %s", exc)
        with self._gate:
            held, self._held = self._held or [], None
        for event in held:
            on_event(event)

    def _route(self, event: JobEvent) -> None:
        if event.kind is JobEventKind.NOTHING_PENDING:
            if self._last_job is None:
                return
            event = JobEvent(JobEventKind.CANCELLED, job_id=self._last_job)
        with self._gate:
            if self._held is not None:
                self._held.append(event)
                return
        if self._deliver is not None:
            self._deliver(event)

    def interpret(self, document: dict[str, Any], version: int | None) -> JobEvent | None:
        """NEW for a newer firmware, CANCELLED (of the previous job) for one that is not newer."""
        assert self.parser is not None
        firmware = self.parser.decode(document)
        if firmware is None:
            return None
        running = self.reporter.current_version
        if compare_fw_versions(firmware.version, running) <= 0:
            _log.info("desired firmware %s is not newer than %s: nothing to do", firmware.version, running)
            return JobEvent(JobEventKind.CANCELLED, job_id=self._last_job) if self._last_job else None
        job_id = firmware_job_id(document["firmware"])
        self._last_job = job_id
        self._versions[job_id] = firmware.version
        return JobEvent(JobEventKind.NEW, job_id=job_id, document=document,
                        attributes={"desired_version": version, "base_version": running})

    def build_reports(self, report: StatusReport) -> list[Mapping[str, Any]]:
        """One ``firmware`` patch from the formatter's details (remembering the last final status)."""
        details = report.details
        status = self.reporter.vocabulary.status_of(details.get("fwUpdateStatus", ""))
        if status is None:
            status = FirmwareStatus.CURRENT if report.status is JobStatus.SUCCEEDED else FirmwareStatus.ERROR
        if "currentFwVersion" in details:
            self.reporter.current_version = details["currentFwVersion"]
        pending = details.get("pendingFwVersion") or ("" if status is FirmwareStatus.CURRENT
                                                      else self._versions.get(report.job_id, ""))
        patch = firmware_patch(self.reporter, status, pending=pending,
                               substatus=details.get("fwUpdateSubstatus", ""),
                               started=details.get("lastFwUpdateStartTime", ""),
                               ended=details.get("lastFwUpdateEndTime", ""))
        if report.status.is_terminal:
            try:
                self._store.save(_LAST_DOC, {"job_id": report.job_id, "status": status.value})
            except OtaError as exc:
                _log.warning("cannot remember the last status: %s", exc)
        return [patch]

    def send_quietly(self, patch: Mapping[str, Any]) -> None:
        """Send a patch without waiting on the caller's thread (for handlers on the dispatcher thread)."""
        threading.Thread(target=self._send_quietly, args=(patch,), daemon=True).start()


def firmware_patch(reporter: MxchipReporter, status: FirmwareStatus, *, pending: str = "", substatus: str = "",
                   started: str | None = None, ended: str | None = None) -> dict[str, Any]:
    """A reported ``firmware`` patch in the reporter's vocabulary; ``None`` times are left out."""
    body: dict[str, Any] = {}
    vocabulary = reporter.vocabulary
    if vocabulary.device_type:
        body["type"] = vocabulary.device_type
    body["currentFwVersion"] = reporter.current_version
    body["pendingFwVersion"] = pending
    body["fwUpdateStatus"] = vocabulary.name_of(status)
    body["fwUpdateSubstatus"] = substatus
    if started is not None:
        body["lastFwUpdateStartTime"] = started
    if ended is not None:
        body["lastFwUpdateEndTime"] = ended
    return {"firmware": body}


def substatus_for(error: OtaError | None) -> str:
    """The DevKit substatus for an error code (the code itself when the DevKit has no word for it)."""
    if error is None:
        return ""
    given = error.details.get("substatus") if isinstance(error.details, Mapping) else None
    if isinstance(given, str) and given:
        return given
    code = error.code
    if code in ("AZURE_MXCHIP_URI_NOT_HTTPS", "DOWNLOAD_URL_INSECURE"):
        return FirmwareSubstatus.URI_NOT_HTTPS.value
    if code in ("VERIFY_SIZE_MISMATCH", "DOWNLOAD_BODY_TOO_LARGE", "DOWNLOAD_WRITE_OUT_OF_BOUNDS"):
        return FirmwareSubstatus.FILE_SIZE_NOT_MATCH.value
    if code.startswith("VERIFY_") or code == "VERIFICATION_FAILED":
        return FirmwareSubstatus.VERIFY_FAILED.value
    if code.startswith("DOWNLOAD_"):
        return FirmwareSubstatus.DOWNLOAD_FAILED.value
    if code.startswith(("INSTALL_FLASH", "STATE_")) or code == "INSTALL_IMAGE_TOO_LARGE":
        return FirmwareSubstatus.DEVICE_ERROR.value
    if code.startswith("INSTALL_"):
        return FirmwareSubstatus.APPLY_FAILED.value
    return code


class TwinStatusFormatter:
    """The engine's ``report_details`` for the twin: which status each report point shows.

    The details are the reported ``firmware`` fields themselves (``fwUpdateStatus`` in the chosen
    vocabulary, ``fwUpdateSubstatus``, ``pendingFwVersion``, the times and, when it changes,
    ``currentFwVersion``), plus ``code`` and ``reason`` for a failure, so what the engine logs is what the
    twin shows. accepted -> Downloading (substatus: the package URI, as the DevKit); verifying ->
    Verifying; ready -> Applying; self-test -> Applying (substatus ``self-test``); succeeded -> Current with
    the new version; failed/rejected -> Error with the DevKit substatus, or a rollback (``Error`` /
    ``Rolled back to: x`` in the DevKit vocabulary, ``rolledback`` in the tutorial's). Progress points are
    skipped. The start time is kept in the state store so that it is the same after the restart.
    """

    def __init__(self, store: StateStore, clock: Clock, vocabulary: FirmwareVocabulary = DEVKIT_VOCABULARY) -> None:
        self._store = store
        self._clock = clock
        self._vocabulary = vocabulary

    def _started(self, job_id: str) -> str:
        stored = self._store.load(_UPDATE_DOC)
        if stored is not None and stored.data.get("job_id") == job_id:
            return str(stored.data.get("started", ""))
        started = format_fw_time(self._clock.now())
        self._store.save(_UPDATE_DOC, {"job_id": job_id, "started": started})
        return started

    def _fields(self, status: FirmwareStatus, substatus: str, pending: str, started: str,
                ended: str = "") -> dict[str, str]:
        return {"fwUpdateStatus": self._vocabulary.name_of(status), "fwUpdateSubstatus": substatus,
                "pendingFwVersion": pending, "lastFwUpdateStartTime": started, "lastFwUpdateEndTime": ended}

    def __call__(self, context: ReportContext) -> dict[str, str] | None:
        point = context.point
        if point is ReportPoint.PROGRESS:
            return None
        plan = context.plan
        pending = str(plan.attributes.get("fw_version", "")) if plan is not None else ""
        started = self._started(context.job_id)
        running = "" if context.running_version is None else str(context.running_version)
        if point is ReportPoint.ACCEPTED:
            uri = str(plan.attributes.get("fw_package_uri", "")) if plan is not None else ""
            return self._fields(FirmwareStatus.DOWNLOADING, uri, pending, started)
        if point is ReportPoint.VERIFYING:
            return self._fields(FirmwareStatus.VERIFYING, "", pending, started)
        if point in (ReportPoint.READY, ReportPoint.SELF_TEST):
            substatus = "self-test" if point is ReportPoint.SELF_TEST else ""
            return self._fields(FirmwareStatus.APPLYING, substatus, pending, started)
        ended = format_fw_time(self._clock.now())
        if point is ReportPoint.SUCCEEDED:
            return {**self._fields(FirmwareStatus.CURRENT, "", "", started, ended), "currentFwVersion": running}
        error = context.error
        extra = {} if error is None else {"code": error.code, "reason": error.message[:200]}
        if context.rolled_back:
            restored = str(context.previous_version) if context.previous_version is not None else running
            rolled = self._fields(FirmwareStatus.ROLLED_BACK, f"Rolled back to: {restored}", pending, started, ended)
            return {**rolled, "currentFwVersion": restored, **extra}
        return {**self._fields(FirmwareStatus.ERROR, substatus_for(error), pending, started, ended), **extra}


# --- the device ------------------------------------------------------------------------------------


class AzureTwinDevice:
    """One device: the engine wired to the twin, the HTTP downloader, the verifier and the boot control.

    ``boot_control``, ``verifier`` and ``restart`` are the device's own (see examples/azure_twin_device.py);
    ``self_test`` checks the new image after the restart. ``connection`` may be shared with the
    application (else one is made from ``settings.hub``); ``state_store`` and ``update_control`` default to
    a ``FileStateStore`` in ``settings.state_dir`` and an ``UpdateControl`` over it; ``job_source_wrapper``
    may wrap the job source the engine sees (telemetry, tests). ``start()`` connects,
    reports the boot state and runs; ``stop()`` ends everything.
    """

    def __init__(self, settings: AzureTwinSettings, *, boot_control: BootControl, verifier: Verifier,
                 restart: Callable[[], None], self_test: SelfTest | None = None, clock: Clock | None = None,
                 connection: MqttConnection | None = None, state_store: StateStore | None = None,
                 update_control: UpdateControl | None = None,
                 job_source_wrapper: Callable[[JobSource], JobSource] | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        if state_store is None:
            Path(settings.state_dir).mkdir(parents=True, exist_ok=True)
        self.store = state_store or FileStateStore(settings.state_dir)
        self.control = update_control or UpdateControl(self.store, clock=self.clock)
        self._own_connection = connection is None
        self.connection = connection or MqttConnection(settings.hub.to_mqtt_settings(self.clock))
        self.twin = TwinClient(self.connection, retry=settings.retry, clock=self.clock)
        running = boot_control.state().running_version
        self.running_version = settings.current_version if running is None else str(running)
        self.reporter = MxchipReporter(self.running_version, settings.vocabulary)
        decoder = MxchipFirmwareParser(self.running_version, allow_http=settings.allow_http)
        self.source = FirmwareTwinJobSource(self.twin, self.reporter, decoder, state_store=self.store,
                                            report_timeout=settings.report_timeout)
        http = attrs.evolve(settings.http, allow_insecure_http=True) if settings.allow_http else settings.http
        self.downloader = HttpRangeDownloader(self.store, http, clock=self.clock)
        self.engine = UpdateEngine(
            job_source=job_source_wrapper(self.source) if job_source_wrapper is not None else self.source,
            parsers=[FirmwareTwinParser(allow_http=settings.allow_http, require_size=settings.require_size,
                                        max_size=settings.max_image_size, update_kind=settings.update_kind)],
            downloaders=[self.downloader],
            verifier=verifier,
            boot_control=boot_control,
            state_store=self.store,
            restart=restart,
            self_test=self_test,
            update_control=self.control,
            clock=self.clock,
            config=settings.engine,
            report_details=TwinStatusFormatter(self.store, self.clock, settings.vocabulary),
        )
        self.engine.add_listener(self._on_engine_event)
        self.twin.on_document(self._on_document)
        self.twin.on_desired(self._on_desired)
        self.twin.on_method(settings.check_method, self._on_check_method)

    # --- life cycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Connect (if needed), send the boot report and start the engine (which resumes first)."""
        if not self.connection.is_connected:
            self.connection.connect()
        self.source.boot_patch = self.boot_patch()
        self.engine.start()

    def stop(self) -> None:
        """Stop the engine and the twin; close the connection if this device made it."""
        self.engine.stop()
        self.downloader.close()
        if self._own_connection:
            self.connection.close()

    def check_for_updates(self) -> None:
        """Read the twin again now and ask the policy again (the direct method does this too)."""
        self.source.request_next()
        self.engine.poke()

    def boot_patch(self) -> dict[str, Any] | None:
        """What to report at power-on: nothing while an update is in flight (the engine reports), only the
        running version after an error (so ``Error`` stays visible), else ``Current`` as the DevKit does."""
        if self.store.load(f"{self.settings.engine.name}-progress") is not None:
            return None
        last = self.store.load(_LAST_DOC)
        if last is not None and last.data.get("status") != FirmwareStatus.CURRENT.value:
            body: dict[str, Any] = {"currentFwVersion": self.running_version}
            if self.settings.vocabulary.device_type:
                body["type"] = self.settings.vocabulary.device_type
            return {"firmware": body}
        return firmware_patch(self.reporter, FirmwareStatus.CURRENT)

    # --- twin handlers (dispatcher thread: never block here) ------------------------------------

    def _on_document(self, document: TwinDocument) -> None:
        self._apply_control(document.desired)

    def _on_desired(self, patch: DesiredPatch) -> None:
        self._apply_control(patch.patch)

    def _apply_control(self, desired: Mapping[str, Any]) -> None:
        reported: dict[str, Any] = {}
        name = self.settings.target_time_property
        if name in desired:
            value = desired[name]
            try:
                reported[name] = self.control.set_target_time(value if isinstance(value, str) else "")
            except ConfigurationError as exc:
                _log.warning("ignoring %s=%r: %s", name, value, exc)
        force = self.settings.force_property
        if force in desired:
            self.control.set_forced(desired[force] is True)
            reported[force] = desired[force] is True
        if reported:
            self.source.send_quietly(reported)

    def _on_check_method(self, _payload: Any) -> tuple[int, Any]:
        threading.Thread(target=self._check_quietly, name="azure-check-updates", daemon=True).start()
        return 200, {"currentFwVersion": self.running_version, "checking": True}

    def _check_quietly(self) -> None:
        try:
            self.check_for_updates()
        except OtaError as exc:
            _log.warning("check for updates failed: %s", exc)

    def _on_engine_event(self, event: EngineEvent) -> None:
        if event.kind is EngineEventKind.CANCELLED:
            # The engine reports nothing for a cancelled job; the twin should not stay on Downloading.
            patch = firmware_patch(self.reporter, FirmwareStatus.CURRENT, substatus="cancelled")
            try:
                self.twin.patch_reported(patch, timeout=self.settings.report_timeout)
            except OtaError as exc:
                _log.warning("cancel report not sent: %s", exc)

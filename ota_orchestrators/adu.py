"""The Azure Device Update agent: the ``deviceUpdate`` Plug and Play component driving the update engine.

A short composition meant to be copied and changed:

- Notify + Report: ``ota_jobs.azure.AduJobSource`` over the twin (workflow process / cancel / retry,
  duplicates ignored, the "is it installed?" check, property acknowledgements ``ac``/``av``/``ad``, the
  ``agent`` reported property with its states, result codes and ``installedUpdateId``);
- Parse: ``ota_jobs.azure.AduParser`` (the manifest is *not* trusted yet);
- Verify: ``ota_verify.PlanVerifier`` with the ADU manifest verifier: the JWS chain (root key -> signing
  key -> manifest hash) is checked before the first byte is fetched; the manifest's SHA-256 and size of
  every file are checked while it streams;
- Download: ``ota_stream.HttpRangeDownloader`` (Device Update serves files over plain http; the signed
  hashes give the integrity);
- Install: the application's ``BootControl`` (the image file goes to the inactive slot; with
  ``files_dir`` set, the other files of a multi-file update go to files there);
- the engine of ``ota_core`` runs the phases, update control holds them when the device says so.

``AduReporting`` maps the engine's report points to the agent's states and result codes; ``InstalledUpdates``
remembers which update id each image version came from, so that the device reports the right
``installedUpdateId`` after a restart and after a rollback. See docs/orchestrator-adu.md.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import threading
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
from cryptography.hazmat.primitives.asymmetric import rsa

from ota_core.clock import Clock
from ota_core.engine import (
    EngineConfig,
    EngineEvent,
    EngineEventKind,
    ReportContext,
    ReportPoint,
    SelfTest,
    SelfTestFailedError,
    SinkFactory,
    UpdateEngine,
    UpdatePolicy,
)
from ota_core.errors import (
    DownloadError,
    InstallError,
    JobDocumentError,
    OtaError,
    PolicyError,
    TransportError,
    VerificationError,
)
from ota_core.models import FileTarget, JobEvent, JobStatus, StatusReport, UpdatePlan
from ota_core.protocols import BlockSink, BootControl, Downloader, JobSource, StateStore
from ota_core.update_control import UpdateControl
from ota_core.versions import Version
from ota_jobs.azure import (
    AduAgentReporter,
    AduJobSource,
    AduParser,
    AduUpdateId,
    TwinClient,
    extract_service,
    parse_service_request,
)
from ota_stream import FileSink, HttpDownloadConfig, HttpRangeDownloader
from ota_verify import AduManifestVerifier, DeviceIdentity, McubootVerifier, PlanVerifier

__all__ = [
    "EXTENDED_FACILITY",
    "AduAgent",
    "AduSettings",
    "InstalledUpdates",
    "adu_report_details",
    "describe_agent",
    "extended_result_code",
    "image_version",
]

_log = logging.getLogger(__name__)

EXTENDED_FACILITY = 0x3
"""Facility nibble of the ``extendedResultCode`` values this agent reports (``0xF CC EEEEE``)."""

_COMPONENTS: tuple[tuple[type[OtaError], int], ...] = (
    (SelfTestFailedError, 0x04),
    (VerificationError, 0x01),
    (DownloadError, 0x02),
    (InstallError, 0x03),
    (PolicyError, 0x05),
    (JobDocumentError, 0x06),
    (TransportError, 0x07),
)
_ENGINE_COMPONENT = 0x0F
_UNSET = object()


def extended_result_code(error: OtaError | None) -> int:
    """The 32-bit ``extendedResultCode`` for an error: facility ``EXTENDED_FACILITY``, a component byte from
    the error's family (01 verify, 02 download, 03 install, 04 self-test, 05 policy, 06 document,
    07 transport, 0F other) and 20 bits derived from the error's stable ``code`` (CRC-32). 0 without error."""
    if error is None:
        return 0
    component = next((number for kind, number in _COMPONENTS if isinstance(error, kind)), _ENGINE_COMPONENT)
    number = zlib.crc32(error.code.encode()) & 0xFFFFF
    return (EXTENDED_FACILITY << 28) | (component << 20) | number


def adu_report_details(context: ReportContext) -> dict[str, str] | None:
    """What each engine report says to ``AduJobSource``.

    ``accepted`` and ``self-test`` put the agent in DeploymentInProgress (6); other progress points are
    skipped (every agent patch costs a twin write). ``succeeded`` carries the update id that is now installed
    (Idle, 700); ``failed`` / ``rejected`` carry the error code, the reason and the extended result code
    (Failed, 255).
    """
    point = context.point
    if point in (ReportPoint.ACCEPTED, ReportPoint.SELF_TEST):
        return {"step": point.value}
    if point in (ReportPoint.PROGRESS, ReportPoint.VERIFYING, ReportPoint.READY):
        return None
    details: dict[str, str] = {"step": point.value}
    update_id = context.plan.attributes.get("adu_update_id") if context.plan is not None else None
    if point is ReportPoint.SUCCEEDED:
        if isinstance(update_id, Mapping):
            details.update({key: str(update_id[key]) for key in ("provider", "name", "version") if key in update_id})
        if context.running_version is not None:
            details["image_version"] = str(context.running_version)
        return details
    error = context.error
    if error is not None:
        details["code"] = error.code
        reason = error.message
        if context.rolled_back:
            reason = f"{reason} (rolled back)"
        details["reason"] = reason[:200]
    details["extended_result_code"] = str(extended_result_code(error))
    if context.rolled_back:
        details["rolled_back"] = "true"
    return details


class InstalledUpdates:
    """Which Device Update update id each image version came from (state-store document ``adu-installed``).

    ``installedUpdateId`` must describe what *runs*: after a rollback the old image runs again and its update
    id is reported again. ``record`` is called before the success report is sent, so a power cut after the
    report cannot leave the old id behind.
    """

    DOCUMENT = "adu-installed"
    _LIMIT = 16

    def __init__(self, store: StateStore, initial: AduUpdateId | None = None) -> None:
        self._store = store
        self._initial = initial
        self._lock = threading.Lock()
        document = store.load(self.DOCUMENT)
        data = dict(document.data) if document is not None else {}
        raw = data.get("by_version")
        self._by_version: dict[str, dict[str, str]] = (
            {str(k): dict(v) for k, v in raw.items() if isinstance(v, Mapping)} if isinstance(raw, Mapping) else {}
        )
        last = data.get("last")
        self._last: dict[str, str] | None = dict(last) if isinstance(last, Mapping) else None

    def seed(self, running: Version | None) -> None:
        """On the first start, the factory image is the settings' initial update id."""
        with self._lock:
            if self._initial is None or self._by_version or self._last is not None:
                return
            self._last = self._initial.to_json()
            if running is not None:
                self._by_version[str(running)] = self._last
            self._save()

    def installed(self, running: Version | None) -> AduUpdateId | None:
        """The update id of the image that runs (the last recorded one if the version is unknown)."""
        with self._lock:
            entry = self._by_version.get(str(running)) if running is not None else self._last
        if entry is None:
            return None
        try:
            return AduUpdateId.from_json(entry)
        except OtaError:
            _log.warning("ignoring a damaged installed update id")
            return None

    def record(self, update_id: AduUpdateId, running: Version | None) -> None:
        """Remember that ``running`` came from ``update_id`` (crash-safe, before the success report)."""
        with self._lock:
            self._last = update_id.to_json()
            if running is not None:
                self._by_version.pop(str(running), None)
                self._by_version[str(running)] = self._last
                while len(self._by_version) > self._LIMIT:
                    self._by_version.pop(next(iter(self._by_version)))
            self._save()

    def _save(self) -> None:
        self._store.save(self.DOCUMENT, {"by_version": self._by_version, "last": self._last})


@attrs.frozen
class AduSettings:
    """What an ADU device is and whom it trusts.

    - ``manufacturer`` / ``model`` (+ ``extra_properties``): the ``deviceProperties`` reported, and the
      device's identity checked against the signed manifest's ``compatibility``;
      ``compat_property_names``: which properties the service groups devices by (at most 5).
    - ``trusted_roots``: root keys added to trust (``{kid: RSA public key}``, the stand-in's test root);
      ``microsoft_roots``: also trust Microsoft's production roots (True on a real device).
    - ``initial_update_id``: the update id of the factory image (reported until the first update).
    - ``update_kind``: ``"os"`` or ``"application"`` (the deferral window of update control).
    - ``version_from``: where the image version of an update is read (``"installedCriteria"``, ``"updateId"``
      or ``"none"``); the engine checks that this version runs after the restart and refuses an update
      whose version is not newer than the running one.
    - ``image_file``: a file-name pattern picking the image of a multi-file update (default: the largest
      file); ``files_dir``: where the other files go (without it, only single-file updates are taken).
    - ``check_compatibility``: refuse manifests whose compatibility does not name this device.
    - ``target_time_property``: a desired twin property holding the install time of day in UTC
      (``"HH:MM[:SS]"``, Avnet's ``otaTargetUtcTime``; ``""`` clears it), applied to an ``UpdateControl``
      and reported back; None to ignore it.
    - ``engine``: engine settings (its documents are named ``adu-...``); ``http``: downloader settings
      (plain http allowed: Device Update's URLs are http, integrity comes from the signed hashes).
    """

    manufacturer: str
    model: str
    extra_properties: Mapping[str, str] = attrs.field(factory=dict)
    compat_property_names: str = "manufacturer,model"
    trusted_roots: Mapping[str, rsa.RSAPublicKey] = attrs.field(factory=dict)
    microsoft_roots: bool = True
    initial_update_id: AduUpdateId | None = None
    update_kind: str = "os"
    version_from: str = "installedCriteria"
    image_file: str | None = None
    files_dir: Path | None = None
    check_compatibility: bool = True
    target_time_property: str | None = "otaTargetUtcTime"
    report_timeout: float = 30.0
    engine: EngineConfig = attrs.field(factory=lambda: EngineConfig(name="adu"))
    http: HttpDownloadConfig = attrs.field(factory=lambda: HttpDownloadConfig(allow_insecure_http=True))


def image_version(plan: UpdatePlan, source: str) -> Version | None:
    """The image version an ADU plan installs: ``installedCriteria`` (the swupdate convention: the version the
    image reports once installed) or the update id's version, when it parses as a version (``1.1`` reads as
    ``1.1.0``); else None."""
    if source == "installedCriteria":
        raw = plan.attributes.get("adu_installed_criteria")
    elif source == "updateId":
        update_id = plan.attributes.get("adu_update_id")
        raw = update_id.get("version") if isinstance(update_id, Mapping) else None
    else:
        return None
    if not isinstance(raw, str):
        return None
    if raw.count(".") == 1 and raw.replace(".", "").isdigit():
        raw = f"{raw}.0"  # Device Update versions may have two parts
    try:
        return Version.parse(raw)
    except OtaError:
        return None


class _Parser:
    """``AduParser`` plus the plan attribute ``update_kind`` for update control and the image version (so that
    the engine can tell after a restart whether the new image runs)."""

    name = "azure-adu"

    def __init__(self, update_kind: str, version_from: str) -> None:
        self._parser = AduParser()
        self._kind = update_kind
        self._version_from = version_from

    def parse(self, event: JobEvent) -> UpdatePlan | None:
        plan = self._parser.parse(event)
        if plan is None:
            return None
        return attrs.evolve(plan, version=image_version(plan, self._version_from),
                            attributes={**plan.attributes, "update_kind": self._kind})


class _AgentSource(AduJobSource):
    """``AduJobSource`` that records the installed update id before the success report goes out, and answers
    "is it installed?" from ``installedCriteria`` too: an update whose image version already runs is
    installed (as the reference agent's handlers decide), whatever update id the device knew."""

    def __init__(self, client: TwinClient, reporter: AduAgentReporter, installed: InstalledUpdates,
                 boot: BootControl, version_from: str, **kwargs: Any) -> None:
        super().__init__(client, reporter, **kwargs)
        self._installed = installed
        self._boot = boot
        self._version_from = version_from

    def interpret(self, document: dict[str, Any], version: int | None) -> JobEvent | None:
        self._adopt_if_running(document)
        return super().interpret(document, version)

    def _adopt_if_running(self, document: Mapping[str, Any]) -> None:
        try:
            service = extract_service(document)
            request = parse_service_request(service) if service is not None else None
            if request is None or request.update_manifest is None or request.signature is None:
                return
            plan = AduParser().plan_for(request)
        except OtaError:
            return  # the job source reports what is wrong with the request
        wanted = image_version(plan, self._version_from) if self._version_from == "installedCriteria" else None
        image = self._boot.state()
        running = image.running_version
        if wanted is None or running is None or wanted != running or image.in_trial:
            return  # an image on trial is not installed yet: the engine decides after its self-test
        update_id = AduUpdateId.from_json(plan.attributes["adu_update_id"])
        if update_id != self.installed_update_id:
            _log.info("update %s is what runs (installedCriteria %s)", update_id, wanted)
            self._installed.record(update_id, running)
            self.installed_update_id = update_id

    def report(self, report: StatusReport) -> None:
        details = report.details
        if report.status is JobStatus.SUCCEEDED and {"provider", "name", "version"} <= set(details):
            update_id = AduUpdateId(details["provider"], details["name"], details["version"])
            self._installed.record(update_id, self._boot.state().running_version)
            self.installed_update_id = update_id
        super().report(report)


class AduAgent:
    """A Device Update agent: builds the engine from ``settings`` and the device's parts.

    ``client`` is a connected ``TwinClient`` (not started); ``boot_control``, ``state_store``, ``restart`` and
    ``self_test`` are the device's. ``update_control`` (optional) holds updates; ``mcuboot`` (optional)
    checks the image file as an MCUboot image while it streams; ``downloaders`` replaces the HTTP downloader;
    ``job_source_wrapper`` wraps the job source the engine talks to (telemetry, tests).
    """

    def __init__(
        self,
        settings: AduSettings,
        *,
        client: TwinClient,
        boot_control: BootControl,
        state_store: StateStore,
        restart: Callable[[], None],
        self_test: SelfTest | None = None,
        update_control: UpdatePolicy | None = None,
        clock: Clock | None = None,
        mcuboot: McubootVerifier | None = None,
        downloaders: Sequence[Downloader] | None = None,
        job_source_wrapper: Callable[[JobSource], JobSource] | None = None,
    ) -> None:
        self.settings = settings
        self.boot_control = boot_control
        self.installed = InstalledUpdates(state_store, settings.initial_update_id)
        running = boot_control.state().running_version
        self.installed.seed(running)
        reporter = AduAgentReporter(
            settings.manufacturer, settings.model,
            extra_properties=settings.extra_properties, compat_property_names=settings.compat_property_names,
        )
        self.source = _AgentSource(
            client, reporter, self.installed, boot_control, settings.version_from,
            installed_update_id=self.installed.installed(running),
            report_timeout=settings.report_timeout, state_store=state_store,
        )
        roots = None if settings.microsoft_roots else dict(settings.trusted_roots)
        device = DeviceIdentity({"manufacturer": settings.manufacturer, "model": settings.model,
                                 **settings.extra_properties})
        self.verifier = PlanVerifier(
            adu=AduManifestVerifier(roots, extra_roots=settings.trusted_roots if roots is None else None),
            device=device if settings.check_compatibility else None,
            clock=clock,
            mcuboot=mcuboot,
            mcuboot_files=self._is_image if mcuboot is not None else None,
        )
        self._http = HttpRangeDownloader(state_store, settings.http, clock=clock)
        self._open_files: list[FileSink] = []
        self._files_lock = threading.Lock()
        sink_factory: SinkFactory | None = self._sink if settings.files_dir is not None else None
        self.engine = UpdateEngine(
            job_source=job_source_wrapper(self.source) if job_source_wrapper is not None else self.source,
            parsers=[_Parser(settings.update_kind, settings.version_from)],
            downloaders=list(downloaders) if downloaders is not None else [self._http],
            verifier=self.verifier,
            boot_control=boot_control,
            state_store=state_store,
            restart=restart,
            self_test=self_test,
            update_control=update_control,
            clock=clock,
            config=settings.engine,
            report_details=adu_report_details,
            sink_factory=sink_factory,
        )
        self.engine.add_listener(self._on_engine_event)
        self._control = update_control if isinstance(update_control, UpdateControl) else None
        self._target_seen: object = _UNSET
        if self._control is not None and settings.target_time_property:
            client.on_document(lambda document: self._on_target_time(document.desired))
            client.on_desired(lambda patch: self._on_target_time(patch.patch))

    # --- life cycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the engine (it resumes a persisted update first) and the twin client."""
        self.engine.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the engine and the twin client; close files and HTTP connections."""
        self.engine.stop(timeout)
        self._close_files()
        self._http.close()

    def __enter__(self) -> AduAgent:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def installed_update_id(self) -> AduUpdateId | None:
        """The update id the agent reports as installed."""
        return self.source.installed_update_id

    # --- engine events -------------------------------------------------------------------------------

    def _on_engine_event(self, event: EngineEvent) -> None:
        if event.kind in (EngineEventKind.FINISHED, EngineEventKind.CANCELLED, EngineEventKind.SUPERSEDED):
            self._close_files()
        if event.kind is EngineEventKind.FINISHED and event.job_id is not None:
            self.verifier.forget(event.job_id)
        if event.kind is EngineEventKind.CANCELLED and event.job_id is not None:
            # The cloud cancelled before activation: the agent goes back to Idle with result -1.
            threading.Thread(target=self._report_cancelled, args=(event.job_id,), daemon=True,
                             name="adu-cancel-report").start()

    def _report_cancelled(self, job_id: str) -> None:
        try:
            self.source.report(StatusReport(job_id, JobStatus.CANCELED, {"reason": "cancelled by the service"}))
        except OtaError as error:
            _log.warning("could not report the cancellation of %s: %s", job_id, error)

    # --- the install time of day from the twin (Avnet's otaTargetUtcTime) ----------------------------------

    def _on_target_time(self, desired: Mapping[str, Any]) -> None:
        name = self.settings.target_time_property
        if self._control is None or not name or name not in desired:
            return
        value = desired[name]
        if value == self._target_seen:
            return
        self._target_seen = value
        try:
            if value is not None and not isinstance(value, str):
                raise PolicyError(f"{name} must be a string HH:MM[:SS]")
            reported = self._control.set_target_time(value or None)
        except OtaError as error:
            _log.warning("ignoring desired %s=%r: %s", name, value, error)
            return
        # report it back off the dispatcher thread (a reported patch waits for the hub's answer)
        threading.Thread(target=self._report_property, args=({name: reported},), daemon=True,
                         name="adu-target-time").start()

    def _report_property(self, patch: Mapping[str, Any]) -> None:
        try:
            self.source.client.patch_reported(patch, timeout=self.settings.report_timeout)
        except OtaError as error:
            _log.warning("could not report %s: %s", list(patch), error)

    # --- where the files go --------------------------------------------------------------------------

    def _image_index(self, plan: UpdatePlan) -> int:
        pattern = self.settings.image_file
        if pattern is not None:
            for index, target in enumerate(plan.files):
                if fnmatch.fnmatch(target.name, pattern):
                    return index
            raise JobDocumentError(f"no file of the update matches the image pattern {pattern!r}")
        return max(range(len(plan.files)), key=lambda index: plan.files[index].size)

    def _is_image(self, plan: UpdatePlan, target: FileTarget) -> bool:
        return plan.files[self._image_index(plan)] is target

    def _sink(self, plan: UpdatePlan, target: FileTarget, index: int) -> BlockSink:
        if index == self._image_index(plan):
            return self.boot_control.open_inactive_slot(target.size)
        directory = self.settings.files_dir
        assert directory is not None  # the factory is only installed with files_dir
        directory.mkdir(parents=True, exist_ok=True)
        tag = hashlib.sha256(plan.job_id.encode()).hexdigest()[:12]
        sink = FileSink(directory / f"{tag}-{index}-{target.name}", target.size)
        with self._files_lock:
            self._open_files.append(sink)
        return sink

    def _close_files(self) -> None:
        with self._files_lock:
            files, self._open_files = self._open_files, []
        for sink in files:
            sink.close()


def describe_agent(agent: Mapping[str, Any] | None) -> str:
    """One line for a reported ``agent`` (state, installed update, result), for logs and demos."""
    if not agent:
        return "no agent reported"
    states = {0: "Idle", 6: "DeploymentInProgress", 255: "Failed"}
    state = agent.get("state")
    result = agent.get("lastInstallResult") if isinstance(agent.get("lastInstallResult"), Mapping) else {}
    installed = agent.get("installedUpdateId")
    try:
        installed_id = json.loads(installed) if isinstance(installed, str) else None
    except ValueError:
        installed_id = None
    version = installed_id.get("version") if isinstance(installed_id, Mapping) else None
    return (f"state {states.get(state, state) if isinstance(state, int) else state}, installed "
            f"{version or '-'}, result {result.get('resultCode') if isinstance(result, Mapping) else '-'}")

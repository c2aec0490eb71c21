"""The AWS IoT Jobs reference orchestrator: a short composition of the components, meant to be copied.

What it wires together:

- Notify: ``ota_jobs.AwsJobsClient`` over ``ota_core.mqtt.MqttConnection`` (the thing's Jobs topics);
- Parse: the parser chain (``afr_ota`` as ``CreateOTAUpdate`` makes it, then the generic ``ota_http``
  document), with room for the application's own parsers first;
- Download: AWS IoT MQTT file streams and HTTP(S) ranges from ``ota_stream`` (the URL is refreshed by
  describing the job again when a presigned URL expired);
- Verify and Install: a ``Verifier`` (``ota_verify.PlanVerifier``) and a ``BootControl`` handed in by the
  application, so the same composition serves an MCU with MCUboot, directory slots or U-Boot;
- the engine and update control from ``ota_core``, with a crash-safe ``FileStateStore``;
- Report: ``freertos_status_details``, the statusDetails FreeRTOS devices send (``receive``,
  ``self_test``, ``updatedBy``, ``reason``), so dashboards built for FreeRTOS fleets read ours too.

The engine checks the version after the restart (same version or a downgrade fails the self-test with
``POLICY_VERSION_REJECTED``); a failure before the job was taken is REJECTED, a later one FAILED.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from ota_core.clock import Clock
from ota_core.engine import EngineConfig, ReportContext, ReportPoint, SelfTest, UpdateEngine
from ota_core.errors import OtaError
from ota_core.models import JobEvent, JobEventKind, LocationKind
from ota_core.mqtt import MqttConnection, MqttSettings
from ota_core.protocols import BootControl, Downloader, DownloadRequest, JobParser, JobSource, Verifier
from ota_core.state_store import FileStateStore
from ota_core.update_control import UpdateControl
from ota_core.versions import Version
from ota_jobs import AfrOtaParserConfig, AwsJobsClient, HttpDocumentParserConfig, default_parser_chain
from ota_stream import HttpDownloadConfig, HttpRangeDownloader, MqttStreamConfig, MqttStreamDownloader

__all__ = [
    "FREERTOS_BLOCK_SIZE",
    "AwsOrchestrator",
    "AwsSettings",
    "app_version_hex",
    "freertos_status_details",
]

_log = logging.getLogger(__name__)

FREERTOS_BLOCK_SIZE = 4096
"""The block size FreeRTOS counts ``receive: x/y`` in by default (``otaconfigLOG2_FILE_BLOCK_SIZE`` 12)."""

_MAX_DETAIL = 1000


@attrs.frozen
class AwsSettings:
    """What a device needs to run the AWS IoT Jobs orchestrator.

    - ``thing_name``: the thing (also the MQTT client id on AWS IoT Core).
    - ``mqtt``: broker URL, TLS files and client id (``ota_core.mqtt.MqttSettings``).
    - ``state_dir``: where the engine, the downloads and update control keep their crash-safe state.
    - ``preferred_protocols``: data protocols accepted from ``afr_ota`` documents, best first.
    - ``allow_http``: accept plain ``http://`` URLs (a local stand-in; never on a real fleet).
    - ``require_signature``: ``ota_http`` documents must carry a detached signature (turn off when the
      image signs itself, as an MCUboot image does and ``PlanVerifier(mcuboot=...)`` checks).
    - ``stream`` / ``http``: downloader settings; ``engine``: the engine's settings.
    - ``receive_block_size``: the unit of ``receive: x/y`` (FreeRTOS counts 4 KiB blocks).
    """

    thing_name: str
    mqtt: MqttSettings
    state_dir: Path = attrs.field(converter=Path)
    preferred_protocols: tuple[str, ...] = ("MQTT", "HTTP")
    allow_http: bool = False
    require_signature: bool = True
    stream: MqttStreamConfig = attrs.field(factory=MqttStreamConfig)
    http: HttpDownloadConfig = attrs.field(factory=HttpDownloadConfig)
    engine: EngineConfig = attrs.field(factory=EngineConfig)
    receive_block_size: int = attrs.field(default=FREERTOS_BLOCK_SIZE, validator=attrs.validators.gt(0))


def app_version_hex(version: Version | None) -> str:
    """FreeRTOS' ``updatedBy``: the AppVersion32 of ``version`` in hexadecimal (``0x1000001`` for 1.0.1)."""
    if version is None:
        return "0x0"
    try:
        return f"0x{version.to_app_version32():x}"
    except OtaError:  # a version beyond AppVersion32's range: say it in text
        return str(version)


def _blocks(size: int, block_size: int) -> int:
    return -(-size // block_size)


def _reason(prefix: str, error: OtaError | None) -> dict[str, str]:
    if error is None:
        return {"reason": prefix}
    details = {"reason": f"{prefix}: {error.code}"}
    message = " ".join(error.message.split())[:_MAX_DETAIL]
    if message:
        details["detail"] = message
    return details


def freertos_status_details(context: ReportContext, *, block_size: int = FREERTOS_BLOCK_SIZE) -> dict[str, str] | None:
    """statusDetails in FreeRTOS OTA's dialect for each report point of the engine.

    | point | statusDetails |
    |---|---|
    | accepted, progress | ``receive``: blocks received / total (``block_size`` blocks) |
    | verifying | not sent |
    | ready | ``self_test: ready``, ``updatedBy``: AppVersion32 (hex) of the image that downloaded |
    | self-test | ``self_test: active``, ``updatedBy`` |
    | succeeded | ``reason: "accepted  v1.0.1"``, ``updatedBy: "  v1.0.1"`` (FreeRTOS' two spaces kept) |
    | failed | ``reason: "rejected: <CODE>"`` (``aborted: <CODE>`` when it was not the image's fault), ``detail`` |
    | rejected | ``reason: "rejected: <CODE>"``, ``detail`` |

    ``updatedBy`` is also added to a failure after activation.
    """
    point = context.point
    if point is ReportPoint.VERIFYING:
        return None
    if point in (ReportPoint.ACCEPTED, ReportPoint.PROGRESS):
        done = context.bytes_done if point is ReportPoint.PROGRESS else 0
        size = context.bytes_total
        if size <= 0 and context.plan is not None:
            size = sum(target.size for target in context.plan.files)
        total = _blocks(size, block_size)
        return {"receive": f"{min(_blocks(done, block_size), total)}/{total}"}
    if point is ReportPoint.READY:
        return {"self_test": "ready", "updatedBy": app_version_hex(context.running_version)}
    if point is ReportPoint.SELF_TEST:
        return {"self_test": "active", "updatedBy": app_version_hex(context.previous_version)}
    if point is ReportPoint.SUCCEEDED:
        running = context.running_version
        text = f"  v{running.major}.{running.minor}.{running.patch}" if running is not None else ""
        return {"reason": f"accepted{text}", "updatedBy": text or "unknown"}
    details = _reason(_failure_prefix(context), context.error)
    if point is ReportPoint.FAILED and (context.rolled_back or context.previous_version is not None):
        details["updatedBy"] = app_version_hex(context.previous_version)
    return details


_ABORT_CODES_PREFIXES = ("DOWNLOAD_", "TRANSPORT_", "ENGINE_", "STATE_")


def _failure_prefix(context: ReportContext) -> str:
    """FreeRTOS says ``rejected`` when the image or document was refused, ``aborted`` otherwise."""
    if context.error is not None and context.error.code.startswith(_ABORT_CODES_PREFIXES):
        return "aborted"
    return "rejected"


class _UrlRefresher:
    """Gets a fresh (presigned) URL for a file by describing the job again and re-parsing its document."""

    def __init__(self, jobs: AwsJobsClient, parsers: Sequence[JobParser]) -> None:
        self._jobs = jobs
        self._parsers = parsers

    def __call__(self, request: DownloadRequest) -> str | None:
        try:
            reply = self._jobs.describe(request.job_id)
        except OtaError as error:
            _log.warning("could not describe job %s for a fresh URL: %s", request.job_id, error)
            return None
        execution = reply.execution
        if execution is None or execution.job_document is None:
            return None
        event = JobEvent(JobEventKind.CHANGED, request.job_id, execution.job_document)
        for parser in self._parsers:
            try:
                plan = parser.parse(event)
            except OtaError:
                return None
            if plan is None:
                continue
            for target in plan.files:
                if target.name != request.target.name:
                    continue
                for location in target.locations:
                    if location.kind is LocationKind.HTTP:
                        return location.uri
            return None
        return None


class AwsOrchestrator:
    """An update engine for AWS IoT Jobs, built from the settings and the device's own parts.

    The application hands in what is specific to the device: the ``verifier`` (keys, certificates,
    MCUboot images), the ``boot_control`` (slots), the ``restart`` callback and the ``self_test``. Extra
    ``parsers`` are tried before the built-in ones, extra ``downloaders`` after them. ``connection`` may be
    given (already configured); otherwise one is made from ``settings.mqtt``.
    """

    def __init__(
        self,
        settings: AwsSettings,
        *,
        verifier: Verifier,
        boot_control: BootControl,
        restart: Callable[[], None],
        self_test: SelfTest | None = None,
        parsers: Sequence[JobParser] = (),
        downloaders: Sequence[Downloader] = (),
        connection: MqttConnection | None = None,
        update_control: UpdateControl | None = None,
        clock: Clock | None = None,
        job_source_wrapper: Callable[[JobSource], JobSource] | None = None,
    ) -> None:
        self.settings = settings
        self.store = FileStateStore(settings.state_dir)
        self.connection = connection or MqttConnection(settings.mqtt)
        self.jobs = AwsJobsClient(self.connection, settings.thing_name)
        chain = default_parser_chain(
            AfrOtaParserConfig(preferred_protocols=settings.preferred_protocols),
            HttpDocumentParserConfig(require_signature=settings.require_signature, allow_http=settings.allow_http),
        )
        for parser in reversed(parsers):
            chain.register(parser, first=True)
        http_config = attrs.evolve(
            settings.http, allow_insecure_http=settings.allow_http or settings.http.allow_insecure_http
        )
        self.downloaders: list[Downloader] = [
            MqttStreamDownloader(self.connection, settings.thing_name, self.store, settings.stream, clock=clock),
            HttpRangeDownloader(self.store, http_config, url_refresher=_UrlRefresher(self.jobs, [chain]), clock=clock),
            *downloaders,
        ]
        self.update_control = update_control if update_control is not None else UpdateControl(self.store, clock=clock)
        job_source: JobSource = self.jobs if job_source_wrapper is None else job_source_wrapper(self.jobs)
        block_size = settings.receive_block_size

        def details(context: ReportContext) -> Mapping[str, str] | None:
            return freertos_status_details(context, block_size=block_size)

        self.engine = UpdateEngine(
            job_source=job_source,
            parsers=[chain],
            downloaders=self.downloaders,
            verifier=verifier,
            boot_control=boot_control,
            state_store=self.store,
            restart=restart,
            self_test=self_test,
            update_control=self.update_control,
            clock=clock,
            config=settings.engine,
            report_details=details,
        )

    def start(self) -> None:
        """Connect (if not connected yet) and start the engine: it resumes a persisted update first."""
        if not self.connection.is_connected:
            self.connection.connect()
        self.engine.start()

    def stop(self) -> None:
        """Stop the engine (a download resumes at the next start) and close the connection."""
        self.engine.stop()
        self.connection.close()

    def __enter__(self) -> AwsOrchestrator:
        self.start()
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.stop()

"""Job sources over the twin: MXChip ``firmware`` and Device Update ``deviceUpdate`` (ota_core ``JobSource``).

The source keeps the merged desired properties (document plus newer patches, merge-patch semantics) and
tells the engine when the watched section changes. Status reports go back as reported patches built by a
report builder (MXChip ``firmware`` or ADU ``agent``).
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from ota_core.errors import OtaError
from ota_core.models import JobEvent, JobEventKind, JobStatus, StatusReport
from ota_core.protocols import StateStore
from ota_jobs.azure._adu import (
    ADU_ACTION_CANCEL,
    AduAgentReporter,
    AduAgentState,
    AduInstallResult,
    AduResultCode,
    AduUpdateId,
    AduWorkflowTracker,
    WorkflowDecision,
    extract_service,
    is_installed,
    parse_service_request,
    parse_update_manifest,
    workflow_job_id,
)
from ota_jobs.azure._errors import AduDocumentError
from ota_jobs.azure._mxchip import FirmwareSubstatus, MxchipFirmwareParser, MxchipReporter
from ota_jobs.azure._twin_client import TwinClient
from ota_jobs.azure._twin_core import DesiredPatch, TwinDocument

__all__ = [
    "AduJobSource",
    "MxchipJobSource",
    "TwinJobSource",
    "merge_patch",
]

_log = logging.getLogger(__name__)


def merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """JSON merge: objects merge recursively, ``null`` deletes, anything else replaces."""
    result = dict(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merge_patch(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


class TwinJobSource:
    """Base job source: watches one desired key and turns its changes into ``JobEvent``s."""

    def __init__(self, client: TwinClient, key: str, *, report_timeout: float = 60.0) -> None:
        self.client = client
        self.key = key
        self.report_timeout = report_timeout
        self._desired: dict[str, Any] = {}
        self._version: int | None = None
        self._lock = threading.Lock()
        self._on_event: Callable[[JobEvent], None] | None = None
        self._seen_section: Any = None
        self._announced = False

    @property
    def desired(self) -> dict[str, Any]:
        """The merged desired properties as the device currently knows them."""
        with self._lock:
            return copy.deepcopy(self._desired)

    def start(self, on_event: Callable[[JobEvent], None]) -> None:
        """Register with the twin client and start it (subscribe, then GET)."""
        self._on_event = on_event
        self.client.on_document(self._on_document)
        self.client.on_desired(self._on_patch)
        self.client.start()

    def request_next(self) -> None:
        """Fetch the twin again (for example when an operator calls "check for updates now")."""
        self.client.get_twin()

    def stop(self) -> None:
        """Stop the twin client."""
        self.client.stop()

    def report(self, report: StatusReport) -> None:
        """Send the reported patch for ``report`` and wait until the hub accepts it."""
        for patch in self.build_reports(report):
            self.client.patch_reported(patch, timeout=self.report_timeout)

    def build_reports(self, report: StatusReport) -> list[Mapping[str, Any]]:
        """Reported patches for a status report (subclasses define the schema)."""
        raise NotImplementedError

    def _on_document(self, document: TwinDocument) -> None:
        with self._lock:
            self._desired = dict(document.desired)
            self._version = document.desired_version
        self._changed()

    def _on_patch(self, patch: DesiredPatch) -> None:
        with self._lock:
            self._desired = merge_patch(self._desired, patch.patch)
            self._version = patch.version
        self._changed()

    def _changed(self) -> None:
        with self._lock:
            section = copy.deepcopy(self._desired.get(self.key))
            version = self._version
            if section == self._seen_section and self._announced:
                return
            self._seen_section = section
            self._announced = True
        if section is None:
            self._emit(JobEvent(JobEventKind.NOTHING_PENDING))
            return
        try:
            event = self.interpret({self.key: section}, version)
        except OtaError as exc:
            _log.warning("ignoring desired %s: %s", self.key, exc)
            self.rejected(section, version, exc)
            return
        if event is not None:
            self._emit(event)

    def interpret(self, document: dict[str, Any], version: int | None) -> JobEvent | None:
        """Turn the watched section into an event, or ``None`` to ignore it."""
        return JobEvent(JobEventKind.NEW, document=document, attributes={"desired_version": version})

    def rejected(self, section: Any, version: int | None, error: OtaError) -> None:
        """Hook: the watched section was invalid (subclasses may report it)."""

    def _emit(self, event: JobEvent) -> None:
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:  # noqa: BLE001 - a handler bug must not stop the source
                _log.exception("job event handler failed")


class MxchipJobSource(TwinJobSource):
    """Watches desired ``firmware`` and reports ``firmware`` in the DevKit shape.

    ``StatusReport.details`` may carry ``pending`` (version), ``uri``, ``phase`` (download, verify,
    apply, reboot), ``substatus`` and ``started``/``ended`` (datetimes are taken from ``clock``).
    """

    def __init__(self, client: TwinClient, reporter: MxchipReporter, *,
                 parser: MxchipFirmwareParser | None = None, report_timeout: float = 60.0) -> None:
        super().__init__(client, "firmware", report_timeout=report_timeout)
        self.reporter = reporter
        self.parser = parser
        self._started_at: Any = None

    def interpret(self, document: dict[str, Any], version: int | None) -> JobEvent | None:
        """With a parser, a desired firmware that cannot be used is reported as ``Error`` at once
        (``URINotHTTPS`` for an http URI, as the DevKit does) instead of being handed to the engine."""
        if self.parser is not None:
            self.parser.decode(document)
        return super().interpret(document, version)

    def build_reports(self, report: StatusReport) -> list[Mapping[str, Any]]:
        """Map a status report onto the DevKit's statuses."""
        from ota_core.clock import SystemClock  # noqa: PLC0415

        now = SystemClock().now()
        details = report.details
        pending = details.get("pending", "")
        if report.status is JobStatus.SUCCEEDED:
            if "current" in details:
                self.reporter.current_version = details["current"]
            return [self.reporter.current()]
        if report.status in (JobStatus.FAILED, JobStatus.REJECTED, JobStatus.TIMED_OUT, JobStatus.CANCELED):
            if details.get("phase") == "rollback":
                return [self.reporter.rolled_back(pending, self.reporter.current_version)]
            return [self.reporter.error(pending, details.get("substatus", FirmwareSubstatus.DOWNLOAD_FAILED))]
        phase = details.get("phase", "download")
        if phase == "download":
            self._started_at = now
            return [self.reporter.downloading(pending, details.get("uri", ""), now)]
        started = self._started_at or now
        if phase == "verify":
            return [self.reporter.verifying(pending, started)]
        if phase == "reboot":
            return [self.reporter.rebooting(pending, started)]
        return [self.reporter.applying(pending, started, now)]

    def rejected(self, section: Any, version: int | None, error: OtaError) -> None:
        """Report ``Error`` with the DevKit substatus for an unusable desired firmware."""
        substatus = error.details.get("substatus")
        if error.code == "AZURE_MXCHIP_URI_NOT_HTTPS":
            substatus = FirmwareSubstatus.URI_NOT_HTTPS
        pending = section.get("fwVersion", "") if isinstance(section, Mapping) else ""
        patch = self.reporter.error(pending if isinstance(pending, str) else "", substatus or error.code)
        threading.Thread(target=self._send_quietly, args=(patch,), daemon=True).start()

    def _send_quietly(self, patch: Mapping[str, Any]) -> None:
        try:
            self.client.patch_reported(patch, timeout=self.report_timeout)
        except OtaError as exc:
            _log.warning("could not report the rejected firmware: %s", exc)


class AduJobSource(TwinJobSource):
    """Watches ``deviceUpdate.service``: applies the workflow rules, acknowledges the property, and
    reports ``agent`` state from status reports.

    ``installed_update_id`` is what the device runs now (persist it in the application). Decisions:
    START/RETRY/REPLACE/RESUME give a NEW event (job id: ``workflow_job_id``, the workflow id plus the retry
    time stamp of a retry), CANCEL a CANCELLED event for the running job; duplicates and cancels while idle
    only get the acknowledgement. The first request after ``start`` may RESUME a workflow that was still
    running when the device stopped.
    """

    STATE_NAME = "azure-adu-workflow"

    def __init__(self, client: TwinClient, reporter: AduAgentReporter, *,
                 tracker: AduWorkflowTracker | None = None,
                 installed_update_id: AduUpdateId | None = None, report_timeout: float = 60.0,
                 state_store: StateStore | None = None) -> None:
        super().__init__(client, "deviceUpdate", report_timeout=report_timeout)
        self.reporter = reporter
        self._state_store = state_store
        stored = state_store.load(self.STATE_NAME) if state_store is not None else None
        self.tracker = tracker or (AduWorkflowTracker.from_mapping(stored.data) if stored else AduWorkflowTracker())
        self.installed_update_id = installed_update_id
        self.last_decision: WorkflowDecision | None = None
        self._startup = True
        final = stored.data.get("final_state") if stored else None
        self._final_state = AduAgentState.FAILED if final == AduAgentState.FAILED else AduAgentState.IDLE

    def _persist(self) -> None:
        if self._state_store is not None:
            self._state_store.save(self.STATE_NAME, {**self.tracker.to_mapping(),
                                                     "final_state": int(self._final_state)})

    def start(self, on_event: Callable[[JobEvent], None]) -> None:
        """Start, then announce the agent with its installed update: DeploymentInProgress (with the workflow)
        when a workflow is still running (taken up again after a restart), else the state the last workflow
        ended in (Failed stays Failed across a restart until the next workflow; Idle otherwise)."""
        super().start(on_event)
        if self.tracker.running and self.tracker.current is not None:
            patch = self.reporter.agent(AduAgentState.DEPLOYMENT_IN_PROGRESS, workflow=self.tracker.current,
                                        installed_update_id=self.installed_update_id)
        else:
            patch = self.reporter.agent(self._final_state, installed_update_id=self.installed_update_id)
        self.client.patch_reported(patch, timeout=self.report_timeout)

    def interpret(self, document: dict[str, Any], version: int | None) -> JobEvent | None:
        """Apply the workflow rules to a new ``service`` value and acknowledge it."""
        service = extract_service(document)
        if service is None:
            return None
        request = parse_service_request(service)
        manifest = None
        if request.workflow.action != ADU_ACTION_CANCEL and request.update_manifest is not None:
            manifest = parse_update_manifest(request.update_manifest)
        running_job = None if self.tracker.current is None else workflow_job_id(self.tracker.current)
        startup, self._startup = self._startup, False
        decision = self.tracker.decide(request.workflow, startup=startup)
        self.last_decision = decision
        _log.info("deviceUpdate workflow %s action %d: %s", request.workflow.id, request.workflow.action,
                  decision.value)
        self._ack(service, version, 200, "")
        if decision in (WorkflowDecision.IGNORE_DUPLICATE, WorkflowDecision.IGNORE_CANCEL):
            self._persist()
            return None
        if manifest is not None and is_installed(manifest, self.installed_update_id):
            # Already installed (checked before any download, and at start-up): report success, stay idle.
            self.tracker.finished()
            self._final_state = AduAgentState.IDLE
            self._persist()
            self.last_decision = WorkflowDecision.IGNORE_DUPLICATE
            _log.info("update %s is already installed", manifest.update_id)
            result = AduInstallResult(AduResultCode.APPLY_SUCCESS, 0, "already installed")
            patch = self.reporter.agent(AduAgentState.IDLE, workflow=request.workflow,
                                        installed_update_id=self.installed_update_id, last_install_result=result)
            threading.Thread(target=self._send_quietly, args=(patch,), daemon=True).start()
            return None
        self._persist()
        if request.workflow.action == ADU_ACTION_CANCEL:
            return JobEvent(JobEventKind.CANCELLED, job_id=running_job or request.workflow.id,
                            attributes={"adu_decision": decision.value})
        return JobEvent(JobEventKind.NEW, job_id=workflow_job_id(request.workflow), document=document,
                        attributes={"desired_version": version, "adu_decision": decision.value})

    def rejected(self, section: Any, version: int | None, error: OtaError) -> None:
        """Reject an unusable ``service`` with ``ac`` 406."""
        service = section.get("service") if isinstance(section, Mapping) else None
        if isinstance(service, Mapping) and isinstance(error, AduDocumentError):
            self._ack(service, version, 406, error.message[:128])

    def _ack(self, service: Mapping[str, Any], version: int | None, status: int, description: str) -> None:
        patch = self.reporter.ack(service, version or 0, status=status, description=description)
        threading.Thread(target=self._send_quietly, args=(patch,), daemon=True).start()

    def _send_quietly(self, patch: Mapping[str, Any]) -> None:
        try:
            self.client.patch_reported(patch, timeout=self.report_timeout)
        except OtaError as exc:
            _log.warning("could not send a deviceUpdate report: %s", exc)

    def build_reports(self, report: StatusReport) -> list[Mapping[str, Any]]:
        """``agent``: DeploymentInProgress while running, Idle + installedUpdateId on success, Failed."""
        workflow = self.tracker.current
        details = report.details
        if report.status is JobStatus.IN_PROGRESS:
            return [self.reporter.agent(AduAgentState.DEPLOYMENT_IN_PROGRESS, workflow=workflow,
                                        installed_update_id=self.installed_update_id)]
        self.tracker.finished()
        failed = report.status in (JobStatus.FAILED, JobStatus.REJECTED, JobStatus.TIMED_OUT)
        self._final_state = AduAgentState.FAILED if failed else AduAgentState.IDLE
        self._persist()
        if report.status is JobStatus.SUCCEEDED:
            if "provider" in details and "name" in details and "version" in details:
                self.installed_update_id = AduUpdateId(
                    details["provider"], details["name"], details["version"])
            result = AduInstallResult(AduResultCode.APPLY_SUCCESS, 0, details.get("reason", ""),
                                      ((AduResultCode.APPLY_SUCCESS, 0, ""),))
            return [self.reporter.agent(AduAgentState.IDLE, workflow=workflow,
                                        installed_update_id=self.installed_update_id,
                                        last_install_result=result)]
        cancelled = report.status is JobStatus.CANCELED
        code = AduResultCode.FAILURE_CANCELLED if cancelled else AduResultCode.FAILURE
        extended = int(details.get("extended_result_code", "0") or 0)
        result = AduInstallResult(code, extended, details.get("reason", details.get("code", ""))[:256])
        state = AduAgentState.IDLE if report.status is JobStatus.CANCELED else AduAgentState.FAILED
        return [self.reporter.agent(state, workflow=workflow, installed_update_id=self.installed_update_id,
                                    last_install_result=result)]

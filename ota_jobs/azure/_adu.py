"""Device Update for IoT Hub: the ``deviceUpdate`` Plug and Play component on the device side.

* ``parse_service_request``: the desired ``deviceUpdate.service`` property (workflow, the update manifest
  as a string, its JWS signature, file URLs).
* ``parse_update_manifest``: update manifest v4/v5 (update id, compatibility, steps, files with sizes and
  base64 SHA-256 hashes; ``fileName`` as the service sends it, ``filename`` as the docs spell it).
* ``AduParser``: a job parser that turns a request into an ``UpdatePlan``. The plan carries the manifest
  string (exactly as received) and the JWS in ``attributes["adu_manifest"]`` and
  ``attributes["adu_manifest_signature"]`` and is marked ``attributes["adu_trusted"] = False``: the
  signature check belongs to ota_verify, and no file may be fetched before it passes.
* ``AduWorkflowTracker``: what a new request means (start, retry, replace, cancel, duplicate to ignore).
* ``AduAgentReporter``: the ``agent`` reported property and the property acknowledgement.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import logging
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

import attrs

from ota_core.models import FileLocation, FileTarget, Integrity, JobEvent, LocationKind, UpdatePlan
from ota_jobs.azure._errors import AduDocumentError, AduManifestError
from ota_jobs.azure._json import json_depth, load_json

__all__ = [
    "ADU_ACTION_CANCEL",
    "ADU_ACTION_PROCESS",
    "ADU_COMPONENT",
    "ADU_CONTRACT_MODEL_ID",
    "AduAgentReporter",
    "AduAgentState",
    "AduFile",
    "AduInstallResult",
    "AduManifest",
    "AduParser",
    "AduResultCode",
    "AduServiceRequest",
    "AduStep",
    "AduUpdateId",
    "AduWorkflow",
    "AduWorkflowTracker",
    "WorkflowDecision",
    "extract_service",
    "parse_service_request",
    "parse_update_manifest",
    "workflow_job_id",
]

_log = logging.getLogger(__name__)

ADU_COMPONENT = "deviceUpdate"
ADU_ACTION_PROCESS = 3
ADU_ACTION_CANCEL = 255
ADU_CONTRACT_MODEL_ID = "dtmi:azure:iot:deviceUpdateContractModel;3"
_MAX_MANIFEST = 64 * 1024
_MAX_SIGNATURE = 16 * 1024
_MAX_URL = 4096
_MAX_FILES = 10
_MAX_STEPS = 10
_MAX_FILE_SIZE = 2 * 1024**3
_NAME_RE = re.compile(r"^[A-Za-z0-9.-]{1,64}$")
_VERSION_RE = re.compile(r"^\d{1,10}(?:\.\d{1,10}){1,3}$")
_ID_RE = re.compile(r"^[A-Za-z0-9._~-]{1,128}$")
_HANDLER_RE = re.compile(r"^\S+/\S+:\d{1,5}$")


class AduAgentState(enum.IntEnum):
    """``agent.state`` values the service understands."""

    IDLE = 0
    DEPLOYMENT_IN_PROGRESS = 6
    FAILED = 255


class AduResultCode(enum.IntEnum):
    """The ``resultCode`` values this library reports (subset of the agent's list)."""

    FAILURE = 0
    FAILURE_CANCELLED = -1
    SUCCESS = 1
    DOWNLOAD_SUCCESS = 500
    DOWNLOAD_SKIPPED_ALREADY_INSTALLED = 503
    INSTALL_SUCCESS = 600
    APPLY_SUCCESS = 700
    CANCEL_SUCCESS = 800
    IS_INSTALLED_INSTALLED = 900
    IS_INSTALLED_NOT_INSTALLED = 901


def _str(obj: Mapping[str, Any], key: str, error: type[AduDocumentError], *, limit: int = 1024,
         required: bool = True) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise error(f"{key} is missing")
        return None
    if not isinstance(value, str) or not value or len(value) > limit:
        raise error(f"{key} must be a non-empty string of at most {limit} characters")
    return value


def _obj(value: Any, what: str, error: type[AduDocumentError]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise error(f"{what} must be a JSON object")
    return value


# --- update id and manifest ----------------------------------------------------------------------


@attrs.frozen
class AduUpdateId:
    """provider/name/version of an update."""

    provider: str
    name: str
    version: str

    @classmethod
    def from_json(cls, value: Any, error: type[AduDocumentError] = AduManifestError) -> AduUpdateId:
        """Read and check an ``updateId`` object."""
        obj = _obj(value, "updateId", error)
        provider = _str(obj, "provider", error, limit=64)
        name = _str(obj, "name", error, limit=64)
        version = _str(obj, "version", error, limit=64)
        assert provider is not None and name is not None and version is not None
        if not _NAME_RE.match(provider) or not _NAME_RE.match(name):
            raise error("updateId provider and name must match [A-Za-z0-9.-]{1,64}")
        if not _VERSION_RE.match(version) or any(int(p) > 2147483647 for p in version.split(".")):
            raise error(f"updateId version {version!r} must have 2 to 4 numeric parts")
        return cls(provider, name, version)

    def to_json(self) -> dict[str, str]:
        """The object form."""
        return {"provider": self.provider, "name": self.name, "version": self.version}

    def to_installed_string(self) -> str:
        """The JSON string form used by ``agent.installedUpdateId``."""
        return json.dumps(self.to_json(), separators=(",", ":"))


@attrs.frozen
class AduFile:
    """One file of the update manifest."""

    file_id: str
    file_name: str
    size: int
    sha256: bytes
    hashes: Mapping[str, str]


@attrs.frozen
class AduStep:
    """One instruction step: inline (handler, files, properties) or a reference to a detached manifest."""

    kind: str
    handler: str | None = None
    files: tuple[str, ...] = ()
    handler_properties: Mapping[str, Any] = attrs.field(factory=dict)
    detached_manifest_file_id: str | None = None

    @property
    def installed_criteria(self) -> str | None:
        """``handlerProperties.installedCriteria`` if present."""
        value = self.handler_properties.get("installedCriteria")
        return value if isinstance(value, str) else None


@attrs.frozen
class AduManifest:
    """A parsed update manifest (v4 or v5)."""

    manifest_version: str
    update_id: AduUpdateId
    compatibility: tuple[Mapping[str, str], ...]
    steps: tuple[AduStep, ...]
    files: Mapping[str, AduFile]
    created: str | None
    detached_manifest_file_id: str | None = None


def _parse_file(file_id: str, value: Any) -> AduFile:
    obj = _obj(value, f"files.{file_id}", AduManifestError)
    name = obj.get("fileName", obj.get("filename"))
    if not isinstance(name, str) or not name or len(name) > 255 or "/" in name or name in (".", ".."):
        raise AduManifestError(f"files.{file_id} needs a plain fileName of at most 255 characters")
    size = obj.get("sizeInBytes")
    if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= _MAX_FILE_SIZE:
        raise AduManifestError(f"files.{file_id}.sizeInBytes must be 1..{_MAX_FILE_SIZE}")
    hashes = _obj(obj.get("hashes"), f"files.{file_id}.hashes", AduManifestError)
    sha = hashes.get("sha256")
    if not isinstance(sha, str) or len(sha) > 64:
        raise AduManifestError(f"files.{file_id} has no sha256 hash")
    try:
        digest = base64.b64decode(sha.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise AduManifestError(f"files.{file_id}.hashes.sha256 is not base64") from exc
    if len(digest) != 32:
        raise AduManifestError(f"files.{file_id}.hashes.sha256 is not a SHA-256 digest")
    clean = {str(k): v for k, v in hashes.items() if isinstance(v, str)}
    return AduFile(file_id, name, size, digest, clean)


def _parse_step(index: int, value: Any, file_ids: set[str]) -> AduStep:
    obj = _obj(value, f"steps[{index}]", AduManifestError)
    kind = obj.get("type", "inline")
    if kind == "reference":
        ref = obj.get("detachedManifestFileId")
        if not isinstance(ref, str) or ref not in file_ids:
            raise AduManifestError(f"steps[{index}] references a detached manifest that is not in files")
        return AduStep("reference", detached_manifest_file_id=ref)
    if kind != "inline":
        raise AduManifestError(f"steps[{index}] has unknown type {str(kind)[:20]!r}")
    handler = _str(obj, "handler", AduManifestError, limit=32)
    assert handler is not None
    if not _HANDLER_RE.match(handler):
        raise AduManifestError(f"steps[{index}].handler {handler!r} is not provider/name:version")
    files = obj.get("files", [])
    if not isinstance(files, list) or len(files) > _MAX_FILES or not all(isinstance(f, str) for f in files):
        raise AduManifestError(f"steps[{index}].files must be a list of at most 10 file ids")
    missing = [f for f in files if f not in file_ids]
    if missing:
        raise AduManifestError(f"steps[{index}] names files not in the manifest: {missing[:3]}")
    props = obj.get("handlerProperties", {})
    return AduStep("inline", handler, tuple(files), dict(_obj(props, "handlerProperties", AduManifestError)))


def parse_update_manifest(text: str | bytes) -> AduManifest:
    """Parse an update manifest (the string the service signed); raise ``AduManifestError`` if invalid."""
    body = load_json(text, AduManifestError, limit=_MAX_MANIFEST, what="update manifest")
    obj = _obj(body, "the update manifest", AduManifestError)
    if json_depth(obj) > 10:
        raise AduManifestError("the update manifest nests too deep")
    version = obj.get("manifestVersion")
    if version not in ("4", "5", "4.0", "5.0"):
        raise AduManifestError(f"unsupported manifestVersion {str(version)[:10]!r} (4 and 5 are supported)")
    update_id = AduUpdateId.from_json(obj.get("updateId"))
    files_obj = _obj(obj.get("files", {}), "files", AduManifestError)
    if len(files_obj) > _MAX_FILES * _MAX_STEPS:
        raise AduManifestError("too many files")
    files = {}
    for file_id, value in files_obj.items():
        if not _ID_RE.match(file_id):
            raise AduManifestError(f"invalid file id {file_id[:40]!r}")
        files[file_id] = _parse_file(file_id, value)
    detached = obj.get("detachedManifestFileId")
    if detached is not None:
        if not isinstance(detached, str) or detached not in files:
            raise AduManifestError("detachedManifestFileId does not name a file")
        return AduManifest(str(version), update_id, (), (), files, None, detached)
    compat_list = obj.get("compatibility", [])
    if not isinstance(compat_list, list) or len(compat_list) > 10:
        raise AduManifestError("compatibility must be a list")
    compatibility: list[Mapping[str, str]] = []
    for entry in compat_list:
        entry_obj = _obj(entry, "compatibility entry", AduManifestError)
        if not 1 <= len(entry_obj) <= 5 or not all(isinstance(v, str) and 0 < len(v) <= 64
                                                    and 0 < len(k) <= 32 for k, v in entry_obj.items()):
            raise AduManifestError("a compatibility entry has 1-5 string properties")
        compatibility.append(dict(entry_obj))
    instructions = _obj(obj.get("instructions"), "instructions", AduManifestError)
    steps_list = instructions.get("steps")
    if not isinstance(steps_list, list) or not 1 <= len(steps_list) <= _MAX_STEPS:
        raise AduManifestError("instructions.steps must hold 1 to 10 steps")
    steps = tuple(_parse_step(i, s, set(files)) for i, s in enumerate(steps_list))
    created = obj.get("createdDateTime")
    return AduManifest(str(version), update_id, tuple(compatibility), steps, files,
                       created if isinstance(created, str) else None)


# --- service request -----------------------------------------------------------------------------


@attrs.frozen
class AduWorkflow:
    """``workflow``: the action, the deployment's workflow id and the retry time stamp (if any)."""

    action: int
    id: str
    retry_timestamp: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The form echoed in ``agent.workflow``."""
        out: dict[str, Any] = {"action": self.action, "id": self.id}
        if self.retry_timestamp is not None:
            out["retryTimestamp"] = self.retry_timestamp
        return out


@attrs.frozen
class AduServiceRequest:
    """The desired ``deviceUpdate.service`` property."""

    workflow: AduWorkflow
    update_manifest: str | None
    signature: str | None
    file_urls: Mapping[str, str]
    root_key_package_url: str | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict)


def extract_service(document: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """Find ``deviceUpdate.service`` in a full twin, a desired section or a bare patch."""
    if not isinstance(document, Mapping):
        raise AduDocumentError("the document must be a JSON object")
    desired = document.get("desired")
    if isinstance(desired, Mapping) and ADU_COMPONENT in desired:
        document = desired
    component = document.get(ADU_COMPONENT)
    if component is None:
        if isinstance(document.get("service"), Mapping) and "workflow" in document["service"]:
            component = document  # the component's own body
        else:
            return None
    component = _obj(component, ADU_COMPONENT, AduDocumentError)
    service = component.get("service")
    if service is None:
        return None
    return _obj(service, "deviceUpdate.service", AduDocumentError)


def _url(value: str, key: str) -> str:
    if len(value) > _MAX_URL:
        raise AduDocumentError(f"fileUrls.{key} is too long")
    try:
        parsed = urllib.parse.urlsplit(value)
    except ValueError as exc:
        raise AduDocumentError(f"fileUrls.{key} is not a URL") from exc
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise AduDocumentError(f"fileUrls.{key} must be an http(s) URL")
    return value


def parse_service_request(service: Mapping[str, Any]) -> AduServiceRequest:
    """Check a ``service`` object. Unknown workflow actions raise ``AduDocumentError``."""
    service = _obj(service, "deviceUpdate.service", AduDocumentError)
    workflow_obj = _obj(service.get("workflow"), "workflow", AduDocumentError)
    action = workflow_obj.get("action")
    if isinstance(action, bool) or action not in (ADU_ACTION_PROCESS, ADU_ACTION_CANCEL):
        raise AduDocumentError(f"unsupported workflow action {str(action)[:12]}")
    workflow_id = _str(workflow_obj, "id", AduDocumentError, limit=128)
    assert workflow_id is not None
    retry = _str(workflow_obj, "retryTimestamp", AduDocumentError, limit=64, required=False)
    workflow = AduWorkflow(int(action), workflow_id, retry)
    if action == ADU_ACTION_CANCEL:
        return AduServiceRequest(workflow, None, None, {}, raw=dict(service))
    manifest = _str(service, "updateManifest", AduDocumentError, limit=_MAX_MANIFEST)
    signature = _str(service, "updateManifestSignature", AduDocumentError, limit=_MAX_SIGNATURE)
    urls_obj = _obj(service.get("fileUrls", {}), "fileUrls", AduDocumentError)
    urls: dict[str, str] = {}
    for key, value in urls_obj.items():
        if value is None:
            continue  # removed in a later patch
        if not isinstance(value, str):
            raise AduDocumentError(f"fileUrls.{key[:40]} must be a string")
        urls[key] = _url(value, key[:40])
    root_url = _str(service, "rootKeyPackageUrl", AduDocumentError, limit=_MAX_URL, required=False)
    return AduServiceRequest(workflow, manifest, signature, urls, root_url, raw=dict(service))


# --- parser --------------------------------------------------------------------------------------


class AduParser:
    """Job parser for the Device Update component.

    ``None`` for documents without ``deviceUpdate.service`` and for cancel requests (the job source turns
    those into cancel events). The plan is NOT trusted: ``attributes["adu_trusted"]`` is ``False`` and the
    orchestrator must have ota_verify check ``adu_manifest`` against ``adu_manifest_signature`` first.
    URLs for files the manifest does not list are ignored with a log line; a manifest file without a URL
    is an error. ``allow_http`` defaults to True because the service's file URLs are plain http (integrity
    comes from the signed hashes).
    """

    name = "azure-adu"

    def __init__(self, *, allow_http: bool = True) -> None:
        self._allow_http = allow_http

    def parse(self, event: JobEvent) -> UpdatePlan | None:
        """Build the plan for an action-3 request."""
        service = extract_service(event.document)
        if service is None:
            return None
        request = parse_service_request(service)
        if request.workflow.action != ADU_ACTION_PROCESS:
            return None
        return self.plan_for(request, job_id=event.job_id)

    def plan_for(self, request: AduServiceRequest, *, job_id: str | None = None) -> UpdatePlan:
        """The untrusted plan of a process request (manifest parsed, URLs matched to manifest files);
        ``job_id`` defaults to ``workflow_job_id(request.workflow)``."""
        assert request.update_manifest is not None and request.signature is not None
        manifest = parse_update_manifest(request.update_manifest)
        extra = sorted(set(request.file_urls) - set(manifest.files))
        if extra:
            _log.warning("ignoring file URLs not in the update manifest: %s", extra[:5])
        targets = []
        for file_id, entry in manifest.files.items():
            url = request.file_urls.get(file_id)
            if url is None:
                raise AduManifestError(f"manifest file {file_id} has no URL in fileUrls")
            if not self._allow_http and not url.startswith("https:"):
                raise AduDocumentError(f"fileUrls.{file_id} is not https")
            targets.append(FileTarget(
                name=entry.file_name, size=entry.size,
                locations=(FileLocation(LocationKind.HTTP, url),),
                integrity=Integrity(digests={"sha256": entry.sha256}),
            ))
        return UpdatePlan(
            job_id=job_id or workflow_job_id(request.workflow),
            origin=self.name,
            files=tuple(targets),
            attributes={
                "adu_manifest": request.update_manifest,
                "adu_manifest_signature": request.signature,
                "adu_trusted": False,
                "adu_workflow": request.workflow.to_json(),
                "adu_update_id": manifest.update_id.to_json(),
                "adu_file_ids": tuple(manifest.files),
                "adu_installed_criteria": next(
                    (s.installed_criteria for s in manifest.steps if s.installed_criteria), None),
                "adu_handlers": tuple(s.handler for s in manifest.steps if s.handler),
            },
        )


# --- workflow rules ------------------------------------------------------------------------------


class WorkflowDecision(enum.Enum):
    """What a received request means for the agent."""

    START = "start"
    RETRY = "retry"
    REPLACE = "replace"
    CANCEL = "cancel"
    IGNORE_DUPLICATE = "ignore-duplicate"
    IGNORE_CANCEL = "ignore-cancel"
    RESUME = "resume"


class AduWorkflowTracker:
    """The agent's workflow rules, with state that can be saved and restored across restarts.

    * same workflow id again: a retry only if ``retryTimestamp`` is new, otherwise a duplicate (a token
      refresh reconnect re-delivers the same desired properties);
    * a different id while one runs: it replaces the running one;
    * cancel: cancels the running one, or nothing to do when idle (duplicate cancels are ignored);
    * at start-up (``startup=True``), the same id that was still running when the device stopped is
      RESUME: the agent takes the workflow up again (the "is it installed?" check comes first). A
      finished workflow stays finished, so a device that rolled back does not install again in a loop.
    """

    def __init__(self) -> None:
        self.current: AduWorkflow | None = None
        self.running = False

    def decide(self, workflow: AduWorkflow, *, startup: bool = False) -> WorkflowDecision:
        """Apply the rules to ``workflow`` and update the state (``startup``: the first request seen after
        a restart)."""
        if workflow.action == ADU_ACTION_CANCEL:
            if self.running:
                self.running = False
                return WorkflowDecision.CANCEL
            return WorkflowDecision.IGNORE_CANCEL
        current = self.current
        if current is not None and current.id == workflow.id:
            if workflow.retry_timestamp is not None and workflow.retry_timestamp != current.retry_timestamp:
                self.current, self.running = workflow, True
                return WorkflowDecision.RETRY
            if startup and self.running:
                return WorkflowDecision.RESUME
            return WorkflowDecision.IGNORE_DUPLICATE
        decision = WorkflowDecision.REPLACE if self.running else WorkflowDecision.START
        self.current, self.running = workflow, True
        return decision

    def finished(self) -> None:
        """The running workflow ended (success or failure); the same id will not start again."""
        self.running = False

    def to_mapping(self) -> dict[str, Any]:
        """State for a crash-safe store."""
        return {"workflow": None if self.current is None else self.current.to_json(), "running": self.running}

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> AduWorkflowTracker:
        """Restore state written by ``to_mapping``; a damaged record gives a fresh tracker."""
        tracker = cls()
        workflow = data.get("workflow") if isinstance(data, Mapping) else None
        if isinstance(workflow, Mapping):
            try:
                parsed = parse_service_request({"workflow": workflow, "updateManifest": "-",
                                                "updateManifestSignature": "-"})
            except AduDocumentError:
                _log.warning("ignoring a damaged saved workflow")
                return tracker
            tracker.current = parsed.workflow
            tracker.running = bool(data.get("running"))
        return tracker


def workflow_job_id(workflow: AduWorkflow) -> str:
    """The engine job id of a workflow: its id, plus the retry time stamp for a retry, so that a retry of a
    finished deployment is a new job (an engine never runs a finished job id again)."""
    if workflow.retry_timestamp is None:
        return workflow.id
    return f"{workflow.id}@{workflow.retry_timestamp}"


def is_installed(manifest: AduManifest,
                 installed_update_id: AduUpdateId | str | Mapping[str, Any] | None) -> bool:
    """True when the device's installed update id equals the manifest's (the check before any download)."""
    if installed_update_id is None:
        return False
    if isinstance(installed_update_id, AduUpdateId):
        return installed_update_id == manifest.update_id
    value: Any = installed_update_id
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return False
    try:
        return AduUpdateId.from_json(value) == manifest.update_id
    except AduDocumentError:
        return False


# --- reports -------------------------------------------------------------------------------------


@attrs.frozen
class AduInstallResult:
    """``lastInstallResult``: overall and per-step result codes."""

    result_code: int
    extended_result_code: int = 0
    result_details: str = ""
    step_results: tuple[tuple[int, int, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The reported form (``stepResults`` keyed ``step_0``...)."""
        out: dict[str, Any] = {
            "resultCode": self.result_code,
            "extendedResultCode": _signed32(self.extended_result_code),
            "resultDetails": self.result_details,
        }
        if self.step_results:
            out["stepResults"] = {
                f"step_{i}": {"resultCode": c, "extendedResultCode": _signed32(e), "resultDetails": d}
                for i, (c, e, d) in enumerate(self.step_results)
            }
        return out


def _signed32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - 0x100000000 if value & 0x80000000 else value


class AduAgentReporter:
    """Builds the ``deviceUpdate`` reported properties: ``agent`` and the acknowledgement of ``service``."""

    def __init__(self, manufacturer: str, model: str, *, contract_model_id: str = ADU_CONTRACT_MODEL_ID,
                 agent_version: str = "DU;agent/1.1.0", extra_properties: Mapping[str, str] | None = None,
                 compat_property_names: str = "manufacturer,model") -> None:
        if len([n for n in compat_property_names.split(",") if n]) > 5:
            raise AduDocumentError("at most 5 compatibility property names")
        self.device_properties: dict[str, str] = {
            "manufacturer": manufacturer, "model": model,
            "contractModelId": contract_model_id, "aduVer": agent_version,
        }
        self.device_properties.update(extra_properties or {})
        self.compat_property_names = compat_property_names

    def agent(self, state: AduAgentState, *, workflow: AduWorkflow | None = None,
              installed_update_id: AduUpdateId | None = None,
              last_install_result: AduInstallResult | None = None) -> dict[str, Any]:
        """The ``agent`` reported patch (``installedUpdateId`` as a JSON string)."""
        agent: dict[str, Any] = {
            "deviceProperties": dict(self.device_properties),
            "compatPropertyNames": self.compat_property_names,
        }
        if last_install_result is not None:
            agent["lastInstallResult"] = last_install_result.to_json()
        agent["state"] = int(state)
        if workflow is not None:
            agent["workflow"] = workflow.to_json()
        if installed_update_id is not None:
            agent["installedUpdateId"] = installed_update_id.to_installed_string()
        return {ADU_COMPONENT: {"__t": "c", "agent": agent}}

    @staticmethod
    def ack(service: Mapping[str, Any], desired_version: int, *, status: int = 200,
            description: str = "") -> dict[str, Any]:
        """Acknowledge the ``service`` property (200 accept, 406 reject); the signature and URLs are
        blanked to save twin space, as the reference agent does."""
        value = dict(service)
        if "updateManifestSignature" in value:
            value["updateManifestSignature"] = None
        if "fileUrls" in value:
            value["fileUrls"] = None
        return {ADU_COMPONENT: {"__t": "c", "service": {
            "value": value, "ac": status, "ad": description, "av": desired_version}}}

"""Device Update: service requests, update manifests v4/v5, workflow rules, agent reports and acks."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from ota_core.errors import OtaError
from ota_core.models import JobEvent, JobEventKind
from ota_jobs.azure import (
    AduAgentReporter,
    AduAgentState,
    AduDocumentError,
    AduInstallResult,
    AduManifestError,
    AduParser,
    AduUpdateId,
    AduWorkflow,
    AduWorkflowTracker,
    WorkflowDecision,
    extract_service,
    is_installed,
    parse_service_request,
    parse_update_manifest,
    workflow_job_id,
)
from ota_verify import AduManifestVerifier, PlanVerifier

DATA = Path(__file__).resolve().parents[1] / "data" / "azure"


def load(name: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads((DATA / name).read_text())
    return value


def test_startup_vector_v4_with_reference_step() -> None:
    service = load("adu_startupworkflowdata_updateManifest.json")
    request = parse_service_request(service)
    assert request.workflow == AduWorkflow(3, "test-workflow-id")
    manifest = parse_update_manifest(request.update_manifest or "")
    assert manifest.manifest_version == "4"
    assert manifest.update_id == AduUpdateId("Contoso", "Virtual-Vacuum", "20.0")
    assert manifest.steps[0].handler == "microsoft/apt:1"
    assert manifest.steps[0].installed_criteria == "apt-update-tree-1.0"
    assert manifest.steps[1].kind == "reference"
    assert manifest.steps[1].detached_manifest_file_id == "f222b9ffefaaac577"
    assert manifest.files["f222b9ffefaaac577"].size == 1031
    plan = AduParser().parse(JobEvent(JobEventKind.NEW, document={"deviceUpdate": {"__t": "c", "service": service}}))
    assert plan is not None and plan.job_id == "test-workflow-id" and plan.origin == "azure-adu"
    assert len(plan.files) == 2  # the two extra URLs (detached manifest files) are ignored
    assert plan.attributes["adu_trusted"] is False
    assert plan.attributes["adu_manifest"] == request.update_manifest
    assert plan.attributes["adu_manifest_signature"] == service["updateManifestSignature"]
    # the hand-over: the JWS payload names the SHA-256 of exactly these bytes
    payload = plan.attributes["adu_manifest_signature"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert (
        claims["sha256"] == base64.b64encode(hashlib.sha256(plan.attributes["adu_manifest"].encode()).digest()).decode()
    )


def test_request_vector_v5() -> None:
    body = load("adu_request_payload.json")
    service = extract_service(body)
    assert service is not None
    plan = AduParser().parse(JobEvent(JobEventKind.NEW, document={"desired": {"deviceUpdate": body}}))
    assert plan is not None
    (target,) = plan.files
    assert target.name == "iot-middleware-sample-adu-v1.1" and target.size == 844976
    assert target.integrity.digests["sha256"] == base64.b64decode("xsoCnYAMkZZ7m9RL9Vyg9jKfFehCNxyuPFaJVM/WBi0=")
    assert plan.attributes["adu_installed_criteria"] == "1.0"
    manifest = parse_update_manifest((DATA / "adu_update_manifest.json").read_bytes())
    assert manifest.manifest_version == "5" and manifest.compatibility[0]["deviceModel"] == "Foobar"
    # negative vector: the signed hash does not match this manifest; the parser leaves that to ota_verify
    payload = body["service"]["updateManifestSignature"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    actual = base64.b64encode(hashlib.sha256(body["service"]["updateManifest"].encode()).digest()).decode()
    assert claims["sha256"] != actual and plan.attributes["adu_trusted"] is False
    # handed to ota_verify, the edited manifest is refused before any download
    with pytest.raises(OtaError):
        PlanVerifier().check_plan(plan)
    good = AduParser().parse(
        JobEvent(
            JobEventKind.NEW,
            document={"deviceUpdate": {"service": load("adu_startupworkflowdata_updateManifest.json")}},
        )
    )
    assert good is not None
    verified = AduManifestVerifier().verify(good.attributes["adu_manifest"], good.attributes["adu_manifest_signature"])
    assert verified.version == "20.0"


def test_docs_spelling_filename_and_detached() -> None:
    manifest = parse_update_manifest(
        json.dumps(
            {
                "manifestVersion": "4",
                "updateId": {"provider": "Contoso", "name": "Toaster", "version": "1.0"},
                "detachedManifestFileId": "fileId1",
                "files": {
                    "fileId1": {
                        "filename": "m.json",
                        "sizeInBytes": 2048,
                        "hashes": {"sha256": "789s9PDfX4uA9wFUubyC30BWkLFbgmpkpmz1fEdqo2U="},
                    }
                },
            }
        )
    )
    assert manifest.detached_manifest_file_id == "fileId1" and manifest.files["fileId1"].file_name == "m.json"


GOOD: dict[str, Any] = json.loads((DATA / "adu_update_manifest.json").read_text())


def mutate(path: list[Any], value: Any) -> str:
    doc = copy.deepcopy(GOOD)
    target = doc
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return json.dumps(doc)


FILE = ["files", "f2f4a804ca17afbae"]


@pytest.mark.parametrize(
    "text",
    [
        "{",
        "[]",
        "null",
        mutate(["manifestVersion"], "3"),
        mutate(["updateId"], KeyError),
        mutate(["updateId", "provider"], "bad provider"),
        mutate(["updateId", "version"], "1"),
        mutate(["updateId", "version"], "1.99999999999"),
        mutate(["files"], []),
        mutate([*FILE, "fileName"], "../x"),
        mutate([*FILE, "sizeInBytes"], 0),
        mutate([*FILE, "sizeInBytes"], "1"),
        mutate([*FILE, "hashes"], {}),
        mutate([*FILE, "hashes", "sha256"], "!!"),
        mutate([*FILE, "hashes", "sha256"], "AAAA"),
        mutate(["instructions"], KeyError),
        mutate(["instructions", "steps"], []),
        mutate(["instructions", "steps", 0, "handler"], "nohandler"),
        mutate(["instructions", "steps", 0, "files"], ["missing"]),
        mutate(["instructions", "steps", 0, "type"], "weird"),
        mutate(["instructions", "steps", 0], {"type": "reference", "detachedManifestFileId": "nope"}),
        mutate(["compatibility"], [{}]),
        mutate(["compatibility"], "x"),
        mutate(["files", "bad id!"], {}),
        mutate(["detachedManifestFileId"], "nope"),
        mutate(["instructions", "steps", 0, "handlerProperties"], []),
    ],
)
def test_bad_manifests(text: str) -> None:
    with pytest.raises(AduManifestError):
        parse_update_manifest(text)


def service(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = copy.deepcopy(load("adu_request_payload.json")["service"])
    base.update(over)
    return base


@pytest.mark.parametrize(
    "bad",
    [
        service(workflow={"action": 0, "id": "x"}),
        service(workflow={"action": True, "id": "x"}),
        service(workflow={"action": 3}),
        service(workflow=[]),
        service(updateManifest=None),
        service(updateManifestSignature=5),
        service(fileUrls=[]),
        service(fileUrls={"a": 5}),
        service(fileUrls={"a": "ftp://h/x"}),
        service(fileUrls={"a": "http://[bad"}),
        service(fileUrls={"a": "http://h/" + "x" * 5000}),
        service(workflow={"action": 3, "id": "x", "retryTimestamp": 1}),
    ],
)
def test_bad_service(bad: dict[str, Any]) -> None:
    with pytest.raises(AduDocumentError):
        parse_service_request(bad)


def test_parser_edge_cases() -> None:
    parser = AduParser()
    assert parser.parse(JobEvent(JobEventKind.NEW, document={"other": 1})) is None
    assert parser.parse(JobEvent(JobEventKind.NEW, document={"deviceUpdate": {"__t": "c"}})) is None
    cancel = {"deviceUpdate": {"service": {"workflow": {"action": 255, "id": "w"}}}}
    assert parser.parse(JobEvent(JobEventKind.NEW, document=cancel)) is None
    with pytest.raises(AduDocumentError):
        extract_service({"deviceUpdate": 5})
    with pytest.raises(AduDocumentError):
        extract_service([])  # type: ignore[arg-type]
    missing_url = service(fileUrls={"other": "http://h/x", "gone": None})
    with pytest.raises(AduManifestError):
        parser.parse(JobEvent(JobEventKind.NEW, document={"deviceUpdate": {"service": missing_url}}))
    with pytest.raises(AduDocumentError):
        AduParser(allow_http=False).parse(JobEvent(JobEventKind.NEW, document={"deviceUpdate": {"service": service()}}))


def test_workflow_rules() -> None:
    t = AduWorkflowTracker()
    assert t.decide(AduWorkflow(255, "w0")) is WorkflowDecision.IGNORE_CANCEL
    assert t.decide(AduWorkflow(3, "w1")) is WorkflowDecision.START
    assert t.decide(AduWorkflow(3, "w1")) is WorkflowDecision.IGNORE_DUPLICATE
    assert t.decide(AduWorkflow(3, "w1", "2022-01-26T11:33:29Z")) is WorkflowDecision.RETRY
    assert t.decide(AduWorkflow(3, "w1", "2022-01-26T11:33:29Z")) is WorkflowDecision.IGNORE_DUPLICATE
    assert t.decide(AduWorkflow(3, "w2")) is WorkflowDecision.REPLACE
    assert t.decide(AduWorkflow(255, "w2")) is WorkflowDecision.CANCEL
    assert t.decide(AduWorkflow(255, "w2")) is WorkflowDecision.IGNORE_CANCEL
    t.decide(AduWorkflow(3, "w3"))
    t.finished()
    assert t.decide(AduWorkflow(3, "w3")) is WorkflowDecision.IGNORE_DUPLICATE
    restored = AduWorkflowTracker.from_mapping(t.to_mapping())
    assert restored.current == t.current and restored.running == t.running
    assert AduWorkflowTracker.from_mapping({"workflow": {"action": 9}}).current is None
    assert AduWorkflowTracker.from_mapping({}).current is None


def test_workflow_resume_at_startup_and_retry_job_ids() -> None:
    t = AduWorkflowTracker()
    t.decide(AduWorkflow(3, "w1"))
    restored = AduWorkflowTracker.from_mapping(t.to_mapping())
    # still running when the device stopped: taken up again at start-up, a duplicate afterwards
    assert restored.decide(AduWorkflow(3, "w1"), startup=True) is WorkflowDecision.RESUME
    assert restored.decide(AduWorkflow(3, "w1")) is WorkflowDecision.IGNORE_DUPLICATE
    # finished (e.g. failed and rolled back): never again at start-up, so no install loop
    restored.finished()
    assert restored.decide(AduWorkflow(3, "w1"), startup=True) is WorkflowDecision.IGNORE_DUPLICATE
    assert workflow_job_id(AduWorkflow(3, "w1")) == "w1"
    assert workflow_job_id(AduWorkflow(3, "w1", "2022-01-26T11:33:29Z")) == "w1@2022-01-26T11:33:29Z"


def test_is_installed() -> None:
    manifest = parse_update_manifest((DATA / "adu_update_manifest.json").read_text())
    installed = AduUpdateId("Contoso", "Foobar", "1.1")
    assert is_installed(manifest, installed.to_installed_string())
    assert is_installed(manifest, installed.to_json())
    assert is_installed(manifest, installed)
    assert not is_installed(manifest, AduUpdateId("Contoso", "Foobar", "1.0").to_installed_string())
    assert not is_installed(manifest, None)
    assert not is_installed(manifest, "{not json")
    assert not is_installed(manifest, {"provider": 1})


def test_agent_report_matches_embedded_vector() -> None:
    reporter = AduAgentReporter(
        "Contoso",
        "Foobar",
        contract_model_id="dtmi:azure:iot:deviceUpdateContractModel;2",
        agent_version="DU;agent/1.0.0",
    )
    patch = reporter.agent(AduAgentState.IDLE, installed_update_id=AduUpdateId("Contoso", "Foobar", "1.0"))
    assert json.dumps(patch, separators=(",", ":")) == (
        '{"deviceUpdate":{"__t":"c","agent":{"deviceProperties":{"manufacturer":"Contoso","model":"Foobar",'
        '"contractModelId":"dtmi:azure:iot:deviceUpdateContractModel;2","aduVer":"DU;agent/1.0.0"},'
        '"compatPropertyNames":"manufacturer,model","state":0,'
        '"installedUpdateId":"{\\"provider\\":\\"Contoso\\",\\"name\\":\\"Foobar\\",\\"version\\":\\"1.0\\"}"}}}'
    )
    result = AduInstallResult(0, 1234, "Ok", ((0, 1234, "Ok"),))
    full = reporter.agent(
        AduAgentState.IDLE,
        workflow=AduWorkflow(3, "51552a54-765e-419f-892a-c822549b6f38", "2022-01-26T11:33:29.9680598Z"),
        installed_update_id=AduUpdateId("Contoso", "Foobar", "1.0"),
        last_install_result=result,
    )
    assert json.dumps(full, separators=(",", ":")) == (
        '{"deviceUpdate":{"__t":"c","agent":{"deviceProperties":{"manufacturer":"Contoso","model":"Foobar",'
        '"contractModelId":"dtmi:azure:iot:deviceUpdateContractModel;2","aduVer":"DU;agent/1.0.0"},'
        '"compatPropertyNames":"manufacturer,model","lastInstallResult":{"resultCode":0,"extendedResultCode":1234,'
        '"resultDetails":"Ok","stepResults":{"step_0":{"resultCode":0,"extendedResultCode":1234,"resultDetails":"Ok"}}},'
        '"state":0,"workflow":{"action":3,"id":"51552a54-765e-419f-892a-c822549b6f38",'
        '"retryTimestamp":"2022-01-26T11:33:29.9680598Z"},'
        '"installedUpdateId":"{\\"provider\\":\\"Contoso\\",\\"name\\":\\"Foobar\\",\\"version\\":\\"1.0\\"}"}}}'
    )
    assert AduInstallResult(255, 0x80000001).to_json()["extendedResultCode"] == -2147483647
    with pytest.raises(AduDocumentError):
        AduAgentReporter("a", "b", compat_property_names="a,b,c,d,e,f")


def test_ack() -> None:
    ack = AduAgentReporter.ack(
        {
            "workflow": {"action": 3, "id": "w"},
            "updateManifest": "{}",
            "updateManifestSignature": "x",
            "fileUrls": {"a": "u"},
        },
        7,
    )
    assert ack == {
        "deviceUpdate": {
            "__t": "c",
            "service": {
                "value": {
                    "workflow": {"action": 3, "id": "w"},
                    "updateManifest": "{}",
                    "updateManifestSignature": None,
                    "fileUrls": None,
                },
                "ac": 200,
                "ad": "",
                "av": 7,
            },
        }
    }
    assert AduAgentReporter.ack({}, 1, status=406, description="no")["deviceUpdate"]["service"]["ac"] == 406

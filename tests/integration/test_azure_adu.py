"""A Device Update deployment through the stand-in: import, deploy, signed manifest, download, report;
then a repeated workflow id, a retry and a cancel."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ota_cloud.azure import AzureStandIn, StandInRequestError
from ota_core.models import JobEvent, JobEventKind, JobStatus, StatusReport, UpdatePlan
from ota_jobs.azure import (
    ADU_MODEL_ID,
    AduAgentReporter,
    AduJobSource,
    AduParser,
    AduUpdateId,
    WorkflowDecision,
)
from ota_verify import AduManifestVerifier, PlanVerifier
from tests.azure_fixtures import DeviceFactory, azure_device, azure_standin

pytestmark = pytest.mark.broker
__all__ = ["azure_device", "azure_standin"]

PAYLOAD = b"swupdate image " * 500


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify_chain(manifest: bytes, jws: str, root: rsa.RSAPublicKey) -> None:
    """A test-only check of the ADU signature chain (the library's verifier lives in ota_verify)."""
    header_b64, payload_b64, signature_b64 = jws.split(".")
    header = json.loads(b64url_decode(header_b64))
    h2, jwk_b64, s2 = header["sjwk"].split(".")
    root.verify(b64url_decode(s2), f"{h2}.{jwk_b64}".encode(), padding.PKCS1v15(), hashes.SHA256())
    jwk = json.loads(b64url_decode(jwk_b64))
    n = int.from_bytes(base64.b64decode(jwk["n"] + "=" * (-len(jwk["n"]) % 4)), "big")
    e = int.from_bytes(base64.b64decode(jwk["e"] + "=" * (-len(jwk["e"]) % 4)), "big")
    signing = rsa.RSAPublicNumbers(e, n).public_key()
    signing.verify(
        b64url_decode(signature_b64), f"{header_b64}.{payload_b64}".encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    claims = json.loads(b64url_decode(payload_b64))
    assert claims["sha256"] == base64.b64encode(hashlib.sha256(manifest).digest()).decode()


def import_manifest(version: str = "1.1") -> dict[str, Any]:
    return {
        "manifestVersion": "5.0",
        "updateId": {"provider": "Contoso", "name": "Toaster", "version": version},
        "compatibility": [{"manufacturer": "Contoso", "model": "Toaster"}],
        "instructions": {
            "steps": [
                {
                    "handler": "microsoft/swupdate:2",
                    "files": ["toaster-1.1.swu"],
                    "handlerProperties": {"installedCriteria": "1.1"},
                }
            ]
        },
        "files": [
            {
                "filename": "toaster-1.1.swu",
                "sizeInBytes": len(PAYLOAD),
                "hashes": {"sha256": base64.b64encode(hashlib.sha256(PAYLOAD).digest()).decode()},
            }
        ],
        "createdDateTime": "2026-01-01T00:00:00Z",
    }


class AduDevice:
    def __init__(self, source: AduJobSource, root: rsa.RSAPublicKey, root_kid: str) -> None:
        self.source = source
        self.root = root
        self.verifier = PlanVerifier(adu=AduManifestVerifier(root_keys={root_kid: root}))
        self.events: list[JobEvent] = []
        self.installed = threading.Event()
        self.hold = threading.Event()  # set: do not finish the deployment (to test cancel)

    def on_event(self, event: JobEvent) -> None:
        self.events.append(event)
        if event.kind is JobEventKind.NEW:
            threading.Thread(target=self.run, args=(event,), daemon=True).start()

    def run(self, event: JobEvent) -> None:
        plan = AduParser().parse(event)
        assert isinstance(plan, UpdatePlan) and plan.attributes["adu_trusted"] is False
        verify_chain(plan.attributes["adu_manifest"].encode(), plan.attributes["adu_manifest_signature"], self.root)
        # the hand-over: ota_verify's plan verifier, trusting the stand-in's root, accepts the plan
        self.verifier.check_plan(plan)
        self.source.report(StatusReport(plan.job_id, JobStatus.IN_PROGRESS))
        if self.hold.is_set():
            return
        (target,) = plan.files
        data = requests.get(target.locations[0].uri, timeout=10).content
        assert hashlib.sha256(data).digest() == target.integrity.digests["sha256"] and len(data) == target.size
        update_id = plan.attributes["adu_update_id"]
        self.source.report(StatusReport(plan.job_id, JobStatus.SUCCEEDED, dict(update_id)))
        self.installed.set()


def wait_for(predicate: Any, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_deployment_duplicate_retry_cancel(azure_standin: AzureStandIn, azure_device: DeviceFactory) -> None:
    _, client = azure_device("toaster-1", model_id=ADU_MODEL_ID)
    source = AduJobSource(
        client, AduAgentReporter("Contoso", "Toaster"), installed_update_id=AduUpdateId("Contoso", "Toaster", "1.0")
    )
    root = azure_standin.adu.keys.root.public_key()
    device = AduDevice(source, root, azure_standin.adu.keys.root_kid)
    source.start(device.on_event)
    assert wait_for(lambda: azure_standin.adu.agent("toaster-1") is not None)

    update_id = azure_standin.adu.import_update(import_manifest(), {"toaster-1.1.swu": PAYLOAD})
    azure_standin.adu.create_deployment("dep-1", update_id, ["toaster-1"])
    assert device.installed.wait(20)
    assert wait_for(
        lambda: azure_standin.adu.deployment_status("dep-1")["devices"]["toaster-1"]["state"] == "Succeeded"
    )
    agent = azure_standin.adu.agent("toaster-1")
    assert agent is not None and agent["state"] == 0 and agent["lastInstallResult"]["resultCode"] == 700
    assert json.loads(agent["installedUpdateId"]) == update_id
    twin = azure_standin.hub.get_twin("toaster-1")
    ack = twin["reported"]["deviceUpdate"]["service"]
    assert ack["ac"] == 200 and ack["av"] == twin["desired"]["$version"]
    assert ack["value"].get("updateManifestSignature") is None  # blanked (null is not stored)

    # the same workflow id again (as after a token-refresh reconnect): ignored
    news = sum(1 for e in device.events if e.kind is JobEventKind.NEW)
    service = twin["desired"]["deviceUpdate"]["service"]
    azure_standin.hub.update_desired("toaster-1", {"deviceUpdate": {"service": {**service, "extra": 1}}})
    assert wait_for(lambda: source.last_decision is WorkflowDecision.IGNORE_DUPLICATE)
    assert sum(1 for e in device.events if e.kind is JobEventKind.NEW) == news

    # a retry of an update that is installed is answered from the "is it installed?" check ...
    azure_standin.adu.retry_deployment("dep-1")
    assert wait_for(lambda: source.last_decision is WorkflowDecision.IGNORE_DUPLICATE)
    # ... so roll the device back (as after a failed trial boot) and retry again: it runs again
    source.installed_update_id = AduUpdateId("Contoso", "Toaster", "1.0")
    source.last_decision = None
    device.installed.clear()
    azure_standin.adu.retry_deployment("dep-1")
    assert device.installed.wait(20)
    assert wait_for(lambda: source.last_decision is WorkflowDecision.RETRY)

    # a new deployment (of a newer update) that hangs, then a cancel
    device.hold.set()
    newer = azure_standin.adu.import_update(import_manifest("1.2"), {"toaster-1.1.swu": PAYLOAD})
    azure_standin.adu.create_deployment("dep-2", newer, ["toaster-1"])
    assert wait_for(
        lambda: azure_standin.adu.deployment_status("dep-2")["devices"]["toaster-1"]["state"] == "InProgress"
    )
    azure_standin.adu.cancel_deployment("dep-2")
    assert wait_for(lambda: any(e.kind is JobEventKind.CANCELLED and e.job_id == "dep-2" for e in device.events))
    source.report(StatusReport("dep-2", JobStatus.CANCELED))
    assert wait_for(lambda: azure_standin.adu.deployment_status("dep-2")["devices"]["toaster-1"]["state"] == "Canceled")
    assert azure_standin.adu.deployment_status("dep-2")["cancelled"] is True


def test_import_rejects_mismatched_files(azure_standin: AzureStandIn) -> None:
    with pytest.raises(StandInRequestError):
        azure_standin.adu.import_update(import_manifest(), {"toaster-1.1.swu": PAYLOAD + b"x"})
    with pytest.raises(StandInRequestError):
        azure_standin.adu.import_update(import_manifest(), {})
    with pytest.raises(StandInRequestError):
        azure_standin.adu.create_deployment("d", {"provider": "No", "name": "Such", "version": "1.0"}, ["x"])


def test_already_installed_and_restart_keeps_workflow(
    azure_standin: AzureStandIn, azure_device: DeviceFactory, tmp_path: Path
) -> None:
    from ota_core.state_store import FileStateStore

    update_id = azure_standin.adu.import_update(import_manifest(), {"toaster-1.1.swu": PAYLOAD})
    _, client = azure_device("toaster-2", model_id=ADU_MODEL_ID)
    store = FileStateStore(tmp_path / "device-state")
    source = AduJobSource(
        client,
        AduAgentReporter("Contoso", "Toaster"),
        state_store=store,
        installed_update_id=AduUpdateId("Contoso", "Toaster", "1.1"),
    )
    events: list[JobEvent] = []
    source.start(events.append)
    azure_standin.adu.create_deployment("dep-3", update_id, ["toaster-2"])
    assert wait_for(
        lambda: azure_standin.adu.deployment_status("dep-3")["devices"]["toaster-2"]["state"] == "Succeeded"
    )
    assert wait_for(lambda: store.load(AduJobSource.STATE_NAME) is not None)
    assert not any(e.kind is JobEventKind.NEW for e in events)
    saved = store.load(AduJobSource.STATE_NAME)
    assert saved is not None and saved.data["workflow"]["id"] == "dep-3" and saved.data["running"] is False
    restored = AduJobSource(client, AduAgentReporter("Contoso", "Toaster"), state_store=store)
    assert restored.tracker.current is not None and restored.tracker.current.id == "dep-3"

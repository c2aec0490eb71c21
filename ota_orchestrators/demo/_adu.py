"""The Device Update demo: the Azure stand-in's Device Update service imports firmware 1.0.1 and deploys it.

The service signs the update manifest (JWS, its own test root key, which the device is told to trust);
the device verifies it before anything is downloaded, downloads the image over HTTP with the manifest's
SHA-256, installs it into its inactive slot, restarts, self-tests and reports. Expected end: the deployment
Succeeded, agent Idle with the new ``installedUpdateId`` and 1.0.1 running; or, with ``--fail-self-test``,
Failed with 1.0.0 running again.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from ota_cloud.azure import AzureStandIn
from ota_orchestrators.adu import describe_agent
from ota_orchestrators.demo._runner import (
    NEW_VERSION,
    OLD_VERSION,
    DemoContext,
    DemoError,
    Expected,
    register_scenario,
)

__all__ = ["AduScenario", "adu_import_manifest"]

DEPLOYMENT_ID = "demo-deployment-1-0-1"
DEVICE_KEY = "bW9kdWxhci1vdGEgZGVtbyBkZXZpY2Uga2V5IGZvciBBRFU="
PROVIDER, NAME = "Contoso", "SimDevice"


def adu_import_manifest(version: str, file_name: str, image: bytes) -> dict[str, Any]:
    """The import manifest an operator uploads for one firmware file (``installedCriteria`` = version)."""
    return {
        "manifestVersion": "5.0",
        "updateId": {"provider": PROVIDER, "name": NAME, "version": version},
        "compatibility": [{"manufacturer": PROVIDER, "model": NAME}],
        "instructions": {"steps": [{"handler": "microsoft/swupdate:2", "files": [file_name],
                                    "handlerProperties": {"installedCriteria": version}}]},
        "files": [{"filename": file_name, "sizeInBytes": len(image),
                   "hashes": {"sha256": base64.b64encode(hashlib.sha256(image).digest()).decode()}}],
        "createdDateTime": "2026-01-01T00:00:00Z",
    }


class AduScenario:
    """The cloud side of ``ota demo adu``."""

    title = "Azure Device Update, firmware 1.0.0 -> 1.0.1"

    def __init__(self) -> None:
        self.standin: AzureStandIn | None = None

    def _cloud(self) -> AzureStandIn:
        if self.standin is None:
            raise DemoError("the Azure stand-in is not running")
        return self.standin

    def start_cloud(self, context: DemoContext) -> None:
        """Start the Azure stand-in (hub, Device Update service, file server) and register the device."""
        self.standin = AzureStandIn(context.broker_url, context.work_dir / "azure-state", key_size=2048,
                                    admin_port=None)
        self.standin.start()
        self.standin.hub.register_device(context.device_id, DEVICE_KEY)
        context.print_line(f"cloud: Azure stand-in up (IoT Hub + Device Update), device {context.device_id} "
                           "registered")

    def device_settings(self, context: DemoContext) -> dict[str, Any]:
        """The device's ``adu`` flow settings: broker, identity, the stand-in's root key to trust."""
        cloud = self._cloud()
        return {
            "broker_url": context.broker_url,
            "device_id": context.device_id,
            "device_key": DEVICE_KEY,
            "topic_prefix": cloud.hub.prefix_for(context.device_id),
            "root_kid": cloud.adu.keys.root_kid,
            "root_pem": cloud.adu.keys.root_public_pem().decode(),
            "manufacturer": PROVIDER,
            "model": NAME,
            "initial_update": {"provider": PROVIDER, "name": NAME, "version": OLD_VERSION},
        }

    def publish(self, context: DemoContext) -> str:
        """Import the signed update and deploy it to the device."""
        cloud = self._cloud()
        firmware = context.new_firmware
        name = f"firmware-{firmware.version}.bin"
        update_id = cloud.adu.import_update(adu_import_manifest(firmware.version, name, firmware.image),
                                            {name: firmware.image})
        cloud.adu.create_deployment(DEPLOYMENT_ID, update_id, [context.device_id])
        return (f"imported update {update_id['provider']}/{update_id['name']} {update_id['version']} "
                f"(manifest signed by the stand-in's root key), deployment {DEPLOYMENT_ID} created")

    def expected(self, context: DemoContext) -> Expected:
        """Succeeded with 1.0.1, or Failed with 1.0.0 after a failing self-test."""
        if context.options.fail_self_test:
            return Expected("Failed", OLD_VERSION)
        return Expected("Succeeded", NEW_VERSION)

    def cloud_state(self, context: DemoContext) -> tuple[str, dict[str, Any]]:
        """The deployment's state for the device and the agent's last report."""
        status = self._cloud().adu.deployment_status(DEPLOYMENT_ID)["devices"][context.device_id]
        agent = status.get("agent") or {}
        result = agent.get("lastInstallResult") or {}
        installed = agent.get("installedUpdateId")
        return str(status["state"]), {
            "agent": describe_agent(agent),
            "installedUpdateId": json.loads(installed) if isinstance(installed, str) else None,
            "resultCode": result.get("resultCode"),
            "extendedResultCode": result.get("extendedResultCode"),
        }

    def close(self) -> None:
        """Stop the stand-in."""
        if self.standin is not None:
            self.standin.close()
            self.standin = None


register_scenario("adu", AduScenario)

"""The Device Update service side of the stand-in: import, deployments, signing, files, per-device state.

* ``import_update``: an import manifest (v4.0/v5.0) plus the files it names; sizes and SHA-256 hashes
  are checked, files are kept in the state directory and served over local HTTP.
* ``create_deployment``: writes ``deviceUpdate.service`` into the desired properties of each device
  (workflow action 3, the update manifest as a string, its JWS signature, file URLs).
* ``retry_deployment`` (new ``retryTimestamp``) and ``cancel_deployment`` (action 255).
* ``deployment_status``: per-device state derived from the agents' reported ``deviceUpdate.agent``.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import json
import logging
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ota_cloud.azure._errors import StandInRequestError
from ota_cloud.azure._hub import IotHubStandIn
from ota_cloud.azure._signing import SigningKeys, sign_update_manifest
from ota_cloud.azure._twins import DeviceTwin
from ota_cloud.file_server import RangeFileServer
from ota_core.state_store import FileStateStore

__all__ = ["DeviceUpdateService"]

_log = logging.getLogger(__name__)
_NAME = re.compile(r"^[A-Za-z0-9.-]{1,64}$")
_VERSION = re.compile(r"^\d+(?:\.\d+){1,3}$")
_FILE_NAME = re.compile(r"^[A-Za-z0-9._-]{1,255}$")
_DEPLOYMENT_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def _update_key(update_id: Mapping[str, Any]) -> str:
    return f"{update_id['provider']}/{update_id['name']}/{update_id['version']}"


def _file_id(name: str) -> str:
    return "f" + hashlib.sha256(name.encode()).hexdigest()[:16]


def _check_update_id(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise StandInRequestError("updateId must be an object")
    provider, name, version = value.get("provider"), value.get("name"), value.get("version")
    if not (isinstance(provider, str) and _NAME.match(provider) and isinstance(name, str) and _NAME.match(name)):
        raise StandInRequestError("updateId provider/name must match [A-Za-z0-9.-]{1,64}")
    if not isinstance(version, str) or not _VERSION.match(version):
        raise StandInRequestError("updateId version must have 2 to 4 numeric parts")
    return {"provider": provider, "name": name, "version": version}


class DeviceUpdateService:
    """Device Update for the stand-in hub; state in ``state_dir``."""

    def __init__(self, hub: IotHubStandIn, files: RangeFileServer, state_dir: str | Path, *,
                 keys: SigningKeys | None = None, key_size: int = 3072) -> None:
        self.hub = hub
        self.files = files
        self._dir = Path(state_dir) / "adu"
        self._dir.mkdir(parents=True, exist_ok=True)
        self.keys = keys or SigningKeys.load_or_create(self._dir / "keys", key_size)
        self._store = FileStateStore(self._dir / "state")
        self._lock = threading.RLock()
        stored = self._store.load("service")
        data = dict(stored.data) if stored else {}
        self._updates: dict[str, dict[str, Any]] = dict(data.get("updates", {}))
        self._deployments: dict[str, dict[str, Any]] = dict(data.get("deployments", {}))
        self._agents: dict[str, dict[str, Any]] = dict(data.get("agents", {}))
        for update in self._updates.values():
            self._serve(update)
        hub.on_reported(self._on_reported)

    def _save(self) -> None:
        self._store.save("service", {"updates": self._updates, "deployments": self._deployments,
                                     "agents": self._agents})

    def _serve(self, update: dict[str, Any]) -> None:
        for file_id, entry in update["files"].items():
            path = self._dir / "files" / entry["path"]
            entry["url"] = self.files.add_file(f"adu/{entry['path']}", path)
            update["fileUrls"][file_id] = entry["url"]

    # --- import ----------------------------------------------------------------------------------

    def import_update(self, import_manifest: Mapping[str, Any], files: Mapping[str, bytes]) -> dict[str, str]:
        """Import an update; returns its update id. The files must match the manifest's sizes and hashes."""
        if not isinstance(import_manifest, Mapping):
            raise StandInRequestError("the import manifest must be an object")
        version = import_manifest.get("manifestVersion")
        if version not in ("4.0", "5.0"):
            raise StandInRequestError("manifestVersion must be 4.0 or 5.0")
        update_id = _check_update_id(import_manifest.get("updateId"))
        entries = import_manifest.get("files", [])
        if not isinstance(entries, list) or not 1 <= len(entries) <= 10:
            raise StandInRequestError("files must list 1 to 10 files")
        manifest_files: dict[str, dict[str, Any]] = {}
        stored: dict[str, dict[str, Any]] = {}
        by_name: dict[str, str] = {}
        folder = _update_key(update_id)
        for entry in entries:
            if not isinstance(entry, Mapping):
                raise StandInRequestError("a file entry must be an object")
            name = entry.get("filename")
            if not isinstance(name, str) or not _FILE_NAME.match(name) or name in (".", ".."):
                raise StandInRequestError(f"bad file name {name!r:.60}")
            data = files.get(name)
            if data is None:
                raise StandInRequestError(f"file {name} was not uploaded")
            digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
            hashes = entry.get("hashes", {})
            if entry.get("sizeInBytes") != len(data) or not isinstance(hashes, Mapping) \
                    or hashes.get("sha256") != digest:
                raise StandInRequestError(f"file {name} does not match its size or sha256 in the manifest")
            file_id = _file_id(f"{folder}/{name}")
            by_name[name] = file_id
            manifest_files[file_id] = {"fileName": name, "sizeInBytes": len(data), "hashes": {"sha256": digest}}
            target = self._dir / "files" / folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            stored[file_id] = {"path": f"{folder}/{name}"}
        steps = self._convert_steps(import_manifest, by_name)
        manifest: dict[str, Any] = {
            "manifestVersion": "5" if version == "5.0" else "4",
            "updateId": update_id,
            "compatibility": list(import_manifest.get("compatibility", [])),
            "instructions": {"steps": steps},
            "files": manifest_files,
            "createdDateTime": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
        manifest_text = json.dumps(manifest, separators=(",", ":"))
        update = {"updateId": update_id, "updateManifest": manifest_text,
                  "updateManifestSignature": sign_update_manifest(manifest_text, self.keys),
                  "files": stored, "fileUrls": {}}
        with self._lock:
            self._serve(update)
            self._updates[_update_key(update_id)] = update
            self._save()
        return update_id

    @staticmethod
    def _convert_steps(import_manifest: Mapping[str, Any], by_name: Mapping[str, str]) -> list[dict[str, Any]]:
        instructions = import_manifest.get("instructions")
        steps = instructions.get("steps") if isinstance(instructions, Mapping) else None
        if not isinstance(steps, list) or not 1 <= len(steps) <= 10:
            raise StandInRequestError("instructions.steps must hold 1 to 10 steps")
        converted = []
        for step in steps:
            if not isinstance(step, Mapping) or not isinstance(step.get("handler"), str):
                raise StandInRequestError("only inline steps with a handler are supported by the stand-in")
            names = step.get("files", [])
            if not isinstance(names, list) or any(n not in by_name for n in names):
                raise StandInRequestError("a step names a file that is not in files")
            converted.append({"handler": step["handler"], "files": [by_name[n] for n in names],
                              "handlerProperties": dict(step.get("handlerProperties", {}))})
        return converted

    def updates(self) -> list[dict[str, str]]:
        """Imported update ids."""
        with self._lock:
            return [dict(u["updateId"]) for u in self._updates.values()]

    def update(self, update_id: Mapping[str, Any]) -> dict[str, Any]:
        """An imported update (manifest, signature, file URLs)."""
        with self._lock:
            update = self._updates.get(_update_key(_check_update_id(update_id)))
            if update is None:
                raise StandInRequestError(f"update {_update_key(update_id)} was not imported")
            return json.loads(json.dumps(update))  # type: ignore[no-any-return]

    # --- deployments -----------------------------------------------------------------------------

    def create_deployment(self, deployment_id: str, update_id: Mapping[str, Any], device_ids: list[str]) -> None:
        """Deploy an imported update to devices: write ``deviceUpdate.service`` with action 3."""
        if not isinstance(deployment_id, str) or not _DEPLOYMENT_ID.match(deployment_id):
            raise StandInRequestError("deployment id must match [A-Za-z0-9._-]{1,128}")
        update = self.update(update_id)
        if not device_ids:
            raise StandInRequestError("a deployment needs at least one device")
        for device_id in device_ids:
            self.hub.check_device(device_id)
        with self._lock:
            self._deployments[deployment_id] = {"updateId": update["updateId"], "devices": list(device_ids),
                                                "cancelled": False, "retryTimestamp": None}
            self._save()
        self._write(deployment_id)

    def retry_deployment(self, deployment_id: str) -> str:
        """Ask the devices to retry (same workflow id, new ``retryTimestamp``); returns the time stamp."""
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        with self._lock:
            deployment = self._deployment(deployment_id)
            deployment["retryTimestamp"] = stamp
            deployment["cancelled"] = False
            self._save()
        self._write(deployment_id)
        return stamp

    def cancel_deployment(self, deployment_id: str) -> None:
        """Cancel: workflow action 255 with the deployment's id; manifest, signature and URLs removed."""
        with self._lock:
            deployment = self._deployment(deployment_id)
            deployment["cancelled"] = True
            self._save()
            devices = list(deployment["devices"])
        service = {"workflow": {"action": 255, "id": deployment_id}, "updateManifest": None,
                   "updateManifestSignature": None, "fileUrls": None}
        for device_id in devices:
            self.hub.update_desired(device_id, {"deviceUpdate": {"__t": "c", "service": service}})

    def _deployment(self, deployment_id: str) -> dict[str, Any]:
        deployment = self._deployments.get(deployment_id)
        if deployment is None:
            raise StandInRequestError(f"unknown deployment {deployment_id!r:.60}")
        return deployment

    def _write(self, deployment_id: str) -> None:
        with self._lock:
            deployment = dict(self._deployment(deployment_id))
        update = self.update(deployment["updateId"])
        # retryTimestamp is always written (null removes it): desired patches merge, so a new deployment must
        # not inherit the time stamp of an earlier retry.
        workflow: dict[str, Any] = {"action": 3, "id": deployment_id,
                                    "retryTimestamp": deployment["retryTimestamp"] or None}
        service = {"workflow": workflow, "updateManifest": update["updateManifest"],
                   "updateManifestSignature": update["updateManifestSignature"],
                   "fileUrls": dict(update["fileUrls"])}
        for device_id in deployment["devices"]:
            self.hub.update_desired(device_id, {"deviceUpdate": {"__t": "c", "service": service}})

    # --- device state ----------------------------------------------------------------------------

    def _on_reported(self, device_id: str, patch: Mapping[str, Any], twin: DeviceTwin) -> None:
        component = twin.reported.get("deviceUpdate")
        if not isinstance(patch.get("deviceUpdate"), Mapping) or not isinstance(component, Mapping):
            return
        agent = component.get("agent")
        if isinstance(agent, Mapping):
            with self._lock:
                self._agents[device_id] = json.loads(json.dumps(agent))
                self._save()

    def agent(self, device_id: str) -> dict[str, Any] | None:
        """The last reported ``agent`` of a device."""
        with self._lock:
            agent = self._agents.get(device_id)
            return None if agent is None else dict(agent)

    def deployment_status(self, deployment_id: str) -> dict[str, Any]:
        """Per-device state: Pending, InProgress, Succeeded, Failed or Canceled, with the agent's report."""
        with self._lock:
            deployment = dict(self._deployment(deployment_id))
            agents = {d: self._agents.get(d) for d in deployment["devices"]}
        target = json.dumps(deployment["updateId"], separators=(",", ":"))
        devices: dict[str, Any] = {}
        for device_id, agent in agents.items():
            devices[device_id] = {"state": self._device_state(deployment_id, deployment, target, agent),
                                  "agent": agent}
        counts: dict[str, int] = {}
        for entry in devices.values():
            counts[entry["state"]] = counts.get(entry["state"], 0) + 1
        return {"deploymentId": deployment_id, "updateId": deployment["updateId"],
                "cancelled": deployment["cancelled"], "devices": devices, "counts": counts}

    @staticmethod
    def _device_state(deployment_id: str, deployment: Mapping[str, Any], target: str,
                      agent: Mapping[str, Any] | None) -> str:
        if agent is None:
            return "Canceled" if deployment["cancelled"] else "Pending"
        installed = agent.get("installedUpdateId")
        installed_matches = False
        if isinstance(installed, str):
            try:
                installed_matches = json.dumps(json.loads(installed), separators=(",", ":")) == target
            except ValueError:
                installed_matches = False
        workflow = agent.get("workflow") if isinstance(agent.get("workflow"), Mapping) else {}
        state = agent.get("state")
        same = isinstance(workflow, Mapping) and workflow.get("id") == deployment_id
        if same and state == 6:
            return "InProgress"
        if same and state == 255:
            return "Failed"
        result = agent.get("lastInstallResult")
        code = result.get("resultCode") if isinstance(result, Mapping) else None
        if same and code == -1:
            return "Canceled"
        if installed_matches:
            return "Succeeded"
        if deployment["cancelled"]:
            return "Canceled"
        if same and state == 0:
            return "Failed"
        return "Pending"


def decode_files(files: Mapping[str, Any]) -> dict[str, bytes]:
    """Decode ``{name: base64}`` as the admin API receives uploads."""
    decoded: dict[str, bytes] = {}
    for name, value in files.items():
        if not isinstance(value, str):
            raise StandInRequestError(f"file {name!r:.60} must be base64 text")
        try:
            decoded[name] = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise StandInRequestError(f"file {name!r:.60} is not valid base64") from exc
    return decoded

"""Twin storage of the stand-in hub: desired and reported sections with their versions, kept on disk.

Patches use JSON merge semantics (``null`` deletes, objects merge); each accepted patch increments the
section's ``$version``. Written from the IoT Hub twin description, independently of the device side.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from ota_cloud.azure._errors import DeviceNotFoundError, StandInRequestError
from ota_core.state_store import FileStateStore

__all__ = ["DeviceTwin", "TwinRegistry", "merge_json", "twin_section_error"]

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$")
SECTION_LIMIT = 32 * 1024
_MAX_DEPTH = 10


def merge_json(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """Apply a JSON merge patch: ``None`` removes a key, objects merge, other values replace."""
    merged = copy.deepcopy(dict(target))
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping):
            # a new object is merged into nothing, so its null members are not stored either
            current = merged.get(key)
            merged[key] = merge_json(current if isinstance(current, Mapping) else {}, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _depth(value: Any) -> int:
    if isinstance(value, Mapping):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def twin_section_error(section: Mapping[str, Any]) -> str | None:
    """Why a desired/reported section breaks the hub's limits, or ``None`` if it is fine."""
    if _depth(section) > _MAX_DEPTH:
        return "nesting deeper than 10 levels"
    size = len(json.dumps(section, separators=(",", ":")).encode("utf-8"))
    if size > SECTION_LIMIT:
        return f"section of {size} bytes exceeds {SECTION_LIMIT}"
    for key in _keys(section):
        if key.startswith("$") or "." in key or " " in key or len(key.encode("utf-8")) > 1024:
            return f"invalid key {key[:40]!r}"
    return None


def _keys(value: Any) -> list[str]:
    found: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            found.append(str(key))
            found.extend(_keys(item))
    return found


@attrs.define
class DeviceTwin:
    """One device's twin."""

    device_id: str
    desired: dict[str, Any] = attrs.Factory(dict)
    desired_version: int = 1
    reported: dict[str, Any] = attrs.Factory(dict)
    reported_version: int = 1
    primary_key: str | None = None
    tags: dict[str, Any] = attrs.Factory(dict)

    def document(self) -> dict[str, Any]:
        """The GET answer: both sections with their ``$version``, no metadata."""
        return {
            "desired": {**copy.deepcopy(self.desired), "$version": self.desired_version},
            "reported": {**copy.deepcopy(self.reported), "$version": self.reported_version},
        }

    def to_mapping(self) -> dict[str, Any]:
        """What is stored on disk."""
        return attrs.asdict(self)


class TwinRegistry:
    """All twins of the stand-in hub, thread-safe, persisted in ``directory`` when one is given."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self._lock = threading.RLock()
        self._twins: dict[str, DeviceTwin] = {}
        self._store = FileStateStore(Path(directory)) if directory is not None else None
        if self._store is not None:
            index = self._store.load("devices")
            for device_id in (index.data.get("devices", []) if index else []):
                stored = self._store.load(self._doc_name(device_id))
                if stored is not None:
                    self._twins[device_id] = DeviceTwin(**dict(stored.data))

    @staticmethod
    def _doc_name(device_id: str) -> str:
        return f"twin-{device_id}" if _SAFE_NAME.match(device_id) else "twin-x" + device_id.encode().hex()[:100]

    def _save(self, twin: DeviceTwin, *, index: bool = False) -> None:
        if self._store is None:
            return
        self._store.save(self._doc_name(twin.device_id), twin.to_mapping())
        if index:
            self._store.save("devices", {"devices": sorted(self._twins)})

    def register(self, device_id: str, primary_key: str | None = None,
                 tags: Mapping[str, Any] | None = None) -> DeviceTwin:
        """Create a device (idempotent; a new key or tags replace the old ones)."""
        if not device_id or len(device_id) > 128 or "/" in device_id or "+" in device_id or "#" in device_id:
            raise StandInRequestError(f"invalid device id {device_id!r:.60}")
        with self._lock:
            twin = self._twins.get(device_id)
            if twin is None:
                twin = DeviceTwin(device_id, primary_key=primary_key, tags=dict(tags or {}))
                self._twins[device_id] = twin
            else:
                if primary_key is not None:
                    twin.primary_key = primary_key
                if tags is not None:
                    twin.tags = dict(tags)
            self._save(twin, index=True)
            return twin

    def device_ids(self) -> list[str]:
        """Registered device ids, sorted."""
        with self._lock:
            return sorted(self._twins)

    def get(self, device_id: str) -> DeviceTwin:
        """A copy of the twin of ``device_id``."""
        with self._lock:
            twin = self._twins.get(device_id)
            if twin is None:
                raise DeviceNotFoundError(f"unknown device {device_id!r:.60}")
            return copy.deepcopy(twin)

    def patch_desired(self, device_id: str, patch: Mapping[str, Any]) -> int:
        """Merge ``patch`` into desired; returns the new desired ``$version``."""
        with self._lock:
            twin = self._twins.get(device_id)
            if twin is None:
                raise DeviceNotFoundError(f"unknown device {device_id!r:.60}")
            merged = merge_json(twin.desired, patch)
            problem = twin_section_error(merged)
            if problem:
                raise StandInRequestError(f"desired properties rejected: {problem}")
            twin.desired = merged
            twin.desired_version += 1
            self._save(twin)
            return twin.desired_version

    def patch_reported(self, device_id: str, patch: Mapping[str, Any]) -> tuple[int, str | None]:
        """Merge a device's reported patch; returns (new version, None) or (0, reason) if rejected."""
        with self._lock:
            twin = self._twins.get(device_id)
            if twin is None:
                return 0, "unknown device"
            merged = merge_json(twin.reported, patch)
            problem = twin_section_error(merged)
            if problem:
                return 0, problem
            twin.reported = merged
            twin.reported_version += 1
            self._save(twin)
            return twin.reported_version, None

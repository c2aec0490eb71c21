"""The IoT Hub twin service of the stand-in, over a real MQTT broker.

A small responder connects to the broker and emulates what the hub does for each registered device:
answers ``$iothub/twin/GET`` with the twin (status 200), merges reported patches and answers 204 with the
new ``$version`` (400 for malformed or oversized patches), pushes desired patches with ``$version``, and
invokes direct methods and waits for their answers. Faults (429, 500...) can be injected per operation.

IoT Hub topics carry no device id. On a shared broker each device therefore uses a topic prefix (by
default ``{device_id}/``, the foundation's per-device prefix); with ``topic_prefix=""`` there is one
device per broker and the topics are exactly the hub's.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import urllib.parse
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ota_cloud.azure._errors import DeviceNotFoundError, MethodTimeoutError, StandInRequestError
from ota_cloud.azure._twins import DeviceTwin, TwinRegistry
from ota_core.mqtt import MqttConnection, MqttMessage, MqttSettings

__all__ = ["DEFAULT_HOSTNAME", "IotHubStandIn", "ReportedListener"]

_log = logging.getLogger(__name__)

DEFAULT_HOSTNAME = "modular-ota.azure-devices.net"
ReportedListener = Callable[[str, Mapping[str, Any], DeviceTwin], None]
"""Called with (device id, accepted reported patch, twin after the patch)."""

_MAX_PAYLOAD = 256 * 1024


def _query(topic: str) -> tuple[str, dict[str, str]]:
    path, _, query = topic.partition("?")
    props: dict[str, str] = {}
    for part in query.split("&"):
        if part:
            key, _, value = part.partition("=")
            props[urllib.parse.unquote(key)] = urllib.parse.unquote(value)
    return path, props


class IotHubStandIn:
    """Emulates the IoT Hub twin and direct-method endpoints for the registered devices."""

    def __init__(
        self,
        broker_url: str,
        *,
        hostname: str = DEFAULT_HOSTNAME,
        state_dir: str | Path | None = None,
        topic_prefix: str = "{device_id}/",
        client_id: str = "azure-iothub-standin",
        mqtt_options: Mapping[str, Any] | None = None,
    ) -> None:
        if topic_prefix and (not topic_prefix.endswith("/") or "{device_id}" not in topic_prefix):
            raise StandInRequestError("topic_prefix must contain {device_id} and end with '/', or be empty")
        self.hostname = hostname
        self.topic_prefix = topic_prefix
        self.twins = TwinRegistry(Path(state_dir) / "twins" if state_dir is not None else None)
        options: dict[str, Any] = {"broker_url": broker_url, "client_id": client_id, "connect_timeout": 10.0}
        options.update(mqtt_options or {})
        self._connection = MqttConnection(MqttSettings(**options))
        self._lock = threading.Condition()
        self._subscribed: set[str] = set()
        self._faults: dict[tuple[str, str], deque[int]] = defaultdict(deque)
        self._method_rids = itertools.count(1)
        self._method_answers: dict[tuple[str, str], tuple[int, Any]] = {}
        self._listeners: list[ReportedListener] = []
        self._recent_patches: dict[str, deque[tuple[str, int]]] = defaultdict(lambda: deque(maxlen=32))
        self._started = False
        self.requests: dict[str, int] = defaultdict(int)

    # --- life cycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect and subscribe for every registered device."""
        self._connection.connect()
        self._started = True
        for device_id in self.twins.device_ids():
            self._subscribe(device_id)

    def close(self) -> None:
        """Disconnect from the broker."""
        self._started = False
        self._connection.close()

    def __enter__(self) -> IotHubStandIn:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- operator API ----------------------------------------------------------------------------

    def prefix_for(self, device_id: str) -> str:
        """The topic prefix the device must use on this broker."""
        return self.topic_prefix.replace("{device_id}", device_id)

    def register_device(self, device_id: str, primary_key: str | None = None,
                        tags: Mapping[str, Any] | None = None) -> DeviceTwin:
        """Add a device (and start answering its twin requests)."""
        if not self.topic_prefix and self.twins.device_ids() not in ([], [device_id]):
            raise StandInRequestError("without a topic prefix the broker carries exactly one device")
        twin = self.twins.register(device_id, primary_key, tags)
        if self._started:
            self._subscribe(device_id)
        return twin

    def on_reported(self, listener: ReportedListener) -> None:
        """Call ``listener`` after every accepted reported patch."""
        self._listeners.append(listener)

    def inject_faults(self, device_id: str, operation: str, statuses: list[int]) -> None:
        """Answer the next ``operation`` ("get" or "patch") requests of a device with these statuses."""
        if operation not in ("get", "patch"):
            raise StandInRequestError("operation must be 'get' or 'patch'")
        with self._lock:
            self._faults[(device_id, operation)].extend(statuses)

    def get_twin(self, device_id: str) -> dict[str, Any]:
        """The twin as the service sees it (with tags and versions)."""
        twin = self.twins.get(device_id)
        document = twin.document()
        document["deviceId"] = device_id
        document["tags"] = twin.tags
        return document

    def update_desired(self, device_id: str, patch: Mapping[str, Any]) -> int:
        """Merge ``patch`` into desired and push it to the device; returns the new ``$version``."""
        version = self.twins.patch_desired(device_id, patch)
        body = {**patch, "$version": version}
        topic = f"{self.prefix_for(device_id)}$iothub/twin/PATCH/properties/desired/?$version={version}"
        if self._started:
            self._connection.publish(topic, json.dumps(body).encode(), qos=1, wait=False)
        return version

    def invoke_method(self, device_id: str, method: str, payload: Any = None,
                      timeout: float = 30.0) -> tuple[int, Any]:
        """Call a direct method and wait for the device's (status, payload)."""
        self.twins.get(device_id)
        if not method or any(c in method for c in '/?#+ $'):
            raise StandInRequestError(f"invalid method name {method!r:.40}")
        if not 0 < timeout <= 300:
            raise StandInRequestError("method timeout must be in (0, 300] seconds")
        rid = str(next(self._method_rids))
        topic = f"{self.prefix_for(device_id)}$iothub/methods/POST/{method}/?$rid={rid}"
        self._connection.publish(topic, json.dumps(payload).encode(), qos=0, wait=False)
        key = (device_id, rid)
        with self._lock:
            if not self._lock.wait_for(lambda: key in self._method_answers, timeout=timeout):
                raise MethodTimeoutError(f"device {device_id} did not answer {method} in {timeout}s")
            return self._method_answers.pop(key)

    def check_device(self, device_id: str) -> None:
        """Raise ``DeviceNotFoundError`` for an unknown device."""
        if device_id not in self.twins.device_ids():
            raise DeviceNotFoundError(f"unknown device {device_id!r:.60}")

    # --- protocol --------------------------------------------------------------------------------

    def _subscribe(self, device_id: str) -> None:
        with self._lock:
            if device_id in self._subscribed:
                return
            self._subscribed.add(device_id)
        prefix = self.prefix_for(device_id)

        def handler(message: MqttMessage) -> None:
            self._handle(device_id, message.topic[len(prefix):], message.payload)

        for suffix in ("$iothub/twin/GET/#", "$iothub/twin/PATCH/properties/reported/#", "$iothub/methods/res/#"):
            self._connection.subscribe(prefix + suffix, handler, qos=1)

    def _answer(self, device_id: str, status: int, rid: str, extra: str = "", body: bytes = b"") -> None:
        topic = f"{self.prefix_for(device_id)}$iothub/twin/res/{status}/?$rid={urllib.parse.quote(rid, safe='')}"
        self._connection.publish(topic + extra, body, qos=1, wait=False)

    def _fault(self, device_id: str, operation: str) -> int | None:
        with self._lock:
            queue = self._faults.get((device_id, operation))
            return queue.popleft() if queue else None

    def _handle(self, device_id: str, topic: str, payload: bytes) -> None:
        path, props = _query(topic)
        rid = props.get("$rid", "")
        try:
            if path == "$iothub/twin/GET/":
                self.requests["get"] += 1
                fault = self._fault(device_id, "get")
                if fault is not None:
                    self._answer(device_id, fault, rid)
                    return
                document = self.twins.get(device_id).document()
                self._answer(device_id, 200, rid, body=json.dumps(document).encode())
            elif path == "$iothub/twin/PATCH/properties/reported/":
                self.requests["patch"] += 1
                self._on_reported(device_id, rid, payload)
            elif path.startswith("$iothub/methods/res/"):
                self._on_method_answer(device_id, path, rid, payload)
        except (DeviceNotFoundError, StandInRequestError) as exc:
            _log.warning("stand-in could not handle %s from %s: %s", path, device_id, exc)

    def _on_reported(self, device_id: str, rid: str, payload: bytes) -> None:
        with self._lock:
            repeated = next((v for r, v in self._recent_patches[device_id] if r == rid), None)
        if repeated is not None:
            # A QoS 1 redelivery of a patch already applied: answer again, do not apply twice.
            _log.info("duplicate reported patch $rid %s from %s", rid, device_id)
            self._answer(device_id, 204, rid, extra=f"&$version={repeated}")
            return
        fault = self._fault(device_id, "patch")
        if fault is not None:
            self._answer(device_id, fault, rid)
            return
        try:
            if len(payload) > _MAX_PAYLOAD:
                raise ValueError("too large")
            patch = json.loads(payload)
        except (ValueError, RecursionError):
            self._answer(device_id, 400, rid)
            return
        if not isinstance(patch, dict):
            self._answer(device_id, 400, rid)
            return
        version, problem = self.twins.patch_reported(device_id, patch)
        if problem is not None:
            _log.info("rejecting reported patch from %s: %s", device_id, problem)
            self._answer(device_id, 400, rid)
            return
        with self._lock:
            self._recent_patches[device_id].append((rid, version))
        self._answer(device_id, 204, rid, extra=f"&$version={version}")
        twin = self.twins.get(device_id)
        for listener in list(self._listeners):
            try:
                listener(device_id, patch, twin)
            except Exception:  # noqa: BLE001 - a listener must not break the hub
                _log.exception("reported listener failed")

    def _on_method_answer(self, device_id: str, path: str, rid: str, payload: bytes) -> None:
        status_text = path[len("$iothub/methods/res/"):].strip("/")
        try:
            status = int(status_text)
            body = json.loads(payload) if payload.strip() else None
        except (ValueError, RecursionError):
            _log.info("ignoring a malformed method answer from %s", device_id)
            return
        with self._lock:
            self._method_answers[(device_id, rid)] = (status, body)
            self._lock.notify_all()

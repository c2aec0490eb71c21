"""``AwsIotStandIn``: the local AWS IoT Jobs service, its MQTT data plane and its HTTP control plane.

The stand-in connects to an MQTT broker as one client, subscribes to ``$aws/things/+/jobs/#`` and
answers Jobs requests as AWS IoT does; it serves the control plane on a loopback HTTP port for boto3;
it keeps its state in a directory (one crash-safe document) so that a restart loses no job; and a
timer thread times out executions whose step or in-progress timer ran out.

Extension points: ``control_plane.register_operation`` adds control-plane operations,
``connection`` (the stand-in's own MQTT connection) serves more MQTT topics, ``service.locked()``
gives access to the state, and ``presigned_url_resolver`` decides what a
``${aws:iot:s3-presigned-url:...}`` placeholder becomes when a document is delivered.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ota_cloud.aws._control_plane import ControlPlaneServer
from ota_cloud.aws._model import ServiceState
from ota_cloud.aws._operations import register_jobs_operations
from ota_cloud.aws._presign import PresignedUrlResolver
from ota_cloud.aws._service import JobsService, Outgoing
from ota_core.clock import Clock
from ota_core.errors import OtaError, StateStoreError
from ota_core.mqtt import MqttConnection, MqttMessage, MqttSettings
from ota_core.state_store import FileStateStore

__all__ = ["AwsIotStandIn"]

_log = logging.getLogger(__name__)
_STATE_DOCUMENT = "aws-iot-jobs"
_JOBS_FILTER = "$aws/things/+/jobs/#"
_MAX_STATE_BYTES = 64 * 1024 * 1024


class AwsIotStandIn:
    """A local AWS IoT Jobs service (see the module docstring).

    ``minute_seconds`` is how long a "minute" of step and job timeouts lasts (tests shorten it).
    """

    def __init__(
        self,
        broker_url: str,
        state_dir: str | os.PathLike[str],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        presigned_url_resolver: PresignedUrlResolver | None = None,
        minute_seconds: float = 60.0,
        clock: Clock | None = None,
        client_id: str | None = None,
        tick_interval: float = 0.2,
    ) -> None:
        self.state_dir = Path(state_dir)
        self._store = FileStateStore(self.state_dir, max_document_bytes=_MAX_STATE_BYTES)
        stored = self._store.load(_STATE_DOCUMENT)
        try:
            state = ServiceState.from_json(dict(stored.data)) if stored is not None else ServiceState()
        except (TypeError, ValueError, KeyError) as error:
            raise StateStoreError(f"the stand-in state in {self.state_dir} is not readable: {error}") from None
        self.service = JobsService(
            state,
            persist=self._persist,
            clock=clock,
            presigned_url_resolver=presigned_url_resolver,
            minute_seconds=minute_seconds,
        )
        self.control_plane = ControlPlaneServer(host, port)
        register_jobs_operations(self.control_plane, self.service, self.publish)
        self.connection = MqttConnection(
            MqttSettings(
                broker_url=broker_url,
                client_id=client_id or f"aws-iot-standin-{uuid.uuid4().hex[:8]}",
                connect_timeout=10.0,
            )
        )
        self._tick_interval = tick_interval
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    @property
    def endpoint_url(self) -> str:
        """The control-plane URL for ``boto3.client("iot", endpoint_url=...)``."""
        return self.control_plane.endpoint_url

    def _persist(self, state: ServiceState) -> None:
        self._store.save(_STATE_DOCUMENT, state.to_json())

    def publish(self, messages: Sequence[Outgoing]) -> None:
        """Publish data-plane messages (replies, notify, notify-next) at QoS 1."""
        for message in messages:
            try:
                self.connection.publish(message.topic, message.payload, qos=1, wait=False)
            except OtaError as error:
                _log.warning("could not publish %s: %s", message.topic, error)

    def _on_message(self, message: MqttMessage) -> None:
        self.publish(self.service.handle_mqtt(message.topic, message.payload))

    def _tick_loop(self) -> None:
        while not self._stop.wait(self._tick_interval):
            try:
                self.publish(self.service.tick())
            except OtaError as error:  # e.g. the state directory became unwritable
                _log.error("stand-in timer failed: %s", error)

    def start(self) -> None:
        """Connect to the broker, subscribe to the Jobs topics, serve the control plane, start timers."""
        self.connection.connect()
        self.connection.subscribe(_JOBS_FILTER, self._on_message, qos=1)
        self.control_plane.start()
        self._stop.clear()
        self._ticker = threading.Thread(target=self._tick_loop, name="aws-standin-timers", daemon=True)
        self._ticker.start()
        _log.info("AWS IoT stand-in: control plane %s, state in %s", self.endpoint_url, self.state_dir)

    def close(self) -> None:
        """Stop timers, the control plane and the MQTT connection (the state stays on disk)."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=5)
            self._ticker = None
        self.control_plane.close()
        self.connection.close()

    def __enter__(self) -> AwsIotStandIn:
        self.start()
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()

    def boto3_client(self) -> Any:
        """A boto3 ``iot`` client pointed at this stand-in (needs the ``sim`` extra)."""
        import boto3  # noqa: PLC0415 - optional dependency of the simulator

        return boto3.client(
            "iot",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - the stand-in does not check signatures
        )

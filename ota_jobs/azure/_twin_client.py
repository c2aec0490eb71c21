"""Adapter: drives a ``TwinCore`` over ``ota_core.mqtt.MqttConnection``.

Received messages arrive on the connection's dispatcher thread and go straight into the core under a
lock; a small timer thread sends retries when they are due. Blocking calls (``get_twin``,
``patch_reported``) wait on a condition with a timeout. After every reconnect the twin is fetched again,
because the hub does not queue desired changes for an offline device.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ota_core.clock import Clock, SystemClock
from ota_core.errors import OtaError, RequestTimeoutError, TransportError
from ota_jobs.azure._errors import TwinRequestError
from ota_jobs.azure._twin_core import (
    DesiredPatch,
    MethodCall,
    Outgoing,
    ReportedAccepted,
    RequestFailed,
    RetryPolicy,
    TwinCore,
    TwinDocument,
    TwinStep,
)

if TYPE_CHECKING:
    from ota_core.mqtt import MqttConnection, MqttMessage, Subscription

__all__ = ["MethodHandler", "TwinClient"]

_log = logging.getLogger(__name__)

MethodHandler = Callable[[Any], tuple[int, Any]]
"""A direct-method handler: gets the request payload, returns (status, response payload)."""

_TIMER_MAX_WAIT = 0.5


class TwinClient:
    """The device side of the twin and direct methods over one MQTT connection."""

    def __init__(self, connection: MqttConnection, *, retry: RetryPolicy | None = None,
                 clock: Clock | None = None) -> None:
        self._connection = connection
        self._clock: Clock = clock or SystemClock()
        self._core = TwinCore(retry=retry)
        self._lock = threading.Condition(threading.RLock())
        self._document: TwinDocument | None = None
        self._document_seq = 0
        self._get_failure: RequestFailed | None = None
        self._results: dict[int, ReportedAccepted | RequestFailed] = {}
        self._desired_listeners: list[Callable[[DesiredPatch], None]] = []
        self._document_listeners: list[Callable[[TwinDocument], None]] = []
        self._methods: dict[str, MethodHandler] = {}
        self._subscriptions: list[Subscription] = []
        self._stopping = threading.Event()
        self._timer: threading.Thread | None = None
        self._started = False
        self._went_down = False

    # --- life cycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Subscribe (before anything is sent), then GET the twin; the connection must be connected."""
        if self._started:
            return
        self._started = True
        for topic_filter in self._core.subscriptions:
            self._subscriptions.append(self._connection.subscribe(topic_filter, self._on_message, qos=1))
        self._went_down = not self._connection.is_connected
        self._connection.add_connection_listener(self._on_connection)
        with self._lock:
            step = self._core.request_twin(self._clock.monotonic())
        self._apply(step)
        self._timer = threading.Thread(target=self._timer_loop, name="azure-twin-timer", daemon=True)
        self._timer.start()

    def stop(self) -> None:
        """Stop the timer and unsubscribe; pending waits end with a timeout."""
        self._stopping.set()
        with self._lock:
            self._lock.notify_all()
        if self._timer is not None:
            self._timer.join(timeout=2.0)
        for subscription in self._subscriptions:
            try:
                self._connection.unsubscribe(subscription)
            except TransportError as exc:
                _log.debug("unsubscribe failed while stopping: %s", exc)
        self._subscriptions.clear()

    def __enter__(self) -> TwinClient:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # --- application API -------------------------------------------------------------------------

    @property
    def document(self) -> TwinDocument | None:
        """The last full twin received."""
        with self._lock:
            return self._document

    @property
    def desired_version(self) -> int | None:
        """The newest desired ``$version`` applied."""
        with self._lock:
            return self._core.desired_version

    def on_desired(self, listener: Callable[[DesiredPatch], None]) -> None:
        """Call ``listener`` for each new desired patch (dispatcher thread; keep it short)."""
        self._desired_listeners.append(listener)

    def on_document(self, listener: Callable[[TwinDocument], None]) -> None:
        """Call ``listener`` for each full twin (at start and after every reconnect)."""
        self._document_listeners.append(listener)

    def on_method(self, name: str, handler: MethodHandler) -> None:
        """Answer direct method ``name`` with ``handler``; unknown methods get status 404."""
        self._methods[name] = handler

    def get_twin(self, timeout: float = 30.0) -> TwinDocument:
        """Fetch the full twin now and wait for it; raise ``TwinRequestError``/``RequestTimeoutError``."""
        with self._lock:
            seq = self._document_seq
            self._get_failure = None
            step = self._core.request_twin(self._clock.monotonic())
        self._apply(step)
        deadline = self._clock.monotonic() + timeout
        with self._lock:
            while self._document_seq == seq:
                failure = self._last_get_failure()
                if failure is not None:
                    raise TwinRequestError(f"twin GET failed: {failure.reason}", status=failure.status,
                                           retryable=failure.status in (0, 429) or failure.status >= 500)
                remaining = deadline - self._clock.monotonic()
                if remaining <= 0 or self._stopping.is_set():
                    raise RequestTimeoutError("no twin document in time")
                self._lock.wait(min(remaining, _TIMER_MAX_WAIT))
            assert self._document is not None
            return self._document

    def _last_get_failure(self) -> RequestFailed | None:
        return self._get_failure

    def patch_reported(self, patch: Mapping[str, Any], timeout: float = 60.0) -> int | None:
        """Send a reported patch (after those queued before it) and wait until the hub accepts it.

        Returns the new reported ``$version``; raises ``TwinRequestError`` when the hub rejects it or
        retries run out, ``RequestTimeoutError`` when ``timeout`` passes first.
        """
        with self._lock:
            ticket, step = self._core.patch_reported(patch, self._clock.monotonic())
        self._apply(step)
        deadline = self._clock.monotonic() + timeout
        with self._lock:
            while ticket not in self._results:
                remaining = deadline - self._clock.monotonic()
                if remaining <= 0 or self._stopping.is_set():
                    raise RequestTimeoutError("reported patch not acknowledged in time")
                self._lock.wait(min(remaining, _TIMER_MAX_WAIT))
            result = self._results.pop(ticket)
        if isinstance(result, RequestFailed):
            raise TwinRequestError(f"reported patch failed: {result.reason}", status=result.status,
                                   retryable=result.status in (0, 429) or result.status >= 500)
        return result.version

    # --- plumbing --------------------------------------------------------------------------------

    def _publish(self, outgoing: Outgoing) -> None:
        try:
            self._connection.publish(outgoing.topic, outgoing.payload, qos=1, wait=False)
        except TransportError as exc:
            # The core notices the missing answer and retries (or resends after reconnect).
            _log.info("publish to %s failed: %s", outgoing.topic, exc)

    def _apply(self, step: TwinStep) -> None:
        for outgoing in step.outgoing:
            self._publish(outgoing)
        for event in step.events:
            self._deliver(event)

    def _deliver(self, event: object) -> None:
        if isinstance(event, TwinDocument):
            with self._lock:
                self._document = event
                self._document_seq += 1
                self._lock.notify_all()
            for document_listener in list(self._document_listeners):
                self._safe(document_listener, event)
        elif isinstance(event, DesiredPatch):
            for desired_listener in list(self._desired_listeners):
                self._safe(desired_listener, event)
        elif isinstance(event, ReportedAccepted):
            with self._lock:
                self._results[event.ticket] = event
                self._lock.notify_all()
        elif isinstance(event, RequestFailed):
            with self._lock:
                if event.kind == "get":
                    self._get_failure = event
                else:
                    self._results[event.ticket] = event
                self._lock.notify_all()
        elif isinstance(event, MethodCall):
            self._answer(event)

    @staticmethod
    def _safe(listener: Callable[[Any], None], value: object) -> None:
        try:
            listener(value)
        except Exception:  # noqa: BLE001 - a listener's bug must not stop the twin
            _log.exception("twin listener failed")

    def _answer(self, call: MethodCall) -> None:
        handler = self._methods.get(call.name)
        if handler is None:
            status, payload = 404, {"error": f"unknown method {call.name}"}
        else:
            try:
                status, payload = handler(call.payload)
            except OtaError as exc:
                status, payload = 400, exc.as_report()
            except Exception:  # noqa: BLE001 - answer 500 instead of leaving the caller waiting
                _log.exception("direct method %s failed", call.name)
                status, payload = 500, {"error": "handler failed"}
        try:
            outgoing = self._core.method_response(call.rid, status, payload)
        except OtaError as exc:
            outgoing = self._core.method_response(call.rid, 500, exc.as_report())
        self._publish(outgoing)

    def _on_message(self, message: MqttMessage) -> None:
        try:
            with self._lock:
                step = self._core.receive(message.topic, message.payload, self._clock.monotonic())
        except OtaError as exc:
            _log.warning("ignoring bad twin message on %s: %s", message.topic[:120], exc)
            return
        self._apply(step)

    def _on_connection(self, connected: bool) -> None:
        if not connected:
            self._went_down = True
            return
        if not self._went_down or self._stopping.is_set():
            return  # the notification of the connection we started on, not a reconnect
        self._went_down = False
        with self._lock:
            step = self._core.reconnected(self._clock.monotonic())
        self._apply(step)

    def _timer_loop(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                now = self._clock.monotonic()
                deadline = self._core.next_deadline()
                if deadline is None or deadline > now:
                    wait = _TIMER_MAX_WAIT if deadline is None else min(_TIMER_MAX_WAIT, deadline - now)
                    self._lock.wait(max(0.01, wait))
                    continue
                step = self._core.poll(now)
            self._apply(step)

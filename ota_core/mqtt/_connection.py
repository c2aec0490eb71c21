"""An MQTT connection for devices: reconnects with backoff, restores subscriptions, never loses a QoS 1
publish silently, routes messages by topic filter and correlates request/response pairs.

paho-mqtt runs the network on a thread of this class; its callbacks only record state and queue
messages. Handlers run on a separate dispatcher thread, so a handler may publish and wait.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import attrs
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from ota_core.errors import (
    BrokerRefusedError,
    ConfigurationError,
    NotConnectedError,
    OtaError,
    PublishTimeoutError,
    RequestTimeoutError,
    TransportError,
)
from ota_core.mqtt._acks import AckTracker
from ota_core.mqtt._settings import MqttSettings
from ota_core.mqtt._topics import topic_matches, validate_topic_filter, validate_topic_name

_log = logging.getLogger(__name__)

MessageHandler = Callable[["MqttMessage"], None]
TokenExtractor = Callable[["MqttMessage"], str | None]
ConnectionListener = Callable[[bool], None]

_NETWORK_POLL_SECONDS = 0.5
_STOP = object()


@attrs.frozen
class MqttMessage:
    """An incoming message, with the topic prefix already removed."""

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False


@attrs.frozen(eq=False)
class Subscription:
    """A handle returned by ``subscribe``; pass it to ``unsubscribe``."""

    topic_filter: str
    qos: int
    handler: MessageHandler | None


@attrs.define
class _ReplySlot:
    event: threading.Event = attrs.Factory(threading.Event)
    message: MqttMessage | None = None


def backoff_delay(attempt: int, minimum: float, maximum: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter: a random delay in [minimum, min(maximum, minimum * 2**attempt)]."""
    ceiling = min(maximum, minimum * (2 ** min(attempt, 30)))
    return rng.uniform(minimum, max(minimum, ceiling))


class MqttConnection:
    """One device's MQTT connection; see the module docstring for the threading model."""

    def __init__(self, settings: MqttSettings, *, rng: random.Random | None = None) -> None:
        settings.validate()
        self._settings = settings
        self._address = settings.address
        self._prefix = settings.topic_prefix
        self._rng = rng or random.Random()
        self._tls_context = settings.tls_context()

        self._lock = threading.Lock()
        self._state_changed = threading.Condition(self._lock)
        self._connected = False
        self._got_connack = False
        self._closing = threading.Event()
        self._last_error: OtaError | None = None
        self._definitive_error: OtaError | None = None
        self._started = False
        self._ever_connected = False

        self._subscriptions: list[Subscription] = []
        self._reply_routes: list[tuple[str, TokenExtractor]] = []
        self._pending_replies: dict[str, _ReplySlot] = {}
        self._listeners: list[ConnectionListener] = []
        self._acks = AckTracker()
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()

        self._client = self._make_client()
        self._network_thread = threading.Thread(
            target=self._network_loop, name=f"mqtt-network-{settings.client_id}", daemon=True
        )
        self._dispatch_thread = threading.Thread(
            target=self._dispatch_loop, name=f"mqtt-dispatch-{settings.client_id}", daemon=True
        )

    # --- life cycle ------------------------------------------------------------------------------

    @property
    def settings(self) -> MqttSettings:
        """The settings this connection was made with."""
        return self._settings

    @property
    def is_connected(self) -> bool:
        """Whether the broker has accepted the connection and it has not dropped since."""
        with self._lock:
            return self._connected

    def connect(self, timeout: float | None = None) -> None:
        """Connect and wait for the broker's CONNACK.

        Transient failures (connection refused, unreachable) are retried with backoff until ``timeout``
        (default: the settings' ``connect_timeout``); a refusal by the broker or a TLS failure raises at once.
        After this returns, the connection reconnects by itself whenever it drops.
        """
        if self._closing.is_set():
            raise NotConnectedError("this connection was closed; make a new one")
        if not self._started:
            self._started = True
            self._dispatch_thread.start()
            self._network_thread.start()
        deadline = time.monotonic() + (timeout if timeout is not None else self._settings.connect_timeout)
        with self._state_changed:
            while not self._connected and self._definitive_error is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._state_changed.wait(remaining)
            connected, definitive, last = self._connected, self._definitive_error, self._last_error
        if connected:
            return
        self.close()
        if definitive is not None:
            raise definitive
        if isinstance(last, BrokerRefusedError):
            raise BrokerRefusedError(
                f"could not connect to {self._settings.broker_url}: {last.message}", details=last.details
            )
        raise NotConnectedError(
            f"no connection to {self._settings.broker_url} within the timeout"
            + (f" (last error: {last.message})" if last else ""),
        )

    def wait_connected(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the connection to be up; return whether it is."""
        with self._state_changed:
            return self._state_changed.wait_for(lambda: self._connected or self._closing.is_set(), timeout) and (
                self._connected
            )

    def close(self) -> None:
        """Disconnect cleanly and stop the threads; safe to call more than once."""
        if self._closing.is_set():
            return
        self._closing.set()
        with contextlib.suppress(OSError, ValueError):
            self._client.disconnect()
        with self._state_changed:
            self._connected = False
            self._state_changed.notify_all()
        self._acks.connection_lost()
        current = threading.current_thread()
        if self._network_thread.is_alive() and self._network_thread is not current:
            self._network_thread.join(timeout=5.0)
        if not self._network_thread.is_alive():
            # paho keeps a wake-up socket pair that only its finaliser closes; close it now, deterministically.
            release = getattr(self._client, "_reset_sockets", None)
            if callable(release):
                release()
        self._inbox.put(_STOP)
        if self._dispatch_thread.is_alive() and self._dispatch_thread is not current:
            self._dispatch_thread.join(timeout=5.0)

    def __enter__(self) -> MqttConnection:
        self.connect()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def add_connection_listener(self, listener: ConnectionListener) -> None:
        """Call ``listener(connected)`` (on the dispatcher thread) whenever the connection goes up or down."""
        with self._lock:
            self._listeners.append(listener)

    # --- subscribe -------------------------------------------------------------------------------

    def subscribe(self, topic_filter: str, handler: MessageHandler | None, qos: int = 1) -> Subscription:
        """Subscribe and wait for the broker's SUBACK; ``handler`` gets every matching message.

        The subscription is restored after every reconnect.
        """
        validate_topic_filter(topic_filter)
        if qos not in (0, 1, 2):
            raise ConfigurationError(f"qos must be 0, 1 or 2, got {qos!r}")
        subscription = Subscription(topic_filter=topic_filter, qos=qos, handler=handler)
        with self._lock:
            self._subscriptions.append(subscription)
        try:
            self._send_subscribe(topic_filter, qos)
        except OtaError:
            self._remove_subscription(subscription)
            raise
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Remove a subscription; the broker is told once no other subscription uses the same filter."""
        still_used = self._remove_subscription(subscription)
        if still_used or not self.is_connected:
            return
        result, packet_id = self._client.unsubscribe(self._prefix + subscription.topic_filter)
        if result != MQTTErrorCode.MQTT_ERR_SUCCESS or packet_id is None:
            return  # not connected: the filter is not restored on reconnect either
        self._acks.register(packet_id, wait=True)
        self._acks.wait(packet_id, self._settings.operation_timeout)

    def add_reply_route(self, topic_filter: str, token_of: TokenExtractor, qos: int = 1) -> Subscription:
        """Subscribe to replies on ``topic_filter``; ``token_of`` extracts the correlation token of a reply.

        A reply whose token a ``request`` waits for goes to that request; any other message on the filter
        goes to ordinary handlers (or is dropped with a debug log line).
        """
        validate_topic_filter(topic_filter)
        with self._lock:
            self._reply_routes.append((topic_filter, token_of))
        return self.subscribe(topic_filter, None, qos)

    def _remove_subscription(self, subscription: Subscription) -> bool:
        with self._lock:
            if subscription in self._subscriptions:
                self._subscriptions.remove(subscription)
            if subscription.handler is None:
                self._reply_routes = [
                    route for route in self._reply_routes if route[0] != subscription.topic_filter
                ]
            return any(other.topic_filter == subscription.topic_filter for other in self._subscriptions)

    def _send_subscribe(self, topic_filter: str, qos: int) -> None:
        timeout = self._settings.operation_timeout
        if not self.wait_connected(timeout):
            raise NotConnectedError(f"cannot subscribe to {topic_filter!r}: not connected")
        result, packet_id = self._client.subscribe(self._prefix + topic_filter, qos)
        if result == MQTTErrorCode.MQTT_ERR_NO_CONN or packet_id is None:
            # Dropped in between: the reconnect restores every registered subscription.
            if not self.wait_connected(timeout):
                raise NotConnectedError(f"cannot subscribe to {topic_filter!r}: not connected")
            return
        self._acks.register(packet_id, wait=True)
        answered, reason_codes = self._acks.wait(packet_id, timeout)
        if not answered:
            if self.wait_connected(timeout):
                return  # the connection dropped; the reconnect restored the subscription
            raise NotConnectedError(f"no SUBACK for {topic_filter!r} within {timeout} s")
        for code in reason_codes:
            if isinstance(code, ReasonCode) and code.is_failure:
                raise TransportError(f"broker refused the subscription to {topic_filter!r}: {code}")

    # --- publish ---------------------------------------------------------------------------------

    def publish(
        self,
        topic: str,
        payload: bytes | str,
        qos: int = 1,
        retain: bool = False,
        *,
        wait: bool = True,
        timeout: float | None = None,
    ) -> None:
        """Publish a message.

        With QoS 1 and ``wait`` this returns once the broker acknowledged it, or raises
        ``PublishTimeoutError``; a message published while the link is down is sent after the reconnect.
        A QoS 0 message that cannot be sent now raises ``NotConnectedError`` instead of vanishing.
        """
        validate_topic_name(topic)
        if qos not in (0, 1, 2):
            raise ConfigurationError(f"qos must be 0, 1 or 2, got {qos!r}")
        if self._closing.is_set():
            raise NotConnectedError("this connection is closed")
        data = payload.encode() if isinstance(payload, str) else bytes(payload)
        try:
            info = self._client.publish(self._prefix + topic, data, qos, retain)
        except ValueError as error:
            raise ConfigurationError(f"cannot publish to {topic!r}: {error}") from error
        if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            raise TransportError(f"outgoing queue is full; message to {topic!r} not queued")
        if qos == 0:
            if info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN:
                raise NotConnectedError(f"not connected; QoS 0 message to {topic!r} was not sent")
            return
        if not wait:
            return
        limit = timeout if timeout is not None else self._settings.operation_timeout
        if not _wait_acknowledged(info, limit):
            raise PublishTimeoutError(
                f"broker did not acknowledge the message to {topic!r} within {limit} s; "
                "it may or may not have been delivered",
                details={"topic": topic, "packet_id": info.mid},
            )

    def request(
        self, topic: str, payload: bytes | str, *, token: str, timeout: float | None = None, qos: int = 1
    ) -> MqttMessage:
        """Publish a request and wait for the reply carrying ``token`` on a route added by ``add_reply_route``."""
        limit = timeout if timeout is not None else self._settings.operation_timeout
        slot = _ReplySlot()
        with self._lock:
            if token in self._pending_replies:
                raise ConfigurationError(f"a request with token {token!r} is already waiting")
            self._pending_replies[token] = slot
        try:
            self.publish(topic, payload, qos, wait=False)
            if not slot.event.wait(limit):
                raise RequestTimeoutError(
                    f"no reply to the request on {topic!r} (token {token!r}) within {limit} s",
                    details={"topic": topic, "token": token},
                )
        finally:
            with self._lock:
                self._pending_replies.pop(token, None)
        assert slot.message is not None
        return slot.message

    # --- paho plumbing (network thread) ----------------------------------------------------------

    def _make_client(self) -> paho.Client:
        settings = self._settings
        protocol = paho.MQTTv5 if settings.protocol == "5" else paho.MQTTv311
        kwargs: dict[str, Any] = {"client_id": settings.client_id, "protocol": protocol}
        if protocol == paho.MQTTv311:
            kwargs["clean_session"] = settings.clean_session
        client = paho.Client(CallbackAPIVersion.VERSION2, **kwargs)
        client.max_inflight_messages_set(settings.max_inflight)
        client.connect_timeout = min(settings.connect_timeout, 30.0)
        if self._tls_context is not None:
            client.tls_set_context(self._tls_context)
        client.on_socket_open = _set_tcp_nodelay
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe_or_unsubscribe
        client.on_unsubscribe = self._on_subscribe_or_unsubscribe
        client.connect_async(
            self._address.host,
            self._address.port,
            keepalive=settings.keepalive,
            clean_start=settings.clean_session if protocol == paho.MQTTv5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
        )
        return client

    def _network_loop(self) -> None:
        attempt = 0
        socket_open = False
        while not self._closing.is_set():
            if not socket_open:
                if attempt and self._closing.wait(
                    backoff_delay(
                        attempt - 1,
                        self._settings.reconnect_min_delay,
                        self._settings.reconnect_max_delay,
                        self._rng,
                    )
                ):
                    break
                attempt += 1
                if self._settings.username is not None or self._settings.password is not None:
                    self._client.username_pw_set(self._settings.username, self._settings.current_password())
                with self._lock:
                    self._got_connack = False
                try:
                    self._client.reconnect()
                    socket_open = True
                except ssl.SSLError as error:
                    self._record_failure(BrokerRefusedError(f"TLS handshake failed: {error}"), definitive=True)
                except OSError as error:
                    self._record_failure(_describe_socket_error(self._settings.broker_url, error))
                continue
            result = self._client.loop(timeout=_NETWORK_POLL_SECONDS)
            if result != MQTTErrorCode.MQTT_ERR_SUCCESS:
                socket_open = False
                self._mark_disconnected(f"network loop ended with {paho.error_string(result)}")
            with self._lock:
                if self._connected:
                    attempt = 0
        self._mark_disconnected("closed")

    def _record_failure(self, error: OtaError, *, definitive: bool = False) -> None:
        with self._state_changed:
            self._last_error = error
            if definitive and not self._ever_connected:
                self._definitive_error = error
            self._state_changed.notify_all()
        _log.warning("MQTT connection to %s failed: %s", self._settings.broker_url, error.message)

    def _mark_disconnected(self, why: str) -> None:
        with self._state_changed:
            was_connected = self._connected
            self._connected = False
            if not self._got_connack and not self._closing.is_set() and self._last_error is None:
                self._last_error = BrokerRefusedError(f"connection closed before CONNACK ({why})")
                if self._address.tls and not self._ever_connected:
                    # With TLS 1.3 a rejected client certificate shows up only as this early close.
                    self._last_error = BrokerRefusedError(
                        f"broker closed the TLS connection before CONNACK ({why}); "
                        "is the client certificate accepted by the broker?"
                    )
                    self._definitive_error = self._last_error
            self._state_changed.notify_all()
        self._acks.connection_lost()
        if was_connected:
            _log.info("MQTT connection to %s lost: %s", self._settings.broker_url, why)
            self._inbox.put((self._listeners_snapshot(), False))

    def _on_connect(
        self,
        client: paho.Client,
        _userdata: Any,
        flags: paho.ConnectFlags,
        reason_code: ReasonCode,
        _properties: Any,
    ) -> None:
        if reason_code.is_failure:
            error = BrokerRefusedError(
                f"broker refused the connection: {reason_code}", details={"reason": str(reason_code)}
            )
            with self._state_changed:
                self._got_connack = True
                self._last_error = error
                if not self._ever_connected:
                    self._definitive_error = error
                self._state_changed.notify_all()
            return
        with self._lock:
            filters: dict[str, int] = {}
            for subscription in self._subscriptions:
                filters[subscription.topic_filter] = max(filters.get(subscription.topic_filter, 0), subscription.qos)
        if filters and not flags.session_present:
            result, packet_id = client.subscribe([(self._prefix + name, qos) for name, qos in filters.items()])
            if result == MQTTErrorCode.MQTT_ERR_SUCCESS and packet_id is not None:
                self._acks.register(packet_id, wait=False)
        with self._state_changed:
            self._got_connack = True
            self._connected = True
            self._ever_connected = True
            self._last_error = None
            self._state_changed.notify_all()
        _log.info("MQTT connected to %s as %s", self._settings.broker_url, self._settings.client_id)
        self._inbox.put((self._listeners_snapshot(), True))

    def _on_disconnect(
        self, _client: paho.Client, _userdata: Any, _flags: Any, reason_code: ReasonCode, _properties: Any
    ) -> None:
        self._mark_disconnected(str(reason_code))

    def _on_subscribe_or_unsubscribe(
        self, _client: paho.Client, _userdata: Any, packet_id: int, reason_codes: Any, _properties: Any
    ) -> None:
        self._acks.complete(packet_id, list(reason_codes) if isinstance(reason_codes, list) else [reason_codes])

    def _on_message(self, _client: paho.Client, _userdata: Any, raw: paho.MQTTMessage) -> None:
        try:
            wire_topic = raw.topic
        except UnicodeDecodeError:
            _log.warning("dropped a message whose topic is not UTF-8")
            return
        if not wire_topic.startswith(self._prefix):
            _log.debug("dropped a message outside the topic prefix: %s", wire_topic)
            return
        message = MqttMessage(
            topic=wire_topic[len(self._prefix) :], payload=bytes(raw.payload), qos=raw.qos, retain=bool(raw.retain)
        )
        if self._route_reply(message):
            return
        self._inbox.put(message)

    def _route_reply(self, message: MqttMessage) -> bool:
        with self._lock:
            if not self._pending_replies:
                return False
            routes = [extract for name, extract in self._reply_routes if topic_matches(name, message.topic)]
        for extract in routes:
            try:
                token = extract(message)
            except Exception:  # noqa: BLE001 - a user extractor must not kill the network thread
                _log.exception("reply token extractor failed on %s", message.topic)
                continue
            if token is None:
                continue
            with self._lock:
                slot = self._pending_replies.get(token)
            if slot is not None:
                slot.message = message
                slot.event.set()
                return True
        return False

    # --- dispatcher thread -----------------------------------------------------------------------

    def _dispatch_loop(self) -> None:
        while True:
            item = self._inbox.get()
            if item is _STOP:
                return
            if isinstance(item, tuple):
                listeners, connected = item
                _notify_listeners(listeners, connected)
                continue
            self._dispatch(item)

    def _dispatch(self, message: MqttMessage) -> None:
        with self._lock:
            handlers = [
                subscription.handler
                for subscription in self._subscriptions
                if subscription.handler is not None and topic_matches(subscription.topic_filter, message.topic)
            ]
        if not handlers:
            _log.debug("no handler for %s; message dropped", message.topic)
        for handler in handlers:
            try:
                handler(message)
            except Exception:  # noqa: BLE001 - one faulty handler must not stop the others
                _log.exception("handler for %s failed", message.topic)

    def _listeners_snapshot(self) -> list[ConnectionListener]:
        with self._lock:
            return list(self._listeners)


def _notify_listeners(listeners: list[ConnectionListener], connected: bool) -> None:
    """Tell the listeners registered when the change happened; one failing listener does not stop the rest."""
    for listener in listeners:
        try:
            listener(connected)
        except Exception:  # noqa: BLE001 - one faulty listener must not stop the others
            _log.exception("connection listener failed")


def _wait_acknowledged(info: paho.MQTTMessageInfo, timeout: float) -> bool:
    """Wait for the PUBACK of a QoS 1 message, including one queued while offline and sent after a reconnect.

    paho's ``wait_for_publish`` refuses messages queued while disconnected although it sends them after the
    reconnect, so this waits on the same condition paho signals when the acknowledgement arrives.
    """
    condition: threading.Condition = info._condition
    with condition:
        return condition.wait_for(lambda: bool(info._published), timeout)


def _set_tcp_nodelay(_client: paho.Client, _userdata: Any, sock: Any) -> None:
    """Turn off Nagle's algorithm: without it, every QoS 1 round trip can stall ~40 ms on delayed ACKs."""
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _describe_socket_error(url: str, error: OSError) -> OtaError:
    if isinstance(error, ConnectionRefusedError):
        return BrokerRefusedError(f"connection to {url} refused: nothing listens there")
    return NotConnectedError(f"cannot reach {url}: {error}")


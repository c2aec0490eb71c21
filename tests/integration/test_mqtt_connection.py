"""The MQTT connection against a real mosquitto: QoS, routing, requests, reconnects, TLS and prefixes."""

from __future__ import annotations

import json
import queue
import threading
import time
from pathlib import Path

import pytest

from ota_cloud.broker import MosquittoBroker
from ota_cloud.pki import LocalPki
from ota_core.errors import (
    BrokerRefusedError,
    ConfigurationError,
    InvalidTopicError,
    NotConnectedError,
    PublishTimeoutError,
    RequestTimeoutError,
)
from ota_core.mqtt import MqttConnection, MqttMessage, MqttSettings
from tests.conftest import ConnectionFactory

pytestmark = pytest.mark.broker


def _collector() -> tuple[queue.Queue[MqttMessage], object]:
    inbox: queue.Queue[MqttMessage] = queue.Queue()
    return inbox, inbox.put


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
@pytest.mark.parametrize("qos", [0, 1])
def test_publish_subscribe(mqtt_connection_factory: ConnectionFactory, protocol: str, qos: int) -> None:
    receiver = mqtt_connection_factory("receiver", protocol=protocol)
    sender = mqtt_connection_factory("sender", protocol=protocol)
    inbox: queue.Queue[MqttMessage] = queue.Queue()
    receiver.subscribe("test/data", inbox.put, qos=qos)
    sender.publish("test/data", b"\x00\x01binary", qos=qos)
    message = inbox.get(timeout=5)
    assert message.topic == "test/data"
    assert message.payload == b"\x00\x01binary"
    assert message.qos == qos
    assert receiver.is_connected


def test_wildcard_routing_and_dollar_topics(mqtt_connection_factory: ConnectionFactory) -> None:
    receiver = mqtt_connection_factory("receiver")
    sender = mqtt_connection_factory("sender")
    everything: queue.Queue[MqttMessage] = queue.Queue()
    plus: queue.Queue[MqttMessage] = queue.Queue()
    aws: queue.Queue[MqttMessage] = queue.Queue()
    receiver.subscribe("#", everything.put)
    receiver.subscribe("devices/+/status", plus.put)
    receiver.subscribe("$aws/things/+/jobs/notify", aws.put)
    sender.publish("devices/d1/status", "up")
    sender.publish("devices/d1/other", "x")
    sender.publish("$aws/things/d1/jobs/notify", "{}")
    assert plus.get(timeout=5).topic == "devices/d1/status"
    assert aws.get(timeout=5).topic == "$aws/things/d1/jobs/notify"
    seen = {everything.get(timeout=5).topic for _ in range(2)}
    assert seen == {"devices/d1/status", "devices/d1/other"}
    time.sleep(0.2)
    assert everything.empty()  # '#' never delivers '$' topics
    assert plus.empty()


def test_handler_errors_do_not_stop_dispatch(mqtt_connection_factory: ConnectionFactory) -> None:
    connection = mqtt_connection_factory("c")
    inbox: queue.Queue[MqttMessage] = queue.Queue()

    def broken(_message: MqttMessage) -> None:
        raise RuntimeError("handler bug")

    connection.subscribe("t/x", broken)
    connection.subscribe("t/x", inbox.put)
    connection.publish("t/x", "1")
    assert inbox.get(timeout=5).payload == b"1"


def test_unsubscribe_stops_delivery(mqtt_connection_factory: ConnectionFactory) -> None:
    connection = mqtt_connection_factory("c")
    inbox: queue.Queue[MqttMessage] = queue.Queue()
    subscription = connection.subscribe("t/u", inbox.put)
    connection.publish("t/u", "1")
    assert inbox.get(timeout=5).payload == b"1"
    connection.unsubscribe(subscription)
    connection.publish("t/u", "2")
    time.sleep(0.2)
    assert inbox.empty()


def test_request_response_correlation(mqtt_connection_factory: ConnectionFactory) -> None:
    server = mqtt_connection_factory("server")
    device = mqtt_connection_factory("device")

    def answer(message: MqttMessage) -> None:
        request = json.loads(message.payload)
        if request["clientToken"] == "ignore-me":
            return
        server.publish("svc/reply/accepted", json.dumps({"clientToken": "someone-else"}))
        server.publish("svc/reply/accepted", json.dumps({"clientToken": request["clientToken"], "ok": True}))

    server.subscribe("svc/request", answer)

    def token_of(message: MqttMessage) -> str | None:
        token = json.loads(message.payload).get("clientToken")
        return token if isinstance(token, str) else None

    stray: queue.Queue[MqttMessage] = queue.Queue()
    device.add_reply_route("svc/reply/+", token_of)
    device.subscribe("svc/reply/+", stray.put)
    reply = device.request("svc/request", json.dumps({"clientToken": "t-1"}), token="t-1", timeout=5)
    assert json.loads(reply.payload) == {"clientToken": "t-1", "ok": True}
    assert json.loads(stray.get(timeout=5).payload)["clientToken"] == "someone-else"
    with pytest.raises(RequestTimeoutError):
        device.request("svc/request", json.dumps({"clientToken": "ignore-me"}), token="ignore-me", timeout=0.3)


def test_duplicate_pending_token_is_refused(mqtt_connection_factory: ConnectionFactory) -> None:
    device = mqtt_connection_factory("device")
    device.add_reply_route("r/#", lambda message: message.payload.decode())
    errors: list[Exception] = []

    def first() -> None:
        try:
            device.request("q", "same", token="same", timeout=1.0)
        except RequestTimeoutError as error:
            errors.append(error)

    thread = threading.Thread(target=first)
    thread.start()
    time.sleep(0.2)
    with pytest.raises(ConfigurationError):
        device.request("q", "same", token="same", timeout=0.1)
    thread.join()
    assert errors


def test_invalid_topics_raise_typed_errors(mqtt_connection_factory: ConnectionFactory) -> None:
    connection = mqtt_connection_factory("c")
    with pytest.raises(InvalidTopicError):
        connection.subscribe("a/#/b", None)
    with pytest.raises(InvalidTopicError):
        connection.publish("a/+", "x")
    with pytest.raises(ConfigurationError):
        connection.publish("a", "x", qos=3)
    with pytest.raises(ConfigurationError):
        connection.subscribe("a", None, qos=7)


def test_topic_prefix_isolates_devices(mqtt_connection_factory: ConnectionFactory) -> None:
    first = mqtt_connection_factory("first", topic_prefix="fleet/dev1/")
    second = mqtt_connection_factory("second", topic_prefix="fleet/dev2/")
    observer = mqtt_connection_factory("observer")
    first_inbox: queue.Queue[MqttMessage] = queue.Queue()
    second_inbox: queue.Queue[MqttMessage] = queue.Queue()
    wire: queue.Queue[MqttMessage] = queue.Queue()
    first.subscribe("$iothub/twin/res/#", first_inbox.put)
    second.subscribe("$iothub/twin/res/#", second_inbox.put)
    observer.subscribe("fleet/#", wire.put)
    observer.publish("fleet/dev1/$iothub/twin/res/200/?$rid=1", "for dev1")
    message = first_inbox.get(timeout=5)
    assert message.topic == "$iothub/twin/res/200/?$rid=1"
    assert message.payload == b"for dev1"
    second.publish("$iothub/twin/PATCH/properties/reported/?$rid=2", "from dev2")
    assert wire.get(timeout=5).topic == "fleet/dev1/$iothub/twin/res/200/?$rid=1"
    assert wire.get(timeout=5).topic == "fleet/dev2/$iothub/twin/PATCH/properties/reported/?$rid=2"
    time.sleep(0.2)
    assert second_inbox.empty()


def test_reconnect_restores_subscriptions_and_delivers_outage_publish(
    mosquitto: MosquittoBroker, mqtt_connection_factory: ConnectionFactory
) -> None:
    states: queue.Queue[bool] = queue.Queue()
    device = mqtt_connection_factory("device", reconnect_min_delay=0.05, reconnect_max_delay=0.2)
    device.add_connection_listener(states.put)
    inbox: queue.Queue[MqttMessage] = queue.Queue()
    device.subscribe("cmd/#", inbox.put)
    mosquitto.kill()
    assert states.get(timeout=5) is False
    assert not device.is_connected

    outcome: list[BaseException | None] = []

    def publish_during_outage() -> None:
        try:
            device.publish("cmd/outage", "queued while down", timeout=10)
            outcome.append(None)
        except PublishTimeoutError as error:
            outcome.append(error)

    publisher = threading.Thread(target=publish_during_outage)
    publisher.start()
    time.sleep(0.3)
    mosquitto.start()
    assert states.get(timeout=10) is True
    publisher.join(15)
    assert outcome == [None]  # acknowledged after the reconnect, not lost
    # The subscription was restored: our own outage message and a fresh one both arrive.
    other = mqtt_connection_factory("other")
    other.publish("cmd/after", "hello again")
    topics = {inbox.get(timeout=5).topic for _ in range(2)}
    assert topics == {"cmd/outage", "cmd/after"}


def test_publish_during_endless_outage_raises_instead_of_losing(
    mosquitto: MosquittoBroker, mqtt_connection_factory: ConnectionFactory
) -> None:
    device = mqtt_connection_factory("device", reconnect_min_delay=0.05, reconnect_max_delay=0.1, operation_timeout=1.0)
    mosquitto.kill()
    assert device.wait_connected(0.01) is True or not device.is_connected
    deadline = time.monotonic() + 5
    while device.is_connected and time.monotonic() < deadline:
        time.sleep(0.02)
    with pytest.raises(PublishTimeoutError):
        device.publish("t", "never acknowledged", timeout=0.5)
    with pytest.raises(Exception) as qos0:
        device.publish("t", "qos0", qos=0)
    assert isinstance(qos0.value, NotConnectedError)
    with pytest.raises(NotConnectedError):
        device.subscribe("x", None)


def test_refused_connection_is_a_typed_error(mosquitto: MosquittoBroker) -> None:
    port = mosquitto.port
    mosquitto.stop()
    connection = MqttConnection(MqttSettings(broker_url=f"mqtt://127.0.0.1:{port}", client_id="c", connect_timeout=0.5))
    with pytest.raises(BrokerRefusedError, match="refused"):
        connection.connect()
    with pytest.raises(NotConnectedError):
        connection.connect()


def test_unreachable_host_times_out_with_typed_error() -> None:
    connection = MqttConnection(
        MqttSettings(broker_url="mqtt://no-such-host.invalid:1883", client_id="c", connect_timeout=0.5)
    )
    with pytest.raises(NotConnectedError, match="within the timeout"):
        connection.connect()


def test_password_rejected_by_broker(tmp_path: Path) -> None:
    broker = MosquittoBroker(tmp_path / "auth-broker", allow_anonymous=False)
    broker.start()
    try:
        connection = MqttConnection(
            MqttSettings(broker_url=broker.url, client_id="c", username="u", password="wrong", connect_timeout=3)
        )
        with pytest.raises(BrokerRefusedError, match="refused the connection"):
            connection.connect()
    finally:
        broker.close()


def _tls_settings(broker: MosquittoBroker, pki: LocalPki, **overrides: object) -> MqttSettings:
    options: dict[str, object] = {
        "broker_url": broker.tls_url,
        "client_id": "tls-device",
        "ca_file": pki.ca_file,
        "cert_file": pki.client.cert_file,
        "key_file": pki.client.key_file,
        "connect_timeout": 3.0,
    }
    options.update(overrides)
    return MqttSettings(**options)  # type: ignore[arg-type]


def test_mutual_tls_accepts_good_client_certificate(tls_mosquitto: MosquittoBroker, test_pki: LocalPki) -> None:
    with MqttConnection(_tls_settings(tls_mosquitto, test_pki)) as connection:
        inbox: queue.Queue[MqttMessage] = queue.Queue()
        connection.subscribe("secure/t", inbox.put)
        connection.publish("secure/t", "over tls")
        assert inbox.get(timeout=5).payload == b"over tls"


def test_mutual_tls_rejects_missing_client_certificate(tls_mosquitto: MosquittoBroker, test_pki: LocalPki) -> None:
    connection = MqttConnection(_tls_settings(tls_mosquitto, test_pki, cert_file=None, key_file=None))
    with pytest.raises(BrokerRefusedError, match="client certificate"):
        connection.connect()


def test_mutual_tls_rejects_certificate_of_another_ca(tls_mosquitto: MosquittoBroker, test_pki: LocalPki) -> None:
    connection = MqttConnection(
        _tls_settings(
            tls_mosquitto,
            test_pki,
            cert_file=test_pki.rogue_client.cert_file,
            key_file=test_pki.rogue_client.key_file,
        )
    )
    with pytest.raises(BrokerRefusedError):
        connection.connect()


def test_client_refuses_server_it_does_not_trust(tls_mosquitto: MosquittoBroker, test_pki: LocalPki) -> None:
    connection = MqttConnection(_tls_settings(tls_mosquitto, test_pki, ca_file=test_pki.rogue_ca_file))
    with pytest.raises(BrokerRefusedError, match="TLS"):
        connection.connect()

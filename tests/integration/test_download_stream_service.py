"""The stream service stand-in on its own, driven with raw MQTT messages (cbor2/json, not ota_stream)."""

from __future__ import annotations

import json
import queue
from collections.abc import Iterator
from typing import Any

import cbor2
import pytest

from ota_cloud.aws_streams import StreamDataPlane, StreamStore
from ota_core.mqtt import MqttConnection, MqttMessage
from tests.conftest import ConnectionFactory

pytestmark = pytest.mark.broker

BASE = "$aws/things/dev1/streams/S1"
DATA = bytes(range(256)) * 1200  # 307,200 bytes


class Client:
    def __init__(self, connection: MqttConnection) -> None:
        self.connection = connection
        self.inbox: queue.SimpleQueue[MqttMessage] = queue.SimpleQueue()
        connection.subscribe(f"{BASE}/#", self.inbox.put, qos=0)

    def send(self, operation: str, fmt: str, fields: dict[str, Any] | bytes) -> None:
        if isinstance(fields, bytes):
            payload = fields
        elif fmt == "cbor":
            payload = cbor2.dumps(fields)
        else:
            payload = json.dumps(fields).encode()
        self.connection.publish(f"{BASE}/{operation}/{fmt}", payload, qos=0, wait=False)

    def replies(self, count: int, timeout: float = 5.0) -> list[MqttMessage]:
        got: list[MqttMessage] = []
        while len(got) < count:
            message = self.inbox.get(timeout=timeout)
            if "/get/" in message.topic or "/describe/" in message.topic:
                continue  # our own requests, echoed by the wildcard subscription
            got.append(message)
        return got

    def nothing_more(self) -> bool:
        try:
            while True:
                message = self.inbox.get(timeout=0.3)
                if "/get/" not in message.topic and "/describe/" not in message.topic:
                    return False
        except queue.Empty:
            return True


@pytest.fixture
def client(mqtt_connection_factory: ConnectionFactory) -> Iterator[Client]:
    store = StreamStore()
    store.create_stream("S1", [{"fileId": 0, "data": DATA}, {"fileId": 7, "data": b"small"}], description="d")
    with StreamDataPlane(mqtt_connection_factory("service"), store):
        yield Client(mqtt_connection_factory("raw-device"))


def decode(message: MqttMessage) -> dict[str, Any]:
    value = cbor2.loads(message.payload) if message.topic.endswith("cbor") else json.loads(message.payload)
    assert isinstance(value, dict)
    return value


def test_cbor_blocks_are_indefinite_maps_and_follow_the_bitmap(client: Client) -> None:
    client.send("get", "cbor", {"c": "t1", "f": 0, "l": 1024, "o": 10, "b": bytes([0b00010011]), "n": 3})
    replies = client.replies(3)
    assert all(m.topic == f"{BASE}/data/cbor" and m.payload[0] == 0xBF and m.payload[-1] == 0xFF for m in replies)
    blocks = [decode(m) for m in replies]
    assert [b["i"] for b in blocks] == [10, 11, 14]
    assert all(b["c"] == "t1" and b["f"] == 0 and b["l"] == 1024 for b in blocks)
    assert blocks[2]["p"] == DATA[14 * 1024 : 15 * 1024]
    assert client.nothing_more()


def test_json_count_and_base64_and_short_last_block(client: Client) -> None:
    client.send("get", "json", {"f": 0, "l": 100_000, "o": 3, "n": 1})
    (reply,) = client.replies(1)
    block = decode(reply)
    assert block["i"] == 3 and block["l"] == len(DATA) - 300_000
    assert "c" not in block


def test_about_128_kib_per_request(client: Client) -> None:
    client.send("get", "cbor", {"f": 0, "l": 4096, "o": 0, "n": 100})
    assert len(client.replies(32)) == 32
    assert client.nothing_more()


def test_describe(client: Client) -> None:
    client.send("describe", "json", {"c": "d1"})
    (reply,) = client.replies(1)
    assert reply.topic == f"{BASE}/description/json"
    assert decode(reply) == {"c": "d1", "s": 1, "d": "d", "r": [{"f": 0, "z": len(DATA)}, {"f": 7, "z": 5}]}


@pytest.mark.parametrize(
    ("fmt", "fields", "code"),
    [
        ("cbor", b"\xff\x00garbage", "InvalidCbor"),
        ("json", b"{not json", "InvalidJson"),
        ("cbor", {"f": 0, "l": 100, "n": 1}, "BlockSizeOutOfBounds"),
        ("cbor", {"f": 0, "l": 131073, "n": 1}, "BlockSizeOutOfBounds"),
        ("cbor", {"f": 0, "l": 1024, "o": 98305, "n": 1}, "OffsetOutOfBounds"),
        ("cbor", {"f": 0, "l": 1024, "o": 0, "n": 98305}, "BlockCountLimitExceeded"),
        ("cbor", {"f": 0, "l": 1024, "o": 0, "b": bytes(12288)}, "BlockBitmapLimitExceeded"),
        ("cbor", {"f": 0, "l": 1024, "o": 0, "b": "0xFFFF"}, "InvalidCbor"),
        ("cbor", {"l": 1024, "n": 1}, "ResourceNotFound"),
        ("cbor", {"f": 3, "l": 1024, "n": 1}, "ResourceNotFound"),
        ("cbor", {"f": 0, "l": 1024, "n": 1, "s": 2}, "VersionMismatch"),
        ("cbor", {"f": 0, "l": 1024, "o": 301, "n": 1}, "InvalidRequest"),
        ("json", {"c": "x" * 65, "f": 0, "l": 1024, "n": 1}, "InvalidRequest"),
        ("json", {"f": 0, "l": 1024, "b": "zz"}, "InvalidRequest"),
    ],
)
def test_refusals_carry_the_service_codes_in_both_key_styles(
    client: Client, fmt: str, fields: dict[str, Any] | bytes, code: str
) -> None:
    client.send("get", fmt, fields)
    (reply,) = client.replies(1)
    assert reply.topic == f"{BASE}/rejected/{fmt}"
    body = decode(reply)
    assert body["o"] == body["code"] == code
    assert body["m"] == body["message"]


def test_unknown_format_is_invalid_topic(client: Client) -> None:
    client.send("get", "xml", b"<x/>")
    (reply,) = client.replies(1)
    assert reply.topic == f"{BASE}/rejected/json"
    assert decode(reply)["o"] == "InvalidTopic"


def test_unknown_stream(client: Client) -> None:
    client.connection.subscribe("$aws/things/dev1/streams/S2/rejected/json", client.inbox.put, qos=0)
    client.connection.publish("$aws/things/dev1/streams/S2/get/json", b'{"f":0,"l":1024,"n":1}', qos=0, wait=False)
    (reply,) = client.replies(1)
    assert decode(reply)["o"] == "ResourceNotFound"

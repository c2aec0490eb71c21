"""Throughput of ota_core's MqttConnection against raw paho-mqtt, through the same mosquitto, same run.

Each side streams N QoS 1 messages from a publisher client to a subscriber client and is timed until the
subscriber has every message and the publisher every acknowledgement. Prints messages/s, MB/s and the
ratio ours/raw (goal: >= 0.9). Run by hand:  .venv/bin/python -m benchmarks.bench_mqtt_connection
"""

from __future__ import annotations

import argparse
import socket
import statistics
import threading
import time
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from ota_cloud.broker import MosquittoBroker
from ota_core.mqtt import MqttConnection, MqttMessage, MqttSettings

INFLIGHT = 100


def _nodelay(_client: paho.Client, _userdata: Any, sock: Any) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _raw_client(name: str, port: int) -> paho.Client:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=paho.MQTTv311)
    client.max_inflight_messages_set(INFLIGHT)
    client.on_socket_open = _nodelay
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def run_raw(port: int, size: int, count: int) -> float:
    """Seconds for raw paho to move ``count`` messages of ``size`` bytes."""
    done = threading.Event()
    received = [0]
    subscribed = threading.Event()

    def on_message(_c: Any, _u: Any, _m: Any) -> None:
        received[0] += 1
        if received[0] == count:
            done.set()

    subscriber = _raw_client("raw-sub", port)
    subscriber.on_message = on_message
    subscriber.on_subscribe = lambda *_: subscribed.set()
    subscriber.subscribe("bench/raw", 1)
    subscribed.wait(5)
    publisher = _raw_client("raw-pub", port)
    time.sleep(0.2)
    payload = b"\xa5" * size
    start = time.perf_counter()
    last = None
    for _ in range(count):
        last = publisher.publish("bench/raw", payload, qos=1)
    assert last is not None
    last.wait_for_publish(60)
    done.wait(60)
    elapsed = time.perf_counter() - start
    for client in (publisher, subscriber):
        client.disconnect()
        client.loop_stop()
    return elapsed


def run_ours(url: str, size: int, count: int) -> float:
    """Seconds for MqttConnection to move ``count`` messages of ``size`` bytes."""
    done = threading.Event()
    received = [0]

    def on_message(_message: MqttMessage) -> None:
        received[0] += 1
        if received[0] == count:
            done.set()

    subscriber = MqttConnection(MqttSettings(broker_url=url, client_id="ours-sub", max_inflight=INFLIGHT))
    subscriber.connect()
    subscriber.subscribe("bench/ours", on_message)
    publisher = MqttConnection(MqttSettings(broker_url=url, client_id="ours-pub", max_inflight=INFLIGHT))
    publisher.connect()
    time.sleep(0.2)
    payload = b"\xa5" * size
    start = time.perf_counter()
    for _ in range(count - 1):
        publisher.publish("bench/ours", payload, wait=False)
    publisher.publish("bench/ours", payload, timeout=60)  # acknowledgements arrive in order
    done.wait(60)
    elapsed = time.perf_counter() - start
    publisher.close()
    subscriber.close()
    return elapsed


def main() -> None:
    """Run both sides for 4 KiB and 64 KiB messages and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the message counts")
    arguments = parser.parse_args()
    cases = [(4096, int(20000 * arguments.scale)), (65536, int(3000 * arguments.scale))]
    with MosquittoBroker() as broker:
        print("| message | count | raw paho msg/s (MB/s) | MqttConnection msg/s (MB/s) | ratio |")
        print("|---|---|---|---|---|")
        for size, count in cases:
            raw_times, our_times = [], []
            for _ in range(arguments.rounds):  # interleaved so that drift hits both sides alike
                raw_times.append(run_raw(broker.port, size, count))
                our_times.append(run_ours(broker.url, size, count))
            raw, ours = statistics.median(raw_times), statistics.median(our_times)
            raw_rate, our_rate = count / raw, count / ours
            print(
                f"| {size // 1024} KiB | {count} | {raw_rate:,.0f} ({raw_rate * size / 1e6:.0f}) "
                f"| {our_rate:,.0f} ({our_rate * size / 1e6:.0f}) | {our_rate / raw_rate:.2f} |"
            )


if __name__ == "__main__":
    main()

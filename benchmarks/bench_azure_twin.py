"""Reported-property round trips: our TwinClient against a raw paho-mqtt client, same stand-in, same run.

Each side sends N reported patches one after another (the hub's rule: one patch in flight) to the Azure
stand-in on a private mosquitto and waits for each 204. Prints patches/s for both and the ratio ours/raw.
Run by hand:  .venv/bin/python -m benchmarks.bench_azure_twin --count 500 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from ota_cloud.azure import AzureStandIn, SigningKeys
from ota_cloud.broker import MosquittoBroker
from ota_core.mqtt import MqttConnection
from ota_jobs.azure import IotHubSettings, TwinClient

KEY = "NMgJDvdKTxjLi+xBxxkDDEwDJxEvOE5u8BiT0mVgPeg="
HUB = "bench.azure-devices.net"


def _nodelay(_client: paho.Client, _userdata: Any, sock: Any) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def run_ours(standin: AzureStandIn, broker: MosquittoBroker, count: int) -> float:
    """Seconds for TwinClient to get ``count`` patches accepted."""
    standin.hub.register_device("ours", KEY)
    settings = IotHubSettings(hostname=HUB, device_id="ours", shared_access_key=KEY, gateway_host=broker.host,
                              port=broker.port, use_tls=False, topic_prefix=standin.hub.prefix_for("ours"))
    connection = MqttConnection(settings.to_mqtt_settings())
    connection.connect()
    client = TwinClient(connection)
    client.start()
    client.get_twin()
    start = time.perf_counter()
    for n in range(count):
        client.patch_reported({"n": n, "fw": {"status": "Downloading"}})
    elapsed = time.perf_counter() - start
    client.stop()
    connection.close()
    return elapsed


def run_raw(standin: AzureStandIn, broker: MosquittoBroker, count: int) -> float:
    """Seconds for a raw paho client (hand-built topics, a condition per answer) to do the same."""
    standin.hub.register_device("raw", KEY)
    prefix = standin.hub.prefix_for("raw")
    answered = threading.Condition()
    answers: set[str] = set()

    def on_message(_c: Any, _u: Any, message: Any) -> None:
        rid = message.topic.split("$rid=")[1].split("&")[0]
        with answered:
            answers.add(rid)
            answered.notify_all()

    subscribed = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="raw", protocol=paho.MQTTv311)
    client.on_message = on_message
    client.on_subscribe = lambda *_: subscribed.set()
    client.on_socket_open = _nodelay  # like ours: no Nagle delay on small request/response messages
    client.connect(broker.host, broker.port)
    client.loop_start()
    client.subscribe(prefix + "$iothub/twin/res/#", 1)
    subscribed.wait(5)
    start = time.perf_counter()
    for n in range(count):
        rid = str(n)
        body = json.dumps({"n": n, "fw": {"status": "Downloading"}}).encode()
        client.publish(f"{prefix}$iothub/twin/PATCH/properties/reported/?$rid={rid}", body, qos=1)
        with answered:
            answered.wait_for(lambda r=rid: r in answers, timeout=10)  # type: ignore[misc]
    elapsed = time.perf_counter() - start
    client.loop_stop()
    client.disconnect()
    return elapsed


def main() -> None:
    """Run both sides ``rounds`` times and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ours: list[float] = []
    raw: list[float] = []
    with tempfile.TemporaryDirectory() as folder, MosquittoBroker(Path(folder) / "broker") as broker:
        for round_number in range(args.rounds):
            state = Path(folder) / f"state-{round_number}"
            with AzureStandIn(broker.url, state, admin_port=None, keys=SigningKeys.generate(2048)) as standin:
                raw.append(args.count / run_raw(standin, broker, args.count))
                ours.append(args.count / run_ours(standin, broker, args.count))
    ours_median, raw_median = statistics.median(ours), statistics.median(raw)
    print(f"reported patches, {args.count} per round, {args.rounds} rounds (median patches/s)")
    print(f"  raw paho     {raw_median:10.1f}")
    print(f"  TwinClient   {ours_median:10.1f}")
    print(f"  ratio ours/raw {ours_median / raw_median:.2f}")


if __name__ == "__main__":
    main()

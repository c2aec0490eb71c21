"""Check that a device can reach its broker: connect, subscribe, publish to itself, time the round trip.

    python examples/connection_check.py mqtt://127.0.0.1:1883
    python examples/connection_check.py mqtts://<endpoint>:8883 --ca AmazonRootCA1.pem \\
        --cert device.pem.crt --key private.pem.key --client-id my-thing --topic my-thing/check

Exits 0 when every round trip came back, 1 otherwise (with one line saying why).
"""

from __future__ import annotations

import argparse
import queue
import sys
import time

from ota_core import OtaError
from ota_core.mqtt import MqttConnection, MqttMessage, MqttSettings


def main() -> int:
    """Run the check and print one line per round trip."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("broker_url")
    parser.add_argument("--client-id", default="connection-check")
    parser.add_argument("--topic", default="connection-check/echo")
    parser.add_argument("--ca")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the connection")
    arguments = parser.parse_args()
    try:
        settings = MqttSettings(
            broker_url=arguments.broker_url,
            client_id=arguments.client_id,
            ca_file=arguments.ca,
            cert_file=arguments.cert,
            key_file=arguments.key,
            connect_timeout=arguments.timeout,
        )
        inbox: queue.Queue[MqttMessage] = queue.Queue()
        with MqttConnection(settings) as connection:
            connection.subscribe(arguments.topic, inbox.put)
            for index in range(arguments.count):
                started = time.perf_counter()
                connection.publish(arguments.topic, f"ping {index}")
                message = inbox.get(timeout=10)
                print(f"{message.payload.decode()}: {(time.perf_counter() - started) * 1000:.1f} ms")
    except OtaError as error:
        print(f"connection check failed: {error}", file=sys.stderr)
        return 1
    except queue.Empty:
        print("connection check failed: a message did not come back within 10 s", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

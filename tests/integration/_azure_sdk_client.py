# mypy: ignore-errors
"""Run by the Azure SDK's own virtual environment (azure-iot-device needs paho-mqtt < 2).

Connects with Microsoft's device SDK to the stand-in over TLS, reads the twin, patches reported
properties, then waits for one desired patch. Prints one JSON line per step on stdout.
Arguments: connection string, CA file, TLS port.
"""

import json
import queue
import sys

import paho.mqtt.client as paho_client
from azure.iot.device import IoTHubDeviceClient


def main() -> int:
    connection_string, ca_file, tls_port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    original_connect = paho_client.Client.connect

    def connect(self, host, port=1883, *args, **kwargs):
        # The SDK hard-codes 8883; the test broker listens on a free port.
        return original_connect(self, host, tls_port if port == 8883 else port, *args, **kwargs)

    paho_client.Client.connect = connect
    with open(ca_file) as handle:
        ca_pem = handle.read()
    client = IoTHubDeviceClient.create_from_connection_string(
        connection_string, server_verification_cert=ca_pem, keep_alive=30
    )
    patches = queue.Queue()
    client.on_twin_desired_properties_patch_received = patches.put
    client.connect()
    print(json.dumps({"step": "twin", "twin": client.get_twin()}), flush=True)
    client.patch_twin_reported_properties({"sdk": {"name": "azure-iot-device", "ok": True}})
    print(json.dumps({"step": "reported"}), flush=True)
    try:
        patch = patches.get(timeout=30)
    except queue.Empty:
        print(json.dumps({"step": "timeout"}), flush=True)
        return 1
    print(json.dumps({"step": "desired", "patch": patch}), flush=True)
    client.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

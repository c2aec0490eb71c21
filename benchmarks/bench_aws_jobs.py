"""AWS IoT Jobs: our client and parsers against raw baselines, same stand-in, same data, same run.

1. Status-update round trips (UpdateJobExecution IN_PROGRESS, wait for ``update/accepted``) through the
   local AWS stand-in on a private mosquitto: ``AwsJobsClient.update`` against a raw paho client that
   publishes the same JSON and waits for the reply with the same client token.
2. Decoding a start-next reply that carries an ``afr_ota`` document and turning it into a plan:
   ``decode_execution_reply`` + the parser chain against a bare ``json.loads`` of the same bytes.

Prints both figures and the ratio ours/raw. Run by hand:  .venv/bin/python -m benchmarks.bench_aws_jobs
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

from ota_cloud.aws import AwsIotStandIn, thing_arn
from ota_cloud.broker import MosquittoBroker
from ota_core.models import JobEvent, JobEventKind, JobStatus
from ota_core.mqtt import MqttConnection, MqttSettings
from ota_jobs.aws import AwsJobsClient, decode_execution_reply
from ota_jobs.parsers import default_parser_chain

DOCUMENT = {
    "afr_ota": {
        "protocols": ["MQTT", "HTTP"],
        "streamname": "AFR_OTA-5f1c1b62-1a2b-4c3d-9e8f-0123456789ab",
        "files": [
            {
                "filepath": "/firmware/app.bin",
                "filesize": 1048576,
                "fileid": 0,
                "certfile": "code-signer.crt",
                "update_data_url": "https://bucket.s3.amazonaws.com/app.bin?X-Amz-Signature=abc",
                "auth_scheme": "aws.s3.presigned",
                "sig-sha256-ecdsa": "MEQCIF2QDvww1G/kpRGZ8FYvQrok1bSZvXjXefRk7sqNcyPTAiB4dvGt8fozIY5NC0vUD"
                "J2MY42ZERYEcrbwA4n6q7vrBg==",
            }
        ],
    }
}


def _nodelay(_client: paho.Client, _userdata: Any, sock: Any) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _setup(standin: AwsIotStandIn, thing: str, job: str) -> None:
    iot = standin.boto3_client()
    iot.create_thing(thingName=thing)
    iot.create_job(jobId=job, targets=[thing_arn(thing)], document=json.dumps(DOCUMENT))


def run_ours(url: str, standin: AwsIotStandIn, count: int) -> float:
    """Seconds for ``count`` update round trips through AwsJobsClient."""
    _setup(standin, "bench-ours", "job-ours")
    with MqttConnection(MqttSettings(broker_url=url, client_id="bench-ours")) as connection:
        client = AwsJobsClient(connection, "bench-ours")
        client.start(lambda _event: None)
        start = time.perf_counter()
        for index in range(count):
            client.update("job-ours", JobStatus.IN_PROGRESS, status_details={"receive": f"{index}/{count}"})
        elapsed = time.perf_counter() - start
        client.stop()
    return elapsed


def run_raw(port: int, standin: AwsIotStandIn, count: int) -> float:
    """Seconds for ``count`` update round trips with raw paho (same topics, same JSON)."""
    _setup(standin, "bench-raw", "job-raw")
    topic = "$aws/things/bench-raw/jobs/job-raw/update"
    answered = threading.Event()
    expected = [""]

    def on_message(_c: Any, _u: Any, message: Any) -> None:
        if json.loads(message.payload).get("clientToken") == expected[0]:
            answered.set()

    subscribed = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-raw", protocol=paho.MQTTv311)
    client.on_message = on_message
    client.on_socket_open = _nodelay  # as MqttConnection does, so both sides pay the same TCP costs
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.subscribe(f"{topic}/+", 1)
    subscribed.wait(5)
    start = time.perf_counter()
    for index in range(count):
        expected[0] = f"raw:{index}"
        answered.clear()
        body = {
            "status": "IN_PROGRESS",
            "statusDetails": {"receive": f"{index}/{count}"},
            "includeJobExecutionState": True,
            "clientToken": expected[0],
        }
        client.publish(topic, json.dumps(body, separators=(",", ":")), qos=1)
        if not answered.wait(10):
            raise RuntimeError("no reply")
    elapsed = time.perf_counter() - start
    client.disconnect()
    client.loop_stop()
    return elapsed


def run_parse(count: int) -> tuple[float, float]:
    """Seconds for ``count`` decode+parse runs (ours) and ``count`` bare json.loads (raw)."""
    payload = json.dumps(
        {
            "clientToken": "t:1",
            "timestamp": 1700000000,
            "execution": {
                "jobId": "AFR_OTA-job",
                "status": "QUEUED",
                "queuedAt": 1700000000,
                "lastUpdatedAt": 1700000000,
                "versionNumber": 1,
                "executionNumber": 1,
                "jobDocument": DOCUMENT,
            },
        }
    ).encode()
    chain = default_parser_chain()
    start = time.perf_counter()
    for _ in range(count):
        reply = decode_execution_reply(payload)
        assert reply.execution is not None
        chain.parse(JobEvent(JobEventKind.NEW, reply.execution.job_id, reply.execution.job_document or {}))
    ours = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(count):
        json.loads(payload)
    raw = time.perf_counter() - start
    return ours, raw


def main() -> None:
    """Run each measurement ``--rounds`` times and print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--updates", type=int, default=500)
    parser.add_argument("--parses", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, MosquittoBroker(Path(folder) / "broker") as broker:
        ours_rt, raw_rt = [], []
        for round_index in range(arguments.rounds):
            state = Path(folder) / f"state-{round_index}"
            with AwsIotStandIn(broker.url, state) as standin:
                raw_rt.append(run_raw(broker.port, standin, arguments.updates))
            with AwsIotStandIn(broker.url, Path(folder) / f"state-o-{round_index}") as standin:
                ours_rt.append(run_ours(broker.url, standin, arguments.updates))
    ours_ms = statistics.median(ours_rt) / arguments.updates * 1000
    raw_ms = statistics.median(raw_rt) / arguments.updates * 1000
    print(
        f"update round trip   ours {ours_ms:.3f} ms   raw paho {raw_ms:.3f} ms   ratio ours/raw {ours_ms / raw_ms:.2f}"
    )
    parses = [run_parse(arguments.parses) for _ in range(arguments.rounds)]
    ours_us = statistics.median(p[0] for p in parses) / arguments.parses * 1e6
    raw_us = statistics.median(p[1] for p in parses) / arguments.parses * 1e6
    ratio = ours_us / raw_us
    print(f"decode + parse      ours {ours_us:.1f} us   json.loads {raw_us:.1f} us   ratio ours/raw {ratio:.2f}")


if __name__ == "__main__":
    main()

"""MQTT stream benchmark through a real mosquitto on loopback, all in the same run:

* raw paho: a client in another process publishes the file's bytes in blocks of the same size (QoS 0),
  a client in this process receives
  them all (no protocol, no requests, no verification, no disk): the transport's ceiling;
* ota_stream's MqttStreamDownloader with its defaults, against the stream service stand-in (in its own
  process, as the real service is not on the device)
  (GetStream requests, CBOR blocks, bitmap, SHA-256 fed in order, durable writes, resume records);
* the same downloader with FreeRTOS's default configuration (4 KiB blocks, one block per request,
  one request at a time);
* optionally a sweep over block size, blocks per request and requests in flight (``--sweep``).

    .venv/bin/python benchmarks/bench_download_mqtt.py [--size-mib 32] [--rounds 3] [--sweep] [--rss-mib 256]
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from ota_cloud.aws_streams import StreamDataPlane, StreamStore
from ota_cloud.broker import MosquittoBroker
from ota_core.models import FileLocation, FileTarget, Integrity, LocationKind
from ota_core.mqtt import MqttConnection, MqttSettings
from ota_core.protocols import DownloadRequest
from ota_core.state_store import FileStateStore
from ota_stream import Encoding, FileSink, MqttStreamConfig, MqttStreamDownloader

THING = "bench-device"
STREAM = "AFR_OTA-bench"


class Sha256:
    """An incremental verifier that only hashes."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()

    def update(self, data: bytes) -> None:
        self.hash.update(data)

    def finish(self) -> None:
        return None


def raw_paho(broker: MosquittoBroker, source: Path, size: int, block: int) -> float:
    """Seconds to move the file in ``block``-sized QoS 0 messages from a publisher process to a subscriber."""
    received = 0
    done = threading.Event()
    ready = threading.Event()

    def on_message(_client: paho.Client, _userdata: object, message: paho.MQTTMessage) -> None:
        nonlocal received
        received += len(message.payload)
        if received >= size:
            done.set()

    subscriber = paho.Client(CallbackAPIVersion.VERSION2, client_id="raw-sub")
    subscriber.on_message = on_message
    subscriber.on_subscribe = lambda *_args: ready.set()
    subscriber.connect(broker.host, broker.port)
    subscriber.loop_start()
    subscriber.subscribe("raw/data", qos=0)
    ready.wait(5)
    publisher = subprocess.Popen(
        [sys.executable, __file__, "--raw-publish", broker.url, str(source), str(block)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert publisher.stdin is not None and publisher.stdout is not None
    publisher.stdout.readline()  # "ready"
    start = time.perf_counter()
    publisher.stdin.write("go\n")
    publisher.stdin.flush()
    finished = done.wait(120)
    elapsed = time.perf_counter() - start
    publisher.stdin.close()
    publisher.wait(30)
    subscriber.loop_stop()
    subscriber.disconnect()
    if not finished:
        raise RuntimeError(f"raw paho lost messages: {received} of {size} bytes arrived")
    return elapsed


def raw_publish(broker_url: str, source: str, block: int) -> None:
    """Child: publish the file in blocks once told to, then wait for the parent to close stdin."""
    data = Path(source).read_bytes()
    host, port = broker_url.removeprefix("mqtt://").split(":")
    publisher = paho.Client(CallbackAPIVersion.VERSION2, client_id="raw-pub")
    publisher.max_queued_messages_set(0)
    publisher.connect(host, int(port))
    publisher.loop_start()
    time.sleep(0.2)
    print("ready", flush=True)
    sys.stdin.readline()
    for offset in range(0, len(data), block):
        publisher.publish("raw/data", data[offset : offset + block], qos=0)
    sys.stdin.read()
    publisher.loop_stop()
    publisher.disconnect()


def serve(broker_url: str, streams: list[str]) -> None:
    """Child: the stream service stand-in, serving ``name=path`` streams until stdin closes."""
    store = StreamStore()
    for entry in streams:
        name, path = entry.split("=", 1)
        store.create_stream(name, [{"fileId": 0, "data": Path(path).read_bytes()}])  # served from memory
    connection = MqttConnection(MqttSettings(broker_url=broker_url, client_id="stream-service"))
    connection.connect()
    with StreamDataPlane(connection, store):
        print("ready", flush=True)
        sys.stdin.read()
    connection.close()


def ours(
    device: MqttConnection, work: Path, data: bytes, digest: bytes, config: MqttStreamConfig, stream: str = STREAM
) -> float:
    """Seconds for one MqttStreamDownloader download of the stream file."""
    store = FileStateStore(work / "state")
    store.delete("bench")
    location = FileLocation(LocationKind.MQTT_STREAM, stream, file_id=0)
    target = FileTarget("bench.bin", len(data), (location,), Integrity(digests={"sha256": digest}))
    verifier = Sha256()
    out = work / "ours.bin"
    start = time.perf_counter()
    with FileSink(out, len(data)) as sink:
        MqttStreamDownloader(device, THING, store, config).download(
            DownloadRequest("bench-job", target, location, sink, "bench", verifier=verifier)
        )
    elapsed = time.perf_counter() - start
    assert verifier.hash.digest() == digest
    out.unlink()
    return elapsed


def _proc_status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def current_rss_kib() -> int:
    """The resident set size right now (not the peak), in KiB."""
    return _proc_status_kib("VmRSS")


def peak_rss_kib() -> int:
    """This process's peak RSS in KiB (VmHWM: unlike ru_maxrss it does not inherit the parent's peak)."""
    return _proc_status_kib("VmHWM")


def child_rss(broker_url: str, work: Path, size: int, digest: str) -> None:
    """In a fresh device process: RSS after imports, then peak RSS after the download. Prints KiB twice."""
    before = current_rss_kib()
    device = MqttConnection(MqttSettings(broker_url=broker_url, client_id=THING + "-rss"))
    device.connect()
    try:
        store = FileStateStore(work / "state-rss")
        location = FileLocation(LocationKind.MQTT_STREAM, STREAM + "-rss", file_id=0)
        target = FileTarget("rss.bin", size, (location,), Integrity(digests={"sha256": bytes.fromhex(digest)}))
        verifier = Sha256()
        with FileSink(work / "rss.bin", size) as sink:
            MqttStreamDownloader(device, THING + "-rss", store).download(
                DownloadRequest("rss-job", target, location, sink, "rss", verifier=verifier)
            )
        assert verifier.hash.hexdigest() == digest
    finally:
        device.close()
    after = peak_rss_kib()
    print(before, after)


def make_rss_file(work: Path, size_mib: int) -> Path:
    """Write the random file for the RSS run; its digest goes next to it."""
    source = work / "rss-source.bin"
    digest = hashlib.sha256()
    with source.open("wb") as handle:
        for _ in range(size_mib):
            piece = os.urandom(1024 * 1024)
            handle.write(piece)
            digest.update(piece)
    (work / "rss-source.sha256").write_text(digest.hexdigest())
    return source


def rss_run(broker: MosquittoBroker, work: Path, size_mib: int) -> None:
    """Download the RSS file in a fresh device process and print its peak RSS."""
    digest = (work / "rss-source.sha256").read_text()
    result = subprocess.run(
        [sys.executable, __file__, "--child", broker.url, str(work), str(size_mib * 1024 * 1024), digest],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    before, after = (int(x) for x in result.stdout.split())
    print(
        f"device process peak RSS: RSS after imports {before / 1024:.1f} MiB, after the {size_mib} MiB "
        f"download (peak) {after / 1024:.1f} MiB, peak above baseline {(after - before) / 1024:.1f} MiB"
    )


def median_of(rounds: int, run: Callable[[], float]) -> float:
    """The median of ``rounds`` timings of ``run``."""
    return float(statistics.median(run() for _ in range(rounds)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=32)
    parser.add_argument("--freertos-size-mib", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sweep", action="store_true")
    parser.add_argument("--rss-mib", type=int, default=0, help="also measure a device process downloading this much")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--raw-publish", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--serve", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw_publish:
        raw_publish(args.raw_publish[0], args.raw_publish[1], int(args.raw_publish[2]))
        return
    if args.serve:
        serve(args.serve[0], args.serve[1:])
        return
    if args.child:
        url, folder, size, digest = args.child
        child_rss(url, Path(folder), int(size), digest)
        return
    data = os.urandom(args.size_mib * 1024 * 1024)
    digest = hashlib.sha256(data).digest()
    small = data[: args.freertos_size_mib * 1024 * 1024]
    small_digest = hashlib.sha256(small).digest()
    mib = len(data) / 1024 / 1024
    with tempfile.TemporaryDirectory(prefix="bench-mqtt-") as folder:
        work = Path(folder)
        broker = MosquittoBroker(work / "broker")
        broker.start()
        try:
            source = work / "source.bin"
            source.write_bytes(data)
            small_source = work / "small.bin"
            small_source.write_bytes(small)
            served = [f"{STREAM}={source}", f"{STREAM}-small={small_source}"]
            if args.rss_mib:
                served.append(f"{STREAM}-rss={make_rss_file(work, args.rss_mib)}")
            service = subprocess.Popen(
                [sys.executable, __file__, "--serve", broker.url, *served],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert service.stdin is not None and service.stdout is not None
            service.stdout.readline()  # "ready"
            device = MqttConnection(MqttSettings(broker_url=broker.url, client_id=THING))
            device.connect()
            try:
                defaults = MqttStreamConfig()
                ours(device, work, data, digest, defaults)  # warm-up, not timed
                base = median_of(args.rounds, lambda: raw_paho(broker, source, len(data), defaults.block_size))
                mine = median_of(args.rounds, lambda: ours(device, work, data, digest, defaults))
                print(
                    f"file: {args.size_mib} MiB, rounds: {args.rounds} (median); "
                    "the stream service and the raw publisher run in their own processes"
                )
                size_kib = defaults.block_size // 1024
                print(f"raw paho QoS0, {size_kib} KiB messages : {base:6.2f} s  {mib / base:7.1f} MiB/s")
                print(
                    f"ota_stream defaults ({defaults.encoding}, {defaults.block_size // 1024} KiB x "
                    f"{defaults.per_request}/request, {defaults.requests_in_flight} in flight): "
                    f"{mine:6.2f} s  {mib / mine:7.1f} MiB/s"
                )
                print(f"ratio (ours/raw paho throughput): {base / mine:.2f}")
                freertos = MqttStreamConfig(block_size=4096, blocks_per_request=1, requests_in_flight=1)
                small_stream = STREAM + "-small"
                slow = median_of(1, lambda: ours(device, work, small, small_digest, freertos, small_stream))
                fast = median_of(args.rounds, lambda: ours(device, work, small, small_digest, defaults, small_stream))
                small_mib = len(small) / 1024 / 1024
                print(
                    f"FreeRTOS defaults (4 KiB, 1 block/request, 1 in flight), {args.freertos_size_mib} MiB: "
                    f"{slow:6.2f} s  {small_mib / slow:7.2f} MiB/s"
                )
                print(f"ota_stream defaults, same file: {fast:6.2f} s  {small_mib / fast:7.2f} MiB/s")
                print(f"speed-up over the FreeRTOS defaults: {slow / fast:.1f}x")
                if args.sweep:
                    for block in (4096, 16384, 32768, 65536, 131072):
                        for in_flight in (1, 2, 4, 8):
                            config = MqttStreamConfig(block_size=block, requests_in_flight=in_flight)
                            took = median_of(args.rounds, functools.partial(ours, device, work, data, digest, config))
                            print(
                                f"sweep block={block // 1024:4d} KiB x {config.per_request:2d}/request, "
                                f"{in_flight} in flight: {mib / took:7.1f} MiB/s"
                            )
                    for encoding in (Encoding.JSON,):
                        config = MqttStreamConfig(encoding=encoding, block_size=65536)
                        took = median_of(args.rounds, functools.partial(ours, device, work, data, digest, config))
                        print(f"sweep JSON, 64 KiB x {config.per_request}/request: {mib / took:7.1f} MiB/s")
                if args.rss_mib:
                    rss_run(broker, work, args.rss_mib)
            finally:
                device.close()
                service.stdin.close()
                service.wait(30)
        finally:
            broker.close()


if __name__ == "__main__":
    main()

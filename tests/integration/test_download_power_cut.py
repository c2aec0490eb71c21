"""Power cuts during downloads: the downloading process is killed with SIGKILL at random moments and
restarted until it completes; the file must be byte-identical and verified, and the bytes fetched twice
are reported."""

from __future__ import annotations

import hashlib
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from ota_cloud.aws_streams import StreamDataPlane, StreamStore
from ota_cloud.broker import MosquittoBroker
from ota_cloud.http_faults import FaultyFileServer
from tests.conftest import ConnectionFactory
from tests.download_fixtures import pattern

KILLS = 6
MAX_RUNS = 30


def _kill_and_restart(rng: random.Random, args: list[str], image: Path, data: bytes) -> tuple[int, int]:
    """Run the child, SIGKILL it at random moments KILLS times, then let it finish. Returns (kills, runs)."""
    kills = 0
    for run in range(1, MAX_RUNS + 1):
        child = subprocess.Popen([sys.executable, "-m", "tests.integration._download_child", *args])
        if kills < KILLS:
            try:
                child.wait(timeout=rng.uniform(0.4, 1.2))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(timeout=10)
                kills += 1
                continue
        else:
            child.wait(timeout=60)
        if child.returncode == 0:
            return kills, run
        assert child.returncode in (-9,), f"child failed with exit code {child.returncode}"
    pytest.fail("the download never completed")


def test_http_download_survives_sigkill(tmp_path: Path, record_property: Callable[[str, object], None]) -> None:
    data = pattern(3 * 1024 * 1024 + 5)
    with FaultyFileServer() as server:
        server.faults.throttle = 700_000
        url = server.add_file("fw.bin", data)
        image = tmp_path / "image.bin"
        args = ["http", url, str(tmp_path / "state"), str(image), str(len(data)), hashlib.sha256(data).hexdigest()]
        kills, runs = _kill_and_restart(random.Random(7), args, image, data)
        twice = server.body_bytes_sent - len(data)
    assert image.read_bytes() == data
    record_property("http_bytes_downloaded_twice", twice)
    print(f"HTTP: {kills} SIGKILLs over {runs} runs; {twice} bytes sent twice ({twice / len(data):.1%} of the file)")
    assert kills >= 3
    assert twice >= 0


@pytest.mark.broker
def test_mqtt_download_survives_sigkill(
    tmp_path: Path,
    mosquitto: MosquittoBroker,
    mqtt_connection_factory: ConnectionFactory,
    record_property: Callable[[str, object], None],
) -> None:
    data = pattern(1_500_000 + 3)
    store = StreamStore()
    store.create_stream("AFR_OTA-kill", [{"fileId": 0, "data": data}])
    with StreamDataPlane(mqtt_connection_factory("stream-service"), store) as service:
        service.faults.delay = 0.02
        image = tmp_path / "image.bin"
        args = [
            "mqtt",
            mosquitto.url,
            str(tmp_path / "state"),
            str(image),
            str(len(data)),
            hashlib.sha256(data).hexdigest(),
        ]
        kills, runs = _kill_and_restart(random.Random(11), args, image, data)
        twice = service.block_bytes_sent - len(data)
    assert image.read_bytes() == data
    record_property("mqtt_bytes_downloaded_twice", twice)
    print(f"MQTT: {kills} SIGKILLs over {runs} runs; {twice} bytes sent twice ({twice / len(data):.1%} of the file)")
    assert kills >= 3

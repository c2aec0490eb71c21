"""The demo runner and the simulated device run in this process (so coverage sees them; the subprocess
tests show the same paths as a user runs them)."""

from __future__ import annotations

import io
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ota_orchestrators.cli import main
from ota_orchestrators.simulated_device import EXIT_RESTART, EXIT_STOPPED, DeviceConfig, Emitter, run_device
from tests.orchestrator_aws_fixtures import GEOMETRY, AwsCloud, Keys, aws_cloud_fixture, keys_fixture

__all__ = ["aws_cloud_fixture", "keys_fixture"]

pytestmark = pytest.mark.broker


@pytest.fixture(name="restore_signals")
def restore_signals_fixture() -> Iterator[None]:
    saved = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
    yield
    for number, handler in saved.items():
        signal.signal(number, handler)


@pytest.mark.parametrize("arguments", [[], ["--fail-self-test", "--protocol", "http"]])
def test_demo_in_process(
    capsys: pytest.CaptureFixture[str], arguments: list[str], restore_signals: None, tmp_path: Path
) -> None:
    assert main(["demo", "aws", "--image-size", "200000", "--work-dir", str(tmp_path / "demo"), *arguments]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].split("] ", 1)[1].startswith("RESULT: OK")


class _Lines(io.TextIOBase):
    """Collects the device's JSON lines and lets a test wait for one."""

    def __init__(self) -> None:
        self.events: list[dict[str, object]] = []
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.strip():
                with self._lock:
                    self.events.append(json.loads(line))
        return len(text)

    def wait(self, predicate: object, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if any(predicate(event) for event in self.events):  # type: ignore[operator]
                    return
            time.sleep(0.02)
        raise AssertionError(f"not seen; events: {self.events}")


def test_simulated_device_in_process(aws_cloud: AwsCloud, keys: Keys, tmp_path: Path, restore_signals: None) -> None:
    aws_cloud.add_thing("sim-1")
    config = DeviceConfig(
        flow="aws",
        device_dir=tmp_path / "device",
        public_key=keys.public_file,
        factory_image=keys.firmware("1.0.0").path,
        flash=GEOMETRY,
        flow_settings={"broker_url": aws_cloud.broker.url, "thing_name": "sim-1"},
    )
    lines = _Lines()

    def publish_when_ready() -> None:
        lines.wait(lambda event: event["event"] == "ready")
        aws_cloud.publish_mqtt("sim-job", "sim-1", keys.firmware("1.0.1"))

    publisher = threading.Thread(target=publish_when_ready)
    publisher.start()
    assert run_device(config, emit=Emitter(lines)) == EXIT_RESTART  # type: ignore[arg-type]
    publisher.join(5)

    def stop_when_finished() -> None:
        lines.wait(lambda event: event.get("kind") == "finished")
        os.kill(os.getpid(), signal.SIGTERM)

    stopper = threading.Thread(target=stop_when_finished)
    stopper.start()
    assert run_device(config, emit=Emitter(lines)) == EXIT_STOPPED  # type: ignore[arg-type]
    stopper.join(5)
    boots = [event["version"] for event in lines.events if event["event"] == "boot"]
    assert boots == ["1.0.0", "1.0.1"]
    assert aws_cloud.execution("sim-job", "sim-1")[0] == "SUCCEEDED"
    reports = [event["status"] for event in lines.events if event["event"] == "report"]
    assert reports[-1] == "SUCCEEDED"


def test_simulated_device_without_flash_or_factory_image(tmp_path: Path, keys: Keys, restore_signals: None) -> None:
    config = DeviceConfig(flow="aws", device_dir=tmp_path / "none", public_key=keys.public_file, flash=GEOMETRY)
    with pytest.raises(Exception, match="no factory image"):
        run_device(config, emit=Emitter(io.StringIO()))


def test_device_main_exit_codes(tmp_path: Path, keys: Keys, capsys: pytest.CaptureFixture[str]) -> None:
    from ota_orchestrators.simulated_device import EXIT_BOOT_FAILED, EXIT_CONFIG
    from ota_orchestrators.simulated_device import main as device_main

    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    assert device_main([str(broken)]) == EXIT_CONFIG
    unknown = tmp_path / "unknown.json"
    DeviceConfig(
        flow="nope",
        device_dir=tmp_path / "d1",
        public_key=keys.public_file,
        factory_image=keys.firmware("1.0.0").path,
        flash=GEOMETRY,
    ).write(unknown)
    assert device_main([str(unknown)]) == EXIT_BOOT_FAILED
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"not an image" * 10)
    unbootable = tmp_path / "unbootable.json"
    DeviceConfig(
        flow="aws", device_dir=tmp_path / "d2", public_key=keys.public_file, factory_image=garbage, flash=GEOMETRY
    ).write(unbootable)
    assert device_main([str(unbootable)]) == EXIT_BOOT_FAILED
    events = [json.loads(line)["event"] for line in capsys.readouterr().out.splitlines()]
    assert events.count("error") == 2 and "boot-failed" in events


def test_demo_errors_are_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    monkeypatch.setattr(shutil, "which", lambda _name: None)
    assert main(["demo", "aws"]) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert error[-1].startswith("ota: error: [DEMO_FAILED] mosquitto is not installed: install it with")

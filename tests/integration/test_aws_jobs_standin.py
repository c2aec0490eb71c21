"""The stand-in's own edges: unreadable state, publishing after close, the timer surviving a failure."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from ota_cloud.aws import AwsIotStandIn, Outgoing
from ota_cloud.broker import MosquittoBroker
from ota_core.errors import StateStoreError
from ota_core.state_store import FileStateStore


def test_unreadable_state_is_a_typed_error(tmp_path: Path) -> None:
    FileStateStore(tmp_path).save("aws-iot-jobs", {"things": [{"unexpected": 1}]})
    with pytest.raises(StateStoreError):
        AwsIotStandIn("mqtt://127.0.0.1:1", tmp_path)


@pytest.mark.broker
def test_publish_after_close_and_timer_failures_are_logged(
    mosquitto: MosquittoBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    standin = AwsIotStandIn(mosquitto.url, tmp_path / "state", tick_interval=0.01)

    def failing_tick() -> list[Outgoing]:
        raise StateStoreError("disk full")

    standin.service.tick = failing_tick  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="ota_cloud.aws._standin"):
        standin.start()
        try:
            for _ in range(500):
                if "stand-in timer failed" in caplog.text:
                    break
                time.sleep(0.01)
        finally:
            standin.close()
        standin.publish([Outgoing("$aws/things/x/jobs/notify", b"{}")])
    assert "stand-in timer failed" in caplog.text
    assert "could not publish" in caplog.text

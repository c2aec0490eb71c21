"""End to end: the AWS IoT Jobs orchestrator against the AWS stand-in on a real mosquitto.

A simulated MCU (SimFlash, MCUboot-style bootloader, signed MCUboot images) runs ``AwsOrchestrator`` in this
process; files come over AWS IoT MQTT streams or loopback HTTP.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

import pytest

from ota_core.clock import ManualClock
from ota_core.engine import EngineEventKind
from ota_stream import MqttStreamConfig
from tests.orchestrator_aws_fixtures import AwsCloud, Device, Keys, aws_cloud_fixture, keys_fixture, make_device_fixture

__all__ = ["aws_cloud_fixture", "keys_fixture", "make_device_fixture"]

pytestmark = pytest.mark.broker

MakeDevice = Callable[..., Device]


def _publish(cloud: AwsCloud, keys: Keys, protocol: str, job_id: str, thing: str, version: str = "1.0.1") -> None:
    firmware = keys.firmware(version)
    if protocol == "mqtt":
        cloud.publish_mqtt(job_id, thing, firmware)
    else:
        cloud.publish_http(job_id, thing, firmware)


@pytest.mark.parametrize("protocol", ["mqtt", "http"])
def test_update_succeeds_with_freertos_status_details(
    aws_cloud: AwsCloud, keys: Keys, make_device: MakeDevice, protocol: str
) -> None:
    device = make_device()
    device.start()
    _publish(aws_cloud, keys, protocol, "job-1", device.thing)
    device.wait_restart()
    device.reboot()
    assert device.running == "1.0.1"
    details = aws_cloud.wait_status("job-1", device.thing, "SUCCEEDED")
    assert details == {"reason": "accepted  v1.0.1", "updatedBy": "  v1.0.1"}
    assert aws_cloud.statuses("job-1") == ["IN_PROGRESS", "SUCCEEDED"]
    sent = aws_cloud.details("job-1")
    assert sent[0] == {"receive": f"0/{-(-len(keys.firmware('1.0.1').image) // 4096)}"}
    assert {"self_test": "ready", "updatedBy": "0x1000000"} in sent
    assert {"self_test": "active", "updatedBy": "0x1000000"} in sent
    assert sent.index({"self_test": "ready", "updatedBy": "0x1000000"}) < sent.index(
        {"self_test": "active", "updatedBy": "0x1000000"}
    )
    device.wait_finished()
    assert device.orchestrator is not None
    assert not device.orchestrator.engine.awaiting_restart


@pytest.mark.parametrize("protocol", ["mqtt", "http"])
def test_failing_self_test_rolls_back_and_reports_failed(
    aws_cloud: AwsCloud, keys: Keys, make_device: MakeDevice, protocol: str
) -> None:
    device = make_device(self_test=lambda _context: False)
    device.start()
    _publish(aws_cloud, keys, protocol, "job-1", device.thing)
    device.wait_restart()
    device.reboot()
    assert device.running == "1.0.1"
    details = aws_cloud.wait_status("job-1", device.thing, "FAILED")
    assert details["reason"] == "rejected: SELF_TEST_FAILED"
    assert details["updatedBy"] == "0x1000000"
    device.wait_restart(2)  # back to the old image
    device.reboot()
    assert device.running == "1.0.0"
    assert aws_cloud.statuses("job-1") == ["IN_PROGRESS", "FAILED"]


def test_same_version_is_failed_after_the_restart(aws_cloud: AwsCloud, keys: Keys, make_device: MakeDevice) -> None:
    # afr_ota carries no version: the check happens on the new image, as FreeRTOS does with updatedBy.
    device = make_device()
    device.start()
    aws_cloud.publish_mqtt("job-same", device.thing, keys.firmware("1.0.0"))
    device.wait_restart()
    device.reboot()
    details = aws_cloud.wait_status("job-same", device.thing, "FAILED")
    assert details["reason"] == "rejected: POLICY_VERSION_REJECTED"
    device.wait_restart(2)
    device.reboot()
    assert device.running == "1.0.0"


def test_downgrade_with_a_version_is_rejected_before_start(
    aws_cloud: AwsCloud, keys: Keys, make_device: MakeDevice
) -> None:
    device = make_device()
    device.start()
    aws_cloud.publish_http("job-old", device.thing, keys.firmware("0.9.0"))
    details = aws_cloud.wait_status("job-old", device.thing, "REJECTED")
    assert details["reason"] == "rejected: POLICY_VERSION_REJECTED"
    assert aws_cloud.statuses("job-old") == ["REJECTED"]
    assert device.restarts == 0


def test_cancel_mid_download_cleans_up(aws_cloud: AwsCloud, keys: Keys, make_device: MakeDevice) -> None:
    # One 8 KiB block per request, one request at a time, 0.2 s each: the download takes about 2.5 s.
    aws_cloud.stream_service.faults.delay = 0.2
    slow = MqttStreamConfig(block_size=8 * 1024, blocks_per_request=1, requests_in_flight=1, progress_interval=0.0)
    device = make_device(stream=slow)
    device.start()
    aws_cloud.publish_mqtt("job-1", device.thing, keys.firmware("1.0.1"))
    device.wait_for(lambda: EngineEventKind.PROGRESS in device.kinds(), what="download started")
    aws_cloud.cancel("job-1")
    device.wait_for(lambda: EngineEventKind.CANCELLED in device.kinds(), what="cancelled")
    assert aws_cloud.execution("job-1", device.thing)[0] == "CANCELED"
    assert device.restarts == 0
    assert device.orchestrator is not None
    assert device.orchestrator.engine.wait_until_idle(10.0)
    assert device.orchestrator.store.load("engine-progress") is None
    # The next job installs normally.
    aws_cloud.stream_service.faults.delay = 0.0
    aws_cloud.publish_mqtt("job-2", device.thing, keys.firmware("1.0.1"))
    device.wait_restart()
    device.reboot()
    aws_cloud.wait_status("job-2", device.thing, "SUCCEEDED")
    assert aws_cloud.statuses("job-1") == ["IN_PROGRESS"]


def test_disabled_updates_wait_until_enabled(aws_cloud: AwsCloud, keys: Keys, make_device: MakeDevice) -> None:
    device = make_device()
    device.start()
    assert device.control is not None
    device.control.disable()
    aws_cloud.publish_mqtt("job-1", device.thing, keys.firmware("1.0.1"))
    device.wait_for(lambda: EngineEventKind.WAITING in device.kinds(), what="waiting")
    assert EngineEventKind.PROGRESS not in device.kinds()
    assert device.restarts == 0
    device.control.enable()
    device.wait_restart()
    device.reboot()
    aws_cloud.wait_status("job-1", device.thing, "SUCCEEDED")


def test_forced_update_goes_through_disabled(aws_cloud: AwsCloud, keys: Keys, make_device: MakeDevice) -> None:
    device = make_device()
    device.start()
    assert device.control is not None
    device.control.disable()
    device.control.set_forced(True)
    aws_cloud.publish_mqtt("job-1", device.thing, keys.firmware("1.0.1"))
    device.wait_restart()
    device.reboot()
    aws_cloud.wait_status("job-1", device.thing, "SUCCEEDED")
    assert device.running == "1.0.1"


def test_deferral_holds_activation_until_it_ends(aws_cloud: AwsCloud, keys: Keys, make_device: MakeDevice) -> None:
    clock = ManualClock(datetime.datetime(2026, 1, 5, 12, 0, tzinfo=datetime.UTC))
    device = make_device(control_clock=clock)
    device.start()
    assert device.control is not None and device.orchestrator is not None
    device.control.notify("job-1")
    device.control.defer(30, "job-1")
    aws_cloud.publish_mqtt("job-1", device.thing, keys.firmware("1.0.1"))
    device.wait_for(lambda: EngineEventKind.WAITING in device.kinds(), what="waiting")
    device.wait_for(
        lambda: device.orchestrator is not None and device.orchestrator.engine.state.value == "downloaded",
        what="downloaded while activation waits",
    )
    assert device.restarts == 0
    clock.advance(29 * 60)
    device.orchestrator.engine.poke()
    assert device.orchestrator.engine.wait_until_idle(1.0) or device.restarts == 0
    assert device.restarts == 0
    clock.advance(2 * 60)
    device.orchestrator.engine.poke()
    device.wait_restart()
    device.reboot()
    aws_cloud.wait_status("job-1", device.thing, "SUCCEEDED")


def test_target_time_of_day_is_honoured(aws_cloud: AwsCloud, keys: Keys, make_device: MakeDevice) -> None:
    clock = ManualClock(datetime.datetime(2026, 1, 5, 13, 30, tzinfo=datetime.UTC))
    device = make_device(control_clock=clock)
    device.start()
    assert device.control is not None and device.orchestrator is not None
    assert device.control.set_target_time("14:02:00") == "14:02:00"
    aws_cloud.publish_http("job-1", device.thing, keys.firmware("1.0.1"))
    device.wait_for(
        lambda: device.orchestrator is not None and device.orchestrator.engine.state.value == "downloaded",
        what="downloaded, activation held",
    )
    clock.advance(31 * 60)
    device.orchestrator.engine.poke()
    device.orchestrator.engine.wait_until_idle(1.0)
    assert device.restarts == 0
    clock.advance(61)
    device.orchestrator.engine.poke()
    device.wait_restart()
    device.reboot()
    aws_cloud.wait_status("job-1", device.thing, "SUCCEEDED")

"""Versions, errors, models and clocks of ota_core."""

from __future__ import annotations

import datetime
import random

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ota_core import (
    ConfigurationError,
    FileTarget,
    JobStatus,
    ManualClock,
    OtaError,
    ProgressEvent,
    PublishTimeoutError,
    SystemClock,
    TransportError,
    UpdatePlan,
    Version,
    errors,
)
from ota_core.models import Phase
from ota_core.mqtt import backoff_delay
from ota_core.mqtt._acks import AckTracker


def test_version_parse_and_order() -> None:
    assert Version.parse("1.2.3") == Version(1, 2, 3)
    assert Version.parse("v1.2.3-rc.1+build.5") == Version(1, 2, 3, "rc.1", "build.5")
    assert Version.parse("1.0.0-alpha") < Version.parse("1.0.0-alpha.1") < Version.parse("1.0.0-beta")
    assert Version.parse("1.0.0-beta.2") < Version.parse("1.0.0-beta.11") < Version.parse("1.0.0")
    assert Version.parse("1.0.0+a") == Version.parse("1.0.0+b")
    assert hash(Version.parse("1.0.0+a")) == hash(Version(1, 0, 0))
    assert str(Version(1, 2, 3, "rc.1", "b")) == "1.2.3-rc.1+b"
    assert Version(1, 0, 0).__eq__("1.0.0") is NotImplemented
    assert Version(1, 0, 0).__lt__("1.0.0") is NotImplemented  # type: ignore[operator]


@pytest.mark.parametrize("bad", ["", "1", "1.2", "01.2.3", "1.2.3-", "a.b.c", "1.2.3.4", "x" * 300, 7, None])
def test_version_parse_refuses_garbage(bad: object) -> None:
    with pytest.raises(ConfigurationError):
        Version.parse(bad)  # type: ignore[arg-type]


def test_app_version32_round_trip() -> None:
    version = Version(1, 2, 300)
    assert version.to_app_version32() == (1 << 24) | (2 << 16) | 300
    assert Version.from_app_version32(version.to_app_version32()) == version
    with pytest.raises(ConfigurationError):
        Version(256, 0, 0).to_app_version32()
    with pytest.raises(ConfigurationError):
        Version(1, 0, 70000).to_app_version32()
    for bad in (-1, 1 << 32, True, 1.5):
        with pytest.raises(ConfigurationError):
            Version.from_app_version32(bad)  # type: ignore[arg-type]


@given(st.integers(0, 255), st.integers(0, 255), st.integers(0, 0xFFFF))
def test_app_version32_property(major: int, minor: int, build: int) -> None:
    value = Version(major, minor, build).to_app_version32()
    assert 0 <= value <= 0xFFFFFFFF
    assert Version.from_app_version32(value) == Version(major, minor, build)


def test_every_error_has_a_stable_unique_code() -> None:
    classes = [getattr(errors, name) for name in errors.__all__]
    codes = [cls.code for cls in classes]
    assert len(codes) == len(set(codes))
    assert all(issubclass(cls, OtaError) for cls in classes)
    error = PublishTimeoutError("no ack", details={"topic": "t"})
    assert isinstance(error, TransportError)
    assert error.retryable
    assert str(error) == "[TRANSPORT_PUBLISH_TIMEOUT] no ack"
    assert error.as_report() == {"code": "TRANSPORT_PUBLISH_TIMEOUT", "reason": "no ack"}
    assert error.details == {"topic": "t"}


def test_models_are_frozen_and_add_up() -> None:
    plan = UpdatePlan(
        job_id="job-1",
        origin="test",
        files=(FileTarget(name="a", size=10), FileTarget(name="b", size=5)),
        attributes={"k": "v"},
    )
    assert plan.total_size == 15
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        plan.job_id = "x"  # type: ignore[misc]
    with pytest.raises(ValueError, match="size"):
        FileTarget(name="neg", size=-1)
    assert JobStatus.SUCCEEDED.is_terminal and not JobStatus.IN_PROGRESS.is_terminal
    assert ProgressEvent("j", Phase.DOWNLOAD, 5, 10).fraction == 0.5
    assert ProgressEvent("j", Phase.DOWNLOAD, 50, 10).fraction == 1.0
    assert ProgressEvent("j", Phase.DOWNLOAD).fraction == 0.0


def test_clocks() -> None:
    clock = ManualClock()
    start_wall, start_mono = clock.now(), clock.monotonic()
    clock.advance(90)
    assert clock.now() - start_wall == datetime.timedelta(seconds=90)
    assert clock.monotonic() - start_mono == 90
    clock.set_wall(datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC))
    assert clock.now().year == 2030
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="aware"):
        clock.set_wall(datetime.datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="aware"):
        ManualClock(datetime.datetime(2030, 1, 1))
    system = SystemClock()
    assert system.now().tzinfo is not None
    assert system.monotonic() <= system.monotonic()


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    rng = random.Random(7)
    delays = [backoff_delay(attempt, 0.5, 8.0, rng) for attempt in range(12)]
    assert all(0.5 <= delay <= 8.0 for delay in delays)
    assert max(delays[6:]) > 1.0
    assert len(set(delays)) == len(delays)
    assert backoff_delay(1000, 0.5, 8.0, rng) <= 8.0


def test_ack_tracker_handles_early_late_and_lost_answers() -> None:
    tracker = AckTracker()
    tracker.complete(1, "early")
    tracker.register(1, wait=True)
    assert tracker.wait(1, 0.1) == (True, "early")
    tracker.register(2, wait=True)
    tracker.complete(2, "late")
    assert tracker.wait(2, 0.1) == (True, "late")
    tracker.register(3, wait=True)
    assert tracker.wait(3, 0.01) == (False, None)
    tracker.complete(3, "too late")  # ignored, must not linger
    tracker.register(3, wait=True)
    assert tracker.wait(3, 0.01) == (False, None)
    tracker.register(4, wait=False)
    tracker.complete(4, "nobody waits")
    tracker.complete(5, "nobody waits, early")
    tracker.register(5, wait=False)
    tracker.register(6, wait=True)
    tracker.connection_lost()
    assert tracker.wait(6, 1.0) == (False, None)

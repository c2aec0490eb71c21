"""The stand-in's Jobs service without I/O: data-plane rejections, timers, notifications, persistence."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ota_cloud.aws import JobsService, Outgoing, ServiceError, ServiceState, resolve_placeholders, thing_arn
from ota_cloud.aws._presign import PresignRequest
from ota_core.clock import ManualClock

T = "$aws/things/t1/jobs"


def by_topic(messages: list[Outgoing]) -> dict[str, Any]:
    return {m.topic: json.loads(m.payload) for m in messages}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def service(clock: ManualClock) -> JobsService:
    service = JobsService(clock=clock, minute_seconds=60.0)
    service.create_thing("t1")
    service.create_thing("t2")
    return service


def new_job(service: JobsService, job_id: str, things: tuple[str, ...] = ("t1",), **extra: Any) -> list[Outgoing]:
    body = {"document": json.dumps({"job": job_id}), "targets": [thing_arn(t) for t in things], **extra}
    _, out = service.create_job(job_id, body)
    return out


def test_create_job_notifies_targets(service: JobsService) -> None:
    out = by_topic(new_job(service, "j1", ("t1", "t2")))
    assert out[f"{T}/notify-next"]["execution"]["jobId"] == "j1"
    assert out[f"{T}/notify-next"]["execution"]["jobDocument"] == {"job": "j1"}
    assert out[f"{T}/notify"]["jobs"]["QUEUED"][0]["jobId"] == "j1"
    assert "$aws/things/t2/jobs/notify-next" in out
    # a second job does not change the next one: notify only
    out2 = by_topic(new_job(service, "j2"))
    assert set(out2) == {f"{T}/notify"}


@pytest.mark.parametrize(
    ("suffix", "payload", "code"),
    [
        ("start-next", b"{not json", "InvalidJson"),
        ("start-next", b"[1]", "InvalidJson"),
        ("start-next", b'{"statusDetails":{"k":1}}', "InvalidRequest"),
        ("start-next", b'{"statusDetails":{"bad key":"v"}}', "InvalidRequest"),
        ("start-next", b'{"stepTimeoutInMinutes":0}', "InvalidRequest"),
        ("start-next", b'{"clientToken":5}', "InvalidRequest"),
        ("j1/update", b'{"status":"QUEUED"}', "InvalidRequest"),
        ("j1/update", b'{"status":"SUCCEEDED","expectedVersion":"x"}', "InvalidRequest"),
        ("j1/update", b'{"status":"SUCCEEDED","expectedVersion":7}', "VersionMismatch"),
        ("j1/update", b'{"status":"SUCCEEDED","executionNumber":9}', "ResourceNotFound"),
        ("nope/update", b'{"status":"SUCCEEDED"}', "ResourceNotFound"),
        ("j1/get", b'{"includeJobDocument":"yes"}', "InvalidRequest"),
        ("j1/get", b'{"executionNumber":"1"}', "InvalidRequest"),
        ("j1/get", b'{"executionNumber":4}', "ResourceNotFound"),
        ("j1/frobnicate", b"{}", "InvalidTopic"),
        ("bad:id/update", b"{}", "InvalidTopic"),
    ],
)
def test_data_plane_rejections(service: JobsService, suffix: str, payload: bytes, code: str) -> None:
    new_job(service, "j1")
    out = service.handle_mqtt(f"{T}/{suffix}", payload)
    assert len(out) == 1
    assert out[0].topic == f"{T}/{suffix}/rejected"
    body = json.loads(out[0].payload)
    assert body["code"] == code
    if code == "VersionMismatch":
        assert body["executionState"]["versionNumber"] == 1


def test_client_token_echoed_and_ignored_topics(service: JobsService) -> None:
    out = service.handle_mqtt(f"{T}/get", b'{"clientToken":"abc"}')
    assert by_topic(out)[f"{T}/get/accepted"]["clientToken"] == "abc"
    assert service.handle_mqtt(f"{T}/get", b"")[0].topic == f"{T}/get/accepted"
    for ignored in (f"{T}/get/accepted", f"{T}/notify", f"{T}/notify-next", "other/topic"):
        assert service.handle_mqtt(ignored, b"{}") == []
    bad_thing = service.handle_mqtt("$aws/things/bad thing/jobs/get", b"{}")
    assert json.loads(bad_thing[0].payload)["code"] == "InvalidTopic"
    assert json.loads(service.handle_mqtt(f"{T}/get", b"x" * (129 * 1024))[0].payload)["code"] == "InvalidRequest"


def test_expected_version_as_numeric_string_is_coerced(service: JobsService) -> None:
    new_job(service, "j1")
    out = by_topic(service.handle_mqtt(f"{T}/j1/update", b'{"status":"IN_PROGRESS","expectedVersion":"1"}'))
    assert f"{T}/j1/update/accepted" in out


def test_step_timeout_times_out(service: JobsService, clock: ManualClock) -> None:
    new_job(service, "j1")
    service.handle_mqtt(f"{T}/start-next", b'{"stepTimeoutInMinutes":2}')
    clock.advance(60)
    assert service.tick() == []
    described = by_topic(service.handle_mqtt(f"{T}/j1/get", b"{}"))
    assert described[f"{T}/j1/get/accepted"]["execution"]["approximateSecondsBeforeTimedOut"] == 60
    clock.advance(61)
    out = by_topic(service.tick())
    assert out[f"{T}/notify-next"] == {"timestamp": int(clock.now().timestamp())}
    execution = service.describe_job_execution("j1", "t1", None)["execution"]
    assert execution["status"] == "TIMED_OUT"
    assert service.describe_job("j1")["job"]["jobProcessDetails"]["numberOfTimedOutThings"] == 1
    assert service.describe_job("j1")["job"]["status"] == "COMPLETED"


def test_update_resets_step_timer(service: JobsService, clock: ManualClock) -> None:
    new_job(service, "j1")
    service.handle_mqtt(f"{T}/start-next", b'{"stepTimeoutInMinutes":1}')
    clock.advance(50)
    service.handle_mqtt(f"{T}/j1/update", b'{"status":"IN_PROGRESS","stepTimeoutInMinutes":1}')
    clock.advance(50)
    assert service.tick() == []
    clock.advance(20)
    assert service.tick() != []


def test_control_plane_errors(service: JobsService) -> None:
    new_job(service, "j1")
    cases: list[tuple[str, Any]] = [
        ("ResourceAlreadyExistsException", lambda: new_job(service, "j1")),
        ("InvalidRequestException", lambda: service.create_job("bad id", {})),
        ("InvalidRequestException", lambda: service.create_job("j9", {"document": "{", "targets": []})),
        ("InvalidRequestException", lambda: service.create_job("j9", {"document": "[]", "targets": []})),
        ("InvalidRequestException", lambda: service.create_job("j9", {"document": "{}", "targets": []})),
        ("InvalidRequestException", lambda: service.create_job("j9", {"document": "x" * 40000})),
        ("InvalidRequestException", lambda: service.create_job("j9", {"documentSource": "s3://b/k"})),
        ("InvalidRequestException", lambda: service.create_job("j9", {"document": "{}", "targets": ["group"]})),
        ("ResourceNotFoundException", lambda: new_job(service, "j9", ("ghost",))),
        (
            "InvalidRequestException",
            lambda: service.create_job(
                "j9", {"document": '{"u":"${aws:iot:s3-presigned-url:https://s3/b/k}"}', "targets": [thing_arn("t1")]}
            ),
        ),
        ("InvalidRequestException", lambda: new_job(service, "j9", presignedUrlConfig={"expiresInSec": 5})),
        ("InvalidRequestException", lambda: new_job(service, "j9", timeoutConfig={"inProgressTimeoutInMinutes": 0})),
        ("ResourceNotFoundException", lambda: service.describe_job("ghost")),
        ("ResourceNotFoundException", lambda: service.describe_thing("ghost")),
        ("ResourceNotFoundException", lambda: service.describe_job_execution("j1", "t2", None)),
        ("ResourceNotFoundException", lambda: service.describe_job_execution("j1", "t1", 5)),
        ("ResourceNotFoundException", lambda: service.list_job_executions_for_thing("ghost")),
        ("ResourceNotFoundException", lambda: service.list_job_executions_for_job("ghost")),
        ("InvalidRequestException", lambda: service.create_thing("bad thing")),
        ("ResourceAlreadyExistsException", lambda: service.create_thing("t1", {"a": "b"})),
    ]
    for error_type, call in cases:
        with pytest.raises(ServiceError) as caught:
            call()
        assert caught.value.error_type == error_type, call


def test_cancel_and_delete(service: JobsService) -> None:
    new_job(service, "j1", ("t1", "t2"))
    service.handle_mqtt(f"{T}/start-next", b"{}")
    service.cancel_job("j1", force=False, reason_code="r", comment="c")
    assert service.describe_job_execution("j1", "t1", None)["execution"]["status"] == "IN_PROGRESS"
    assert service.describe_job_execution("j1", "t2", None)["execution"]["status"] == "CANCELED"
    with pytest.raises(ServiceError):
        service.cancel_job("j1", force=False)
    with pytest.raises(ServiceError):
        service.delete_job("j1", force=False)
    service.cancel_job("j1", force=True)
    execution = service.describe_job_execution("j1", "t1", None)["execution"]
    assert (execution["status"], execution["forceCanceled"]) == ("CANCELED", True)
    job = service.describe_job("j1")["job"]
    assert (job["status"], job["forceCanceled"], job["comment"]) == ("CANCELED", True, "c")
    service.delete_job("j1", force=False)
    assert service.list_jobs() == []
    new_job(service, "j2")
    service.handle_mqtt(f"{T}/j2/update", b'{"status":"SUCCEEDED"}')
    with pytest.raises(ServiceError):
        service.cancel_job("j2", force=True)
    new_job(service, "j3")
    out = by_topic(service.delete_job("j3", force=True))
    assert out[f"{T}/notify-next"] == {"timestamp": int(out[f"{T}/notify-next"]["timestamp"])}


def test_listing_filters(service: JobsService) -> None:
    new_job(service, "j1", ("t1", "t2"))
    new_job(service, "j2")
    service.handle_mqtt(f"{T}/j2/update", b'{"status":"FAILED"}')
    assert [j["jobId"] for j in service.list_jobs()] == ["j1", "j2"]
    assert [j["jobId"] for j in service.list_jobs("COMPLETED")] == ["j2"]
    assert [e["jobId"] for e in service.list_job_executions_for_thing("t1", status="FAILED")] == ["j2"]
    assert [e["jobId"] for e in service.list_job_executions_for_thing("t1", job_id="j1")] == ["j1"]
    assert len(service.list_job_executions_for_job("j1")) == 2
    assert service.list_job_executions_for_job("j1", "FAILED") == []
    assert service.get_job_document("j1") == {"document": json.dumps({"job": "j1"})}
    assert service.describe_thing("t1")["thingArn"] == thing_arn("t1")
    assert service.create_thing("t1")["thingName"] == "t1"  # idempotent


def test_state_round_trip(service: JobsService, clock: ManualClock) -> None:
    new_job(service, "j1")
    service.handle_mqtt(f"{T}/start-next", b'{"statusDetails":{"a":"b"}}')
    with service.locked() as state:
        snapshot = json.loads(json.dumps(state.to_json()))
    restored = JobsService(ServiceState.from_json(snapshot), clock=clock)
    execution = restored.describe_job_execution("j1", "t1", None)["execution"]
    assert execution["status"] == "IN_PROGRESS"
    assert execution["statusDetails"] == {"detailsMap": {"a": "b"}}
    assert execution["versionNumber"] == 2


def test_placeholder_resolution_escapes_json() -> None:
    text = '{"u":"${aws:iot:s3-presigned-url:https://s3/b/k}","v":"${aws:iot:s3-presigned-url:https://s3/b/2}"}'
    seen: list[PresignRequest] = []

    def resolver(request: PresignRequest) -> str:
        seen.append(request)
        return request.url + '?sig="x"'

    resolved = resolve_placeholders(text, resolver, thing_name="t", job_id="j", expires_in_sec=60, now=0.0)
    assert json.loads(resolved) == {"u": 'https://s3/b/k?sig="x"', "v": 'https://s3/b/2?sig="x"'}
    assert [r.url for r in seen] == ["https://s3/b/k", "https://s3/b/2"]

"""Property-based tests: every Jobs decoder and job-document parser raises only the project's typed errors."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ota_cloud.aws import ControlPlaneServer, JobsService, thing_arn
from ota_cloud.aws._operations import register_jobs_operations
from ota_core.clock import ManualClock
from ota_core.errors import OtaError
from ota_core.models import JobEvent, JobEventKind
from ota_jobs.aws import (
    JobsCore,
    JobTracker,
    decode_execution_reply,
    decode_notify,
    decode_notify_next,
    decode_pending_reply,
    decode_rejected,
    decode_update_reply,
)
from ota_jobs.parsers import default_parser_chain

json_scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=30,
)
field_names = st.sampled_from(
    [
        "jobId",
        "status",
        "jobDocument",
        "statusDetails",
        "versionNumber",
        "executionNumber",
        "queuedAt",
        "timestamp",
        "clientToken",
        "execution",
        "executionState",
        "code",
        "message",
        "jobs",
        "inProgressJobs",
        "queuedJobs",
    ]
)
statuses = st.sampled_from(["QUEUED", "IN_PROGRESS", "SUCCEEDED", "FAILED", "CANCELED", "BOGUS"])
structured = st.recursive(
    st.none() | st.integers(-5, 2**40) | statuses | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(field_names | statuses, children, max_size=5),
    max_leaves=25,
)
payloads = (
    st.binary(max_size=200)
    | json_values.map(lambda v: json.dumps(v).encode())
    | structured.map(lambda v: json.dumps(v).encode())
)

DECODERS: list[Callable[[bytes], Any]] = [
    decode_execution_reply,
    decode_notify,
    decode_notify_next,
    decode_pending_reply,
    decode_rejected,
    decode_update_reply,
]
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(payload=payloads, index=st.integers(0, len(DECODERS) - 1))
def test_decoders_raise_only_typed_errors(payload: bytes, index: int) -> None:
    with contextlib.suppress(OtaError):
        DECODERS[index](payload)


topic_suffixes = st.sampled_from(
    [
        "notify",
        "notify-next",
        "get/accepted",
        "start-next/rejected",
        "j1/update/accepted",
        "$next/get/accepted",
    ]
)


@FUZZ
@given(suffix=topic_suffixes, payload=payloads)
def test_core_and_tracker_never_crash(suffix: str, payload: bytes) -> None:
    core = JobsCore("dev-1")
    tracker = JobTracker("dev-1")
    try:
        incoming = core.receive(f"$aws/things/dev-1/jobs/{suffix}", payload)
    except OtaError:
        return
    body = getattr(incoming, "body", None)
    execution = getattr(body, "execution", None)
    tracker.observe_next(execution, getattr(body, "timestamp", None))


file_entries = st.dictionaries(
    st.sampled_from(
        [
            "filepath",
            "filesize",
            "fileid",
            "certfile",
            "fileType",
            "update_data_url",
            "auth_scheme",
            "sig-sha256-ecdsa",
            "sig--",
            "sig-sha1-rsa",
            "name",
            "url",
            "size",
            "sha256",
            "signature",
        ]
    ),
    json_values,
    max_size=8,
)
afr_bodies = st.fixed_dictionaries(
    {},
    optional={
        "protocols": st.lists(st.sampled_from(["MQTT", "HTTP", "XYZ"]), max_size=3) | json_values,
        "streamname": st.text(max_size=20) | json_values,
        "files": st.lists(file_entries, max_size=3) | json_values,
    },
)
http_bodies = st.fixed_dictionaries(
    {},
    optional={
        "schema_version": st.just(1) | json_values,
        "version": st.text(max_size=10) | json_values,
        "files": st.lists(file_entries, max_size=3) | json_values,
    },
)
documents = (
    afr_bodies.map(lambda b: {"afr_ota": b})
    | http_bodies.map(lambda b: {"ota_http": b})
    | st.dictionaries(st.text(max_size=10), json_values, max_size=3)
)


@FUZZ
@given(document=documents)
def test_parsers_raise_only_typed_errors(document: dict[str, Any]) -> None:
    chain = default_parser_chain()
    try:
        plan = chain.parse(JobEvent(kind=JobEventKind.NEW, job_id="j", document=document))
    except OtaError:
        return
    assert all(target.size > 0 for target in plan.files)


request_suffixes = st.sampled_from(
    ["get", "start-next", "$next/get", "j1/get", "j1/update", "j2/update", "bogus", "j1/get/x", "notify"]
)


@FUZZ
@given(suffix=request_suffixes, payload=payloads)
def test_standin_data_plane_answers_everything(suffix: str, payload: bytes) -> None:
    service = JobsService(clock=ManualClock())
    service.create_thing("t1")
    service.create_job("j1", {"document": '{"a":1}', "targets": [thing_arn("t1")]})
    out = service.handle_mqtt(f"$aws/things/t1/jobs/{suffix}", payload)
    for message in out:
        assert isinstance(json.loads(message.payload), dict)


bodies = json_values.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=100)
paths = st.sampled_from(["/things/t1", "/jobs/j1", "/jobs", "/jobs/j1/cancel", "/things/t1/jobs/j1", "/x"])


@FUZZ
@given(method=st.sampled_from(["GET", "PUT", "POST", "DELETE"]), path=paths, body=bodies)
def test_standin_control_plane_answers_everything(method: str, path: str, body: bytes) -> None:
    server = ControlPlaneServer()
    try:
        register_jobs_operations(server, JobsService(clock=ManualClock()), lambda _messages: None)
        status, payload, _ = server.dispatch(method, path + "?force=true&maxResults=2", {}, body)
        assert 200 <= status < 600
        if payload:
            json.loads(payload)
    finally:
        server.close()

"""The sans-I/O Jobs core (requests, classification, decoding) and the job tracker."""

from __future__ import annotations

import datetime
import json

import pytest

from ota_core.models import JobEventKind, JobStatus
from ota_jobs.aws import (
    JobExecution,
    JobExecutionsChanged,
    JobExecutionState,
    JobExecutionSummary,
    JobsApi,
    JobsCore,
    JobsEvent,
    JobsMessageError,
    JobsReply,
    JobsVersionMismatchError,
    JobTracker,
    NextJobExecutionChanged,
)

T = "$aws/things/dev-1/jobs"


def ts(seconds: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)


def execution(job_id: str = "j1", status: JobStatus = JobStatus.QUEUED, version: int = 1) -> JobExecution:
    return JobExecution(
        job_id=job_id, status=status, job_document={"k": job_id}, version_number=version, execution_number=1
    )


def test_requests_carry_unique_tokens() -> None:
    core = JobsCore("dev-1")
    first = core.get_pending()
    second = core.start_next(step_timeout_in_minutes=5, status_details={"a": "b"})
    describe = core.describe()
    update = core.update("j1", JobStatus.IN_PROGRESS, status_details={"receive": "1/2"}, expected_version=3)
    assert first.topic == f"{T}/get"
    assert second.topic == f"{T}/start-next"
    assert describe.topic == f"{T}/$next/get"
    assert update.topic == f"{T}/j1/update"
    tokens = {first.client_token, second.client_token, describe.client_token, update.client_token}
    assert len(tokens) == 4
    assert all(token.startswith("dev-1:") for token in tokens)
    body = json.loads(update.payload)
    assert body["clientToken"] == update.client_token
    assert body["includeJobExecutionState"] is True
    assert body["expectedVersion"] == 3
    assert core.thing_name == "dev-1"
    assert JobsCore("x" * 128).new_client_token().startswith("x" * 40 + ":")
    assert JobsCore("dev-1", token_prefix="p").new_client_token() == "p:1"


def test_receive_classifies_replies_and_events() -> None:
    core = JobsCore("dev-1")
    reply = core.receive(f"{T}/start-next/accepted", b'{"clientToken":"c","timestamp":1}')
    assert isinstance(reply, JobsReply)
    assert reply.match.api is JobsApi.START_NEXT
    assert reply.client_token == "c"
    assert reply.error is None
    rejected = core.receive(f"{T}/j1/update/rejected", b'{"code":"VersionMismatch","clientToken":"c2"}')
    assert isinstance(rejected, JobsReply)
    assert isinstance(rejected.error, JobsVersionMismatchError)
    assert rejected.client_token == "c2"
    pending = core.receive(f"{T}/get/accepted", b'{"queuedJobs":[]}')
    assert isinstance(pending, JobsReply)
    update = core.receive(f"{T}/j1/update/accepted", b"{}")
    assert isinstance(update, JobsReply)
    describe = core.receive(f"{T}/$next/get/accepted", b"{}")
    assert isinstance(describe, JobsReply)
    notify = core.receive(f"{T}/notify", b'{"jobs":{}}')
    assert isinstance(notify, JobsEvent)
    assert isinstance(notify.body, JobExecutionsChanged)
    nxt = core.receive(f"{T}/notify-next", b"{}")
    assert isinstance(nxt, JobsEvent)
    assert isinstance(nxt.body, NextJobExecutionChanged)


def test_receive_ignores_other_things_and_requests() -> None:
    core = JobsCore("dev-1")
    assert core.receive("$aws/things/dev-2/jobs/notify-next", b"{}") is None
    assert core.receive(f"{T}/start-next", b"{}") is None
    assert core.receive("some/other/topic", b"garbage") is None
    assert core.client_token_of("$aws/things/dev-2/jobs/get/accepted", b'{"clientToken":"x"}') is None
    assert core.client_token_of(f"{T}/notify", b'{"clientToken":"x"}') is None
    assert core.client_token_of(f"{T}/get/accepted", b'{"clientToken":"x"}') == "x"
    assert core.client_token_of(f"{T}/get/accepted", b"not json") is None
    assert core.client_token_of(f"{T}/get/accepted", b"[1]") is None
    with pytest.raises(JobsMessageError):
        core.receive(f"{T}/notify-next", b"not json")


# --- tracker ----------------------------------------------------------------------------------------


def test_new_job_then_replay_then_change() -> None:
    tracker = JobTracker("dev-1")
    events = tracker.observe_next(execution(), ts(10))
    assert [e.kind for e in events] == [JobEventKind.NEW]
    assert events[0].job_id == "j1"
    assert events[0].document == {"k": "j1"}
    assert events[0].attributes["version_number"] == 1
    assert tracker.observe_next(execution(), ts(10)) == []  # replay
    changed = tracker.observe_next(execution(version=2, status=JobStatus.IN_PROGRESS), ts(11))
    assert [e.kind for e in changed] == [JobEventKind.CHANGED]
    assert tracker.version_of("j1") == 2
    assert tracker.version_of("other") is None


def test_out_of_order_notifications_are_ignored() -> None:
    tracker = JobTracker("dev-1")
    tracker.observe_next(execution(version=3), ts(20))
    assert tracker.observe_next(None, ts(10)) == []
    assert tracker.active is not None


def test_cancellation_and_nothing_pending() -> None:
    tracker = JobTracker("dev-1")
    tracker.observe_next(execution(), ts(1))
    events = tracker.observe_next(None, ts(2))
    assert [e.kind for e in events] == [JobEventKind.CANCELLED, JobEventKind.NOTHING_PENDING]
    assert events[0].job_id == "j1"
    assert tracker.observe_next(None, ts(3)) == []  # already told
    assert [e.kind for e in tracker.observe_next(None, ts(3), explicit=True)] == [JobEventKind.NOTHING_PENDING]


def test_job_leaving_during_its_own_final_report_is_not_a_cancellation() -> None:
    """The service may announce "nothing pending" before the reply to the device's SUCCEEDED arrives."""
    tracker = JobTracker("dev-1")
    tracker.observe_next(execution("j1"), ts(1))
    tracker.begin_final_update("j1")
    assert [e.kind for e in tracker.observe_next(None, ts(2))] == [JobEventKind.NOTHING_PENDING]
    gone = JobExecutionsChanged(jobs={JobStatus.QUEUED: ()}, timestamp=ts(3))
    assert tracker.observe_pending(gone) == []
    tracker.end_final_update("j1")
    tracker.observe_update("j1", JobStatus.SUCCEEDED, None)
    assert tracker.active is None
    assert tracker.observe_next(execution("j1", JobStatus.IN_PROGRESS, 4), ts(5)) == []
    # Another job's final report does not hide a real cancellation of the active one.
    tracker.observe_next(execution("j2"), ts(6))
    tracker.begin_final_update("j-other")
    events = tracker.observe_next(None, ts(7))
    assert [(e.kind, e.job_id) for e in events] == [
        (JobEventKind.CANCELLED, "j2"),
        (JobEventKind.NOTHING_PENDING, None),
    ]
    tracker.end_final_update("j-wrong")  # ending an update that is not in flight changes nothing


def test_different_job_replaces_the_active_one() -> None:
    tracker = JobTracker("dev-1")
    tracker.observe_next(execution("j1"), ts(1))
    events = tracker.observe_next(execution("j2"), ts(2))
    assert [(e.kind, e.job_id) for e in events] == [(JobEventKind.CANCELLED, "j1"), (JobEventKind.NEW, "j2")]


def test_finished_jobs_are_not_reoffered() -> None:
    tracker = JobTracker("dev-1")
    tracker.observe_next(execution("j1"), ts(1))
    tracker.observe_update("j1", JobStatus.IN_PROGRESS, JobExecutionState(JobStatus.IN_PROGRESS, {}, 2))
    assert tracker.version_of("j1") == 2
    tracker.observe_update("j1", JobStatus.IN_PROGRESS, None)
    assert tracker.version_of("j1") == 3
    tracker.observe_update("j1", JobStatus.SUCCEEDED, None)
    assert tracker.active is None
    assert tracker.observe_next(execution("j1", JobStatus.IN_PROGRESS, 4), ts(5)) == []
    assert tracker.observe_next(execution("j9", JobStatus.SUCCEEDED), ts(6)) == []
    assert [e.kind for e in tracker.observe_next(execution("j1"), ts(7), explicit=True)] == [JobEventKind.NEW]


def test_notify_detects_cancellation() -> None:
    tracker = JobTracker("dev-1")
    assert tracker.observe_pending(JobExecutionsChanged(jobs={}, timestamp=ts(1))) == []
    tracker.observe_next(execution("j1"), ts(1))
    still = JobExecutionsChanged(jobs={JobStatus.QUEUED: (JobExecutionSummary("j1"),)}, timestamp=ts(2))
    assert tracker.observe_pending(still) == []
    gone = JobExecutionsChanged(jobs={JobStatus.QUEUED: ()}, timestamp=ts(3))
    assert [e.kind for e in tracker.observe_pending(gone)] == [JobEventKind.CANCELLED]


def test_version_resync() -> None:
    tracker = JobTracker("dev-1")
    tracker.observe_next(execution("j1", version=1), ts(1))
    tracker.observe_version("j1", JobExecutionState(JobStatus.IN_PROGRESS, {}, 7))
    assert tracker.version_of("j1") == 7
    tracker.observe_version("j1", None)
    tracker.observe_version("other", JobExecutionState(JobStatus.IN_PROGRESS, {}, 9))
    assert tracker.version_of("j1") == 7
    tracker.observe_update("other", JobStatus.IN_PROGRESS, None)
    assert tracker.version_of("j1") == 7

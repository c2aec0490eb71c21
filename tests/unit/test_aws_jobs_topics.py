"""Jobs topics, identifier validation and topic classification, with the reference vectors."""

from __future__ import annotations

import pytest

from ota_jobs.aws import (
    InvalidJobIdError,
    InvalidStatusDetailsError,
    InvalidThingNameError,
    JobsApi,
    JobsRequestError,
    JobsTopicMatch,
    JobsTopics,
    ReplyKind,
    validate_client_token,
    validate_job_id,
    validate_status_details,
    validate_step_timeout,
    validate_thing_name,
)

T = "$aws/things/foobar/jobs"


@pytest.fixture
def topics() -> JobsTopics:
    return JobsTopics("foobar")


def test_request_topics(topics: JobsTopics) -> None:
    assert topics.prefix == T
    assert topics.get_pending() == f"{T}/get"
    assert topics.start_next() == f"{T}/start-next"
    assert topics.describe("1234") == f"{T}/1234/get"
    assert topics.describe("$next") == f"{T}/$next/get"
    assert topics.update("1234") == f"{T}/1234/update"
    assert topics.notify() == f"{T}/notify"
    assert topics.notify_next() == f"{T}/notify-next"
    assert JobsTopics.reply(topics.update("1234"), accepted=True) == f"{T}/1234/update/accepted"
    assert JobsTopics.reply(topics.get_pending(), accepted=False) == f"{T}/get/rejected"
    assert f"{T}/+/update/+" in topics.reply_filters()


def test_update_refuses_next(topics: JobsTopics) -> None:
    with pytest.raises(InvalidJobIdError):
        topics.update("$next")


@pytest.mark.parametrize(
    ("suffix", "expected"),
    [
        ("notify", JobsTopicMatch(JobsApi.NOTIFY, ReplyKind.EVENT)),
        ("notify-next", JobsTopicMatch(JobsApi.NOTIFY_NEXT, ReplyKind.EVENT)),
        ("get", JobsTopicMatch(JobsApi.GET_PENDING, ReplyKind.REQUEST)),
        ("get/accepted", JobsTopicMatch(JobsApi.GET_PENDING, ReplyKind.ACCEPTED)),
        ("get/rejected", JobsTopicMatch(JobsApi.GET_PENDING, ReplyKind.REJECTED)),
        ("start-next", JobsTopicMatch(JobsApi.START_NEXT, ReplyKind.REQUEST)),
        ("start-next/accepted", JobsTopicMatch(JobsApi.START_NEXT, ReplyKind.ACCEPTED)),
        ("start-next/rejected", JobsTopicMatch(JobsApi.START_NEXT, ReplyKind.REJECTED)),
        ("12345/get/accepted", JobsTopicMatch(JobsApi.DESCRIBE, ReplyKind.ACCEPTED, "12345")),
        ("ab224-z/update/rejected", JobsTopicMatch(JobsApi.UPDATE, ReplyKind.REJECTED, "ab224-z")),
        ("$next/get/rejected", JobsTopicMatch(JobsApi.DESCRIBE, ReplyKind.REJECTED, "$next")),
        ("1234/get", JobsTopicMatch(JobsApi.DESCRIBE, ReplyKind.REQUEST, "1234")),
        ("1234/update", JobsTopicMatch(JobsApi.UPDATE, ReplyKind.REQUEST, "1234")),
    ],
)
def test_match(topics: JobsTopics, suffix: str, expected: JobsTopicMatch) -> None:
    assert topics.match(f"{T}/{suffix}") == expected


@pytest.mark.parametrize(
    "topic",
    [
        f"{T}/notifyzz",
        f"{T}/ab224-z/update/rejectedzz",
        "$aws/things/foobarzz",
        "$aws/things/foobarzz/jobs/notify",
        "$aws/things/foobar/jobz/notify",
        "$aws/things/FOOBAR/jobs/notify",
        "$awz/thingz/foobar/jobs/notify",
        f"{T}/get/accepted/extra",
        f"{T}/start-next/maybe",
        f"{T}/$next/update",
        f"{T}/$next/update/accepted",
        f"{T}/bad:id/get/accepted",
        f"{T}/1234/delete",
        f"{T}/1234/get/accepted/x",
        f"{T}/1234",
        f"{T}/",
        "",
    ],
)
def test_no_match(topics: JobsTopics, topic: str) -> None:
    assert topics.match(topic) is None


def test_thing_name_charset() -> None:
    valid = "".join(chr(c) for c in range(128) if chr(c).isalnum() and chr(c).isascii()) + ":_-"
    assert validate_thing_name(valid[:128]) == valid[:128]
    for code in range(32, 127):
        ch = chr(code)
        if ch.isalnum() or ch in ":_-":
            continue
        with pytest.raises(InvalidThingNameError):
            validate_thing_name(f"thing{ch}")
    with pytest.raises(InvalidThingNameError):
        validate_thing_name("a" * 129)
    with pytest.raises(InvalidThingNameError):
        validate_thing_name("")
    with pytest.raises(InvalidThingNameError):
        validate_thing_name(42)
    with pytest.raises(InvalidThingNameError):
        JobsTopics("bad/name")


def test_job_id_rules() -> None:
    assert validate_job_id("a" * 64) == "a" * 64
    assert validate_job_id("$next", allow_next=True) == "$next"
    for bad in ("a" * 65, "", "with:colon", "$next", "sp ace", None):
        with pytest.raises(InvalidJobIdError):
            validate_job_id(bad)


def test_status_details_rules() -> None:
    assert validate_status_details({"receive": "1/2", "a:b_c-d": "x" * 1024}) == {
        "receive": "1/2",
        "a:b_c-d": "x" * 1024,
    }
    bad_cases: list[object] = [
        {"k": "x" * 1025},
        {"k": ""},
        {"k": 1},
        {"bad key": "v"},
        {"": "v"},
        {1: "v"},
        {"k": "line\nbreak"},
        "not a mapping",
    ]
    for bad in bad_cases:
        with pytest.raises(InvalidStatusDetailsError):
            validate_status_details(bad)  # type: ignore[arg-type]


def test_step_timeout_and_token() -> None:
    assert validate_step_timeout(1) == 1
    assert validate_step_timeout(10080) == 10080
    for bad in (0, 10081, True, "5", 1.5):
        with pytest.raises(JobsRequestError):
            validate_step_timeout(bad)
    assert validate_client_token("dev:1") == "dev:1"
    for bad_token in ("", "x" * 65, "with space", 5):
        with pytest.raises(JobsRequestError):
            validate_client_token(bad_token)

"""The sans-I/O twin core: $rid correlation, desired ordering, one reported patch in flight, retries."""

from __future__ import annotations

import json
import random

import pytest

from ota_jobs.azure import (
    DesiredPatch,
    MethodCall,
    ReportedAccepted,
    RequestFailed,
    RetryPolicy,
    TwinCore,
    TwinDocument,
    TwinDocumentError,
)
from ota_jobs.azure._twin_core import parse_topic_query

DOC = json.dumps(
    {"desired": {"firmware": {"fwVersion": "1.0.1"}, "$version": 5}, "reported": {"x": 1, "$version": 3}}
).encode()


def rid_of(topic: str) -> str:
    return parse_topic_query(topic)[1]["$rid"]


def make() -> TwinCore:
    return TwinCore(
        retry=RetryPolicy(max_attempts=3, initial_delay=1.0, jitter=0.0, response_timeout=10.0), rng=random.Random(1)
    )


def test_subscriptions_and_get() -> None:
    core = make()
    assert core.subscriptions == (
        "$iothub/twin/res/#",
        "$iothub/twin/PATCH/properties/desired/#",
        "$iothub/methods/POST/#",
    )
    step = core.request_twin(0.0)
    (out,) = step.outgoing
    assert out.topic.startswith("$iothub/twin/GET/?$rid=") and out.payload == b""
    assert core.request_twin(0.0).outgoing == ()  # one GET at a time
    assert core.waiting_for_document
    res = core.receive(f"$iothub/twin/res/200/?$rid={rid_of(out.topic)}", DOC, 1.0)
    (doc,) = res.events
    assert isinstance(doc, TwinDocument)
    assert doc.desired == {"firmware": {"fwVersion": "1.0.1"}} and doc.desired_version == 5
    assert doc.reported == {"x": 1} and doc.reported_version == 3
    assert core.desired_version == 5 and not core.waiting_for_document


def test_patches_before_document_are_held_and_old_ones_dropped() -> None:
    core = make()
    get = core.request_twin(0.0).outgoing[0]
    assert core.receive("$iothub/twin/PATCH/properties/desired/?$version=4", b'{"a":1,"$version":4}', 0).events == ()
    assert core.receive("$iothub/twin/PATCH/properties/desired/?$version=7", b'{"b":2,"$version":7}', 0).events == ()
    assert core.receive("$iothub/twin/PATCH/properties/desired/?$version=6", b'{"c":3,"$version":6}', 0).events == ()
    events = core.receive(f"$iothub/twin/res/200/?$rid={rid_of(get.topic)}", DOC, 0).events
    assert isinstance(events[0], TwinDocument)
    assert [e.version for e in events[1:] if isinstance(e, DesiredPatch)] == [6, 7]
    # going backwards after the document: dropped
    assert core.receive("$iothub/twin/PATCH/properties/desired/?$version=7", b'{"d":1}', 0).events == ()
    (patch,) = core.receive("$iothub/twin/PATCH/properties/desired/?$version=8", b'{"d":1,"$version":8}', 0).events
    assert isinstance(patch, DesiredPatch) and patch.patch == {"d": 1}


def test_full_document_delivered_as_patch() -> None:
    core = make()
    body = json.dumps({"desired": {"k": 1, "$version": 9}, "reported": {"$version": 1}}).encode()
    (patch,) = core.receive("$iothub/twin/PATCH/properties/desired/?$version=9", body, 0).events
    assert isinstance(patch, DesiredPatch) and patch.patch == {"k": 1}


def test_one_reported_patch_in_flight() -> None:
    core = make()
    t1, s1 = core.patch_reported({"a": 1}, 0.0)
    t2, s2 = core.patch_reported({"a": 2}, 0.0)
    assert len(s1.outgoing) == 1 and s2.outgoing == ()
    assert core.reported_backlog == 2
    first = s1.outgoing[0]
    assert first.topic.startswith("$iothub/twin/PATCH/properties/reported/?$rid=")
    assert json.loads(first.payload) == {"a": 1}
    step = core.receive(f"$iothub/twin/res/204/?$rid={rid_of(first.topic)}&$version=11", b"", 1.0)
    assert step.events == (ReportedAccepted(t1, 11),)
    (second,) = step.outgoing
    assert json.loads(second.payload) == {"a": 2}
    step = core.receive(f"$iothub/twin/res/204/?$rid={rid_of(second.topic)}", b"", 1.0)
    assert step.events == (ReportedAccepted(t2, None),)
    assert core.reported_backlog == 0


def test_429_and_5xx_retry_with_backoff_then_fail() -> None:
    core = make()
    ticket, step = core.patch_reported({"a": 1}, 0.0)
    out = step.outgoing[0]
    assert core.receive(f"$iothub/twin/res/429/?$rid={rid_of(out.topic)}", b"", 0.0).events == ()
    assert core.next_deadline() == pytest.approx(1.0)
    assert core.poll(0.5).outgoing == ()
    (retry,) = core.poll(1.0).outgoing
    assert rid_of(retry.topic) != rid_of(out.topic)
    assert core.receive(f"$iothub/twin/res/503/?$rid={rid_of(retry.topic)}", b"", 1.0).events == ()
    assert core.next_deadline() == pytest.approx(3.0)
    (third,) = core.poll(3.0).outgoing
    (failed,) = core.receive(f"$iothub/twin/res/500/?$rid={rid_of(third.topic)}", b"", 3.0).events
    assert isinstance(failed, RequestFailed) and failed.status == 500 and failed.ticket == ticket
    assert core.next_deadline() is None


def test_400_is_terminal_and_next_patch_goes_out() -> None:
    core = make()
    _, s1 = core.patch_reported({"a": 1}, 0.0)
    core.patch_reported({"a": 2}, 0.0)
    step = core.receive(f"$iothub/twin/res/400/?$rid={rid_of(s1.outgoing[0].topic)}", b"", 0.0)
    assert isinstance(step.events[0], RequestFailed) and step.events[0].status == 400
    assert json.loads(step.outgoing[0].payload) == {"a": 2}


def test_missing_answer_times_out_into_retry() -> None:
    core = make()
    core.patch_reported({"a": 1}, 0.0)
    assert core.next_deadline() == pytest.approx(10.0)
    assert core.poll(10.0).outgoing == ()  # turned into a scheduled retry
    assert len(core.poll(11.0).outgoing) == 1


def test_get_failure_releases_held_patches() -> None:
    core = make()
    get = core.request_twin(0.0).outgoing[0]
    core.receive("$iothub/twin/PATCH/properties/desired/?$version=2", b'{"a":1}', 0)
    events = core.receive(f"$iothub/twin/res/404/?$rid={rid_of(get.topic)}", b"", 0).events
    assert isinstance(events[0], RequestFailed) and events[0].kind == "get"
    assert isinstance(events[1], DesiredPatch)


def test_bad_get_body_fails_request() -> None:
    core = make()
    get = core.request_twin(0.0).outgoing[0]
    (failed,) = core.receive(f"$iothub/twin/res/200/?$rid={rid_of(get.topic)}", b"{not json", 0).events
    assert isinstance(failed, RequestFailed)


def test_reconnect_resends_and_gets() -> None:
    core = make()
    core.patch_reported({"a": 1}, 0.0)
    out = core.reconnected(1.0).outgoing
    assert [o.topic.split("?")[0] for o in out] == ["$iothub/twin/PATCH/properties/reported/", "$iothub/twin/GET/"]
    out = core.reconnected(2.0).outgoing
    assert len(out) == 2


def test_methods() -> None:
    core = make()
    (call,) = core.receive("$iothub/methods/POST/checkForUpdates/?$rid=7", b'{"delay":5}', 0).events
    assert call == MethodCall("checkForUpdates", "7", {"delay": 5})
    (empty,) = core.receive("$iothub/methods/POST/reboot/?$rid=8", b"", 0).events
    assert isinstance(empty, MethodCall) and empty.payload is None
    out = core.method_response("7", 200, {"result": "ok"})
    assert out.topic == "$iothub/methods/res/200/?$rid=7" and out.payload == b'{"result":"ok"}'
    with pytest.raises(TwinDocumentError):
        core.method_response("7", True, None)
    with pytest.raises(TwinDocumentError):
        core.method_response("7", 200, {1, 2})


@pytest.mark.parametrize(
    ("topic", "payload"),
    [
        ("$iothub/methods/POST/bad name/?$rid=1", b""),
        ("$iothub/methods/POST/ok/", b""),
        ("$iothub/methods/POST/ok/?$rid=1", b"{bad"),
        ("$iothub/twin/PATCH/properties/desired/", b"{}"),
        ("$iothub/twin/PATCH/properties/desired/?$version=x", b"{}"),
        ("$iothub/twin/PATCH/properties/desired/?$version=1", b"[]"),
        ("$iothub/twin/PATCH/properties/desired/?$version=1", b'{"a": NaN}'),
        ("$iothub/twin/PATCH/properties/desired/?$version=1", b"\xff"),
        ("$iothub/twin/PATCH/properties/desired/?$version=1", b"[" * 5000),
        ("$iothub/twin/PATCH/properties/desired/?$version=1", b" " * 200_000),
        ("$iothub/twin/res/abc/?$rid=1", b""),
        ("x" * 2000, b""),
    ],
)
def test_bad_inbound(topic: str, payload: bytes) -> None:
    with pytest.raises(TwinDocumentError):
        make().receive(topic, payload, 0)


def test_unknown_topics_and_rids_are_ignored() -> None:
    core = make()
    assert core.receive("other/topic", b"", 0).events == ()
    assert core.receive("$iothub/twin/res/204/?$rid=99", b"", 0).events == ()
    assert core.receive("$iothub/twin/res/204/", b"", 0).events == ()


def test_malformed_reported_version_is_tolerated() -> None:
    core = make()
    t, step = core.patch_reported({"a": 1}, 0.0)
    ev = core.receive(f"$iothub/twin/res/204/?$rid={rid_of(step.outgoing[0].topic)}&$version=zz", b"", 0).events
    assert ev == (ReportedAccepted(t, None),)


@pytest.mark.parametrize(
    "patch",
    [
        {"a.b": 1},
        {"$x": 1},
        {"a b": 1},
        {"\x01": 1},
        {"k" * 1100: 1},
        {"s": "x" * 5000},
        {"n": 2**60},
        {"f": float("nan")},
        {"o": object()},
        {"big": ["y" * 4000] * 10},
        {"d": {"d": {"d": {"d": {"d": {"d": {"d": {"d": {"d": {"d": {"d": 1}}}}}}}}}}},
    ],
)
def test_reported_patch_limits(patch: dict[str, object]) -> None:
    with pytest.raises(TwinDocumentError):
        make().patch_reported(patch, 0.0)


def test_parse_topic_query_decodes() -> None:
    assert parse_topic_query("a/?$rid=a%2Fb&&x") == ("a/", {"$rid": "a/b", "x": ""})

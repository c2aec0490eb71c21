"""MQTT topic validation and matching, including the rules for topics that start with '$'."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ota_core.errors import InvalidTopicError
from ota_core.mqtt import topic_matches, validate_topic_filter, validate_topic_name


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        ("a/b/c", "a/b/c", True),
        ("a/b/c", "a/b", False),
        ("a/+/c", "a/x/c", True),
        ("a/+/c", "a/x/y/c", False),
        ("a/#", "a", True),
        ("a/#", "a/b/c", True),
        ("#", "a/b", True),
        ("+", "a", True),
        ("+", "a/b", False),
        ("+/+", "/a", True),
        ("a/+", "a/", True),
        ("#", "$SYS/broker", False),
        ("+/jobs/notify", "$aws/jobs/notify", False),
        ("$aws/things/+/jobs/notify", "$aws/things/dev1/jobs/notify", True),
        ("$aws/things/dev1/jobs/#", "$aws/things/dev1/jobs/get/accepted", True),
        ("$iothub/twin/res/#", "$iothub/twin/res/200/?$rid=1", True),
        ("$iothub/twin/res/#", "$iothub/twin/PATCH/properties/desired/?$version=3", False),
    ],
)
def test_topic_matches(topic_filter: str, topic: str, expected: bool) -> None:
    assert topic_matches(topic_filter, topic) is expected


@pytest.mark.parametrize("bad", ["", "a/#/b", "a#", "a/b+", "+a", "x\0y", 5, None])
def test_invalid_filters_are_refused(bad: object) -> None:
    with pytest.raises(InvalidTopicError):
        validate_topic_filter(bad)


@pytest.mark.parametrize("bad", ["", "a/+", "a/#", "x\0y", "\ud800", b"bytes", "a" * 70000])
def test_invalid_topic_names_are_refused(bad: object) -> None:
    with pytest.raises(InvalidTopicError):
        validate_topic_name(bad)


def test_valid_names_and_filters_pass() -> None:
    assert validate_topic_name("$aws/things/t/jobs/get") == "$aws/things/t/jobs/get"
    assert validate_topic_filter("a/+/b/#") == "a/+/b/#"


_levels = st.lists(st.sampled_from(["a", "b", "$x", ""]), min_size=1, max_size=5)


@given(_levels)
def test_a_topic_matches_itself_and_hash(levels: list[str]) -> None:
    topic = "/".join(levels)
    if not topic:
        return
    assert topic_matches(topic, topic)
    assert topic_matches("#", topic) is (not topic.startswith("$"))


@given(st.text(max_size=40))
def test_validators_only_raise_typed_errors(text: str) -> None:
    for validator in (validate_topic_name, validate_topic_filter):
        with contextlib.suppress(InvalidTopicError):
            validator(text)

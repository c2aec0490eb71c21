"""MQTT topic names and topic filters: validation and matching as the MQTT 3.1.1 and 5 specs define them."""

from __future__ import annotations

from ota_core.errors import InvalidTopicError

_MAX_TOPIC_BYTES = 65535


def _check_common(text: object, what: str) -> str:
    if not isinstance(text, str):
        raise InvalidTopicError(f"{what} must be a string, got {type(text).__name__}")
    if not text:
        raise InvalidTopicError(f"{what} must not be empty")
    if "\0" in text:
        raise InvalidTopicError(f"{what} {text!r:.80} contains a NUL character")
    try:
        encoded = text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidTopicError(f"{what} {text!r:.80} is not valid UTF-8") from error
    if len(encoded) > _MAX_TOPIC_BYTES:
        raise InvalidTopicError(f"{what} is {len(encoded)} bytes, over MQTT's limit of {_MAX_TOPIC_BYTES}")
    return text


def validate_topic_name(topic: object) -> str:
    """Return ``topic`` if it is a valid topic name to publish to (no wildcards), else raise."""
    text = _check_common(topic, "topic name")
    if "+" in text or "#" in text:
        raise InvalidTopicError(f"topic name {text!r:.80} contains a wildcard; only filters may")
    return text


def validate_topic_filter(topic_filter: object) -> str:
    """Return ``topic_filter`` if it is a valid subscription filter, else raise ``InvalidTopicError``.

    ``#`` must be a whole level and the last one; ``+`` must be a whole level.
    """
    text = _check_common(topic_filter, "topic filter")
    levels = text.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            raise InvalidTopicError(f"topic filter {text!r:.80}: '#' must be a whole, final level")
        if "+" in level and level != "+":
            raise InvalidTopicError(f"topic filter {text!r:.80}: '+' must be a whole level")
    return text


def topic_matches(topic_filter: str, topic: str) -> bool:
    """Whether ``topic`` matches ``topic_filter`` under MQTT rules.

    Wildcards in the first level do not match topics that start with ``$`` (``$SYS``, ``$aws``, ``$iothub``).
    """
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    filter_levels = topic_filter.split("/")
    topic_levels = topic.split("/")
    for index, level in enumerate(filter_levels):
        if level == "#":
            return True
        if index >= len(topic_levels):
            return False
        if level != "+" and level != topic_levels[index]:
            return False
    return len(filter_levels) == len(topic_levels)

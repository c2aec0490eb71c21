"""Strict JSON decoding and the twin limits, shared by the twin, MXChip and Device Update decoders.

Every failure comes out as the caller's typed error; nothing from ``json`` escapes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from ota_core.errors import OtaError

__all__ = [
    "TWIN_MAX_DEPTH",
    "TWIN_MAX_INT",
    "TWIN_MAX_KEY_BYTES",
    "TWIN_MAX_SECTION_BYTES",
    "TWIN_MAX_STRING_BYTES",
    "TWIN_MIN_INT",
    "check_twin_patch",
    "json_depth",
    "load_json",
]

TWIN_MAX_SECTION_BYTES = 32 * 1024
TWIN_MAX_KEY_BYTES = 1024
TWIN_MAX_STRING_BYTES = 4 * 1024
TWIN_MAX_DEPTH = 10
TWIN_MIN_INT = -4503599627370496
TWIN_MAX_INT = 4503599627370495


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def load_json(data: bytes | str, error: type[OtaError], *, limit: int, what: str) -> Any:
    """Decode ``data`` as strict JSON (UTF-8, no NaN/Infinity, at most ``limit`` bytes) or raise ``error``."""
    if len(data) > limit:
        raise error(f"{what} is {len(data)} bytes, more than the limit of {limit}")
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return json.loads(text, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise error(f"{what} is not valid JSON: {exc}") from exc


def json_depth(value: Any, _level: int = 0) -> int:
    """Nesting depth of objects/arrays (a scalar is 0, ``{}`` is 1); bounded by the decoded input."""
    if isinstance(value, Mapping):
        return 1 + max((json_depth(v, _level + 1) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((json_depth(v, _level + 1) for v in value), default=0)
    return 0


def _check_value(value: Any, error: type[OtaError], path: str, depth: int) -> None:
    if depth > TWIN_MAX_DEPTH:
        raise error(f"{path or 'patch'} nests deeper than {TWIN_MAX_DEPTH} levels")
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str) or not key:
                raise error(f"invalid twin key at {path or 'top'}")
            if len(key.encode("utf-8")) > TWIN_MAX_KEY_BYTES:
                raise error(f"twin key longer than {TWIN_MAX_KEY_BYTES} bytes at {path or 'top'}")
            if any(ch in ".$ " or ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in key):
                raise error(f"twin key {key[:40]!r} has a forbidden character ('.', '$', space, control)")
            _check_value(item, error, f"{path}.{key}" if path else key, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_value(item, error, f"{path}[{index}]", depth + 1)
    elif isinstance(value, str):
        if len(value.encode("utf-8")) > TWIN_MAX_STRING_BYTES:
            raise error(f"string at {path} is longer than {TWIN_MAX_STRING_BYTES} bytes")
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if not TWIN_MIN_INT <= value <= TWIN_MAX_INT:
            raise error(f"integer at {path} is outside the twin range")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise error(f"number at {path} is not finite")
    else:
        raise error(f"value at {path} is not JSON ({type(value).__name__})")


def check_twin_patch(patch: Mapping[str, Any], error: type[OtaError]) -> bytes:
    """Check a reported patch against the twin limits and return its compact JSON encoding."""
    if not isinstance(patch, Mapping):
        raise error("a twin patch must be a JSON object")
    _check_value(patch, error, "", 1)
    body = json.dumps(patch, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(body) > TWIN_MAX_SECTION_BYTES:
        raise error(f"the patch is {len(body)} bytes, over the {TWIN_MAX_SECTION_BYTES}-byte twin section")
    return body

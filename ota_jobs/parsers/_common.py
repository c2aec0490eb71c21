"""Helpers shared by the job-document parsers: size limits, numbers, base64, safe file paths.

Every function here raises ``JobDocumentError`` (or a subclass) for bad input, never a raw ``ValueError``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

from ota_core.errors import JobDocumentError

__all__ = [
    "MAX_DOCUMENT_CHARS",
    "UnsafeFilePathError",
    "decode_base64",
    "document_size",
    "is_unresolved_placeholder",
    "read_uint",
    "safe_relative_path",
]

MAX_DOCUMENT_CHARS = 32_768
"""The service's limit on a job document; a longer one cannot come from AWS IoT Jobs."""

_DIGITS = re.compile(r"[0-9]{1,20}")
_PLACEHOLDER = "${aws:iot:"


class UnsafeFilePathError(JobDocumentError):
    """A file path in a job document that would escape the directory it is meant for."""

    code = "JOB_DOCUMENT_UNSAFE_PATH"


def document_size(document: Mapping[str, Any]) -> int:
    """The length of ``document`` as compact JSON text (what the service counts against its limit)."""
    try:
        return len(json.dumps(document, separators=(",", ":"), ensure_ascii=False))
    except (TypeError, ValueError, RecursionError) as exc:
        raise JobDocumentError(
            "the job document cannot be encoded as JSON", details={"error": str(exc)[:200]}
        ) from None


def read_uint(value: object, field: str, *, maximum: int, minimum: int = 0, allow_numeric_string: bool = True) -> int:
    """An unsigned integer from a JSON number or (if allowed) a string of digits, within bounds."""
    number: int
    if isinstance(value, bool):
        raise JobDocumentError(f"{field} must be a number", details={"field": field})
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and allow_numeric_string and _DIGITS.fullmatch(value):
        number = int(value)
    else:
        raise JobDocumentError(
            f"{field} must be an unsigned integer", details={"field": field, "value": repr(value)[:50]}
        )
    if not minimum <= number <= maximum:
        raise JobDocumentError(f"{field} must be in {minimum}..{maximum}", details={"field": field, "value": number})
    return number


def decode_base64(value: str, field: str) -> bytes:
    """Strict standard base64 (padding required); whitespace is refused."""
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise JobDocumentError(f"{field} is not valid base64", details={"field": field}) from None


def is_unresolved_placeholder(text: str) -> bool:
    """True if ``text`` still holds an AWS IoT substitution placeholder (``${aws:iot:...}``)."""
    return _PLACEHOLDER in text


def safe_relative_path(path: str, *, allow_absolute: bool = False) -> PurePosixPath:
    """A relative POSIX path for ``path`` that cannot leave the directory it is joined to.

    ``..`` components, empty names, NUL and control characters and backslashes are refused; an absolute
    path is refused unless ``allow_absolute``, in which case the leading ``/`` is stripped.
    """
    if not path or any(ord(ch) < 32 or ch in "\\\x7f" for ch in path):
        raise UnsafeFilePathError(
            "file path is empty or holds control characters or backslashes", details={"path": path[:200]}
        )
    pure = PurePosixPath(path)
    if pure.is_absolute():
        if not allow_absolute:
            raise UnsafeFilePathError("absolute file paths are refused", details={"path": path[:200]})
        pure = pure.relative_to("/")
    parts = pure.parts
    if not parts or any(part in ("..", ".") for part in path.split("/")):
        raise UnsafeFilePathError("file path must not hold '..' or '.' components", details={"path": path[:200]})
    return pure

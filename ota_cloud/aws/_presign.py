"""Resolution of ``${aws:iot:s3-presigned-url:<url>}`` placeholders when a job document is delivered.

AWS IoT Jobs replaces each placeholder with a presigned S3 URL at the moment a device fetches the
document. The stand-in does the same through a pluggable resolver: a callable that receives a
``PresignRequest`` and returns the URL to put in the document (the default returns the inner URL as is;
tests point it at a loopback HTTP server).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import attrs

__all__ = [
    "PLACEHOLDER_PATTERN",
    "PresignRequest",
    "PresignedUrlResolver",
    "identity_resolver",
    "resolve_placeholders",
]

PLACEHOLDER_PATTERN = re.compile(r"\$\{aws:iot:s3-presigned-url:([^}]{1,2048})\}")


@attrs.frozen
class PresignRequest:
    """One placeholder to resolve: the S3 URL inside it, for which thing and job, valid how long."""

    url: str
    thing_name: str
    job_id: str
    expires_in_sec: int
    now: float


PresignedUrlResolver = Callable[[PresignRequest], str]


def identity_resolver(request: PresignRequest) -> str:
    """The default resolver: the URL inside the placeholder, unchanged."""
    return request.url


def resolve_placeholders(
    document: str,
    resolver: PresignedUrlResolver,
    *,
    thing_name: str,
    job_id: str,
    expires_in_sec: int,
    now: float,
) -> str:
    """``document`` (JSON text) with every placeholder replaced by the resolver's URL, JSON-escaped."""

    def replace(match: re.Match[str]) -> str:
        url = resolver(PresignRequest(match.group(1), thing_name, job_id, expires_in_sec, now))
        return json.dumps(url)[1:-1]

    return PLACEHOLDER_PATTERN.sub(replace, document)

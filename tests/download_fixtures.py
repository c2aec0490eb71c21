"""Helpers shared by the download tests: requests, a SHA-256 verifier, the faulty HTTP server fixture."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from ota_cloud.http_faults import FaultyFileServer
from ota_core.errors import VerificationError
from ota_core.models import FileLocation, FileTarget, Integrity, LocationKind, ProgressEvent
from ota_core.protocols import BlockSink, DownloadRequest


class Sha256Verifier:
    """An IncrementalVerifier that hashes what it is fed and remembers the order it saw."""

    def __init__(self, expected: bytes) -> None:
        self._hash = hashlib.sha256()
        self._expected = expected
        self.fed = 0

    def update(self, data: bytes) -> None:
        self._hash.update(data)
        self.fed += len(data)

    def finish(self) -> None:
        if self._hash.digest() != self._expected:
            raise VerificationError("digest mismatch")


def make_request(
    data: bytes,
    sink: BlockSink,
    *,
    kind: LocationKind = LocationKind.HTTP,
    uri: str = "",
    file_id: int | None = None,
    job_id: str = "job-1",
    name: str = "firmware.bin",
    verifier: Sha256Verifier | None = None,
    events: list[ProgressEvent] | None = None,
) -> DownloadRequest:
    """A download request for ``data`` at ``uri``."""
    location = FileLocation(kind, uri, file_id=file_id)
    target = FileTarget(name, len(data), (location,), Integrity(digests={"sha256": hashlib.sha256(data).digest()}))
    return DownloadRequest(
        job_id=job_id,
        target=target,
        location=location,
        sink=sink,
        progress_key=f"download-{job_id}",
        verifier=verifier,
        on_progress=events.append if events is not None else None,
    )


def pattern(size: int, seed: int = 1) -> bytes:
    """Deterministic non-repeating-looking test content."""
    block = hashlib.sha256(seed.to_bytes(4, "big")).digest() * 2048
    return (block * (size // len(block) + 1))[:size]


@pytest.fixture
def faulty_server() -> Iterator[FaultyFileServer]:
    """A loopback HTTP server with presigned URLs and fault switches."""
    with FaultyFileServer() as server:
        yield server


def read(path: Path) -> bytes:
    """The bytes of a file."""
    return path.read_bytes()

"""The stream store of the AWS IoT stand-in: CreateStream, DescribeStream, UpdateStream, DeleteStream.

Plain Python operations with the request and response shapes of the AWS IoT control plane (camelCase
keys, as boto3 returns them), so that the stand-in's boto3-compatible front end can call them directly.
A stream holds 1..50 files, each with an id 0..255 and its bytes (in memory or a file on disk).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

__all__ = ["StreamFile", "StreamRecord", "StreamServiceError", "StreamStore"]

_STREAM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
_MAX_FILES = 50
_MAX_FILE_ID = 255


class StreamServiceError(Exception):
    """A control-plane error with the AWS error code (``ResourceNotFoundException`` ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@attrs.frozen
class StreamFile:
    """One file of a stream: its id and its bytes (or the path of a file holding them)."""

    file_id: int
    data: bytes | None = None
    path: Path | None = None

    @property
    def size(self) -> int:
        """The file's size in bytes."""
        if self.data is not None:
            return len(self.data)
        assert self.path is not None
        return self.path.stat().st_size

    def read(self, offset: int, length: int) -> bytes:
        """``length`` bytes from ``offset`` (shorter at the end of the file)."""
        if self.data is not None:
            return self.data[offset : offset + length]
        assert self.path is not None
        with self.path.open("rb") as handle:
            handle.seek(offset)
            return handle.read(length)


@attrs.frozen
class StreamRecord:
    """A stream as stored: id, version, description and files by id."""

    stream_id: str
    version: int
    description: str
    files: Mapping[int, StreamFile]
    role_arn: str = ""

    @property
    def arn(self) -> str:
        """A plausible ARN for the stream."""
        return f"arn:aws:iot:us-east-1:123456789012:stream/{self.stream_id}"


class StreamStore:
    """Thread-safe in-memory registry of streams."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streams: dict[str, StreamRecord] = {}

    def get(self, stream_id: str) -> StreamRecord | None:
        """The stream, or None."""
        with self._lock:
            return self._streams.get(stream_id)

    def create_stream(
        self,
        streamId: str,  # noqa: N803 - AWS parameter names
        files: Sequence[Mapping[str, Any]],
        description: str = "",
        roleArn: str = "",  # noqa: N803
    ) -> dict[str, Any]:
        """CreateStream. ``files``: ``[{"fileId": 0, "data": b"..."} | {"fileId": 0, "path": "..."}]``.

        (The AWS API takes S3 locations; the stand-in takes bytes or a local path instead.)
        """
        record = StreamRecord(streamId, 1, description, self._files(files), roleArn)
        self._check_id(streamId)
        with self._lock:
            if streamId in self._streams:
                raise StreamServiceError("ResourceAlreadyExistsException", f"stream {streamId} already exists")
            self._streams[streamId] = record
        return {"streamId": streamId, "streamArn": record.arn, "description": description, "streamVersion": 1}

    def update_stream(
        self,
        streamId: str,  # noqa: N803
        files: Sequence[Mapping[str, Any]] | None = None,
        description: str | None = None,
    ) -> dict[str, Any]:
        """UpdateStream: replace files and/or the description; the version goes up by one."""
        with self._lock:
            old = self._require(streamId)
            record = attrs.evolve(
                old,
                version=old.version + 1,
                description=old.description if description is None else description,
                files=old.files if files is None else self._files(files),
            )
            self._streams[streamId] = record
        return {
            "streamId": streamId,
            "streamArn": record.arn,
            "description": record.description,
            "streamVersion": record.version,
        }

    def describe_stream(self, streamId: str) -> dict[str, Any]:  # noqa: N803
        """DescribeStream: ``{"streamInfo": {...}}`` as boto3 returns it."""
        with self._lock:
            record = self._require(streamId)
        return {
            "streamInfo": {
                "streamId": record.stream_id,
                "streamArn": record.arn,
                "streamVersion": record.version,
                "description": record.description,
                "files": [{"fileId": f.file_id, "s3Location": {}} for f in record.files.values()],
                "roleArn": record.role_arn,
            }
        }

    def delete_stream(self, streamId: str) -> dict[str, Any]:  # noqa: N803
        """DeleteStream."""
        with self._lock:
            self._require(streamId)
            del self._streams[streamId]
        return {}

    def list_streams(self) -> dict[str, Any]:
        """ListStreams."""
        with self._lock:
            streams = list(self._streams.values())
        return {
            "streams": [
                {"streamId": s.stream_id, "streamArn": s.arn, "streamVersion": s.version, "description": s.description}
                for s in streams
            ]
        }

    def _require(self, stream_id: str) -> StreamRecord:
        record = self._streams.get(stream_id)
        if record is None:
            raise StreamServiceError("ResourceNotFoundException", f"stream {stream_id} does not exist")
        return record

    @staticmethod
    def _check_id(stream_id: str) -> None:
        if not _STREAM_ID.match(stream_id):
            raise StreamServiceError("InvalidRequestException", f"invalid stream id {stream_id!r}")

    @staticmethod
    def _files(files: Sequence[Mapping[str, Any]]) -> dict[int, StreamFile]:
        if not 1 <= len(files) <= _MAX_FILES:
            raise StreamServiceError("InvalidRequestException", f"a stream holds 1..{_MAX_FILES} files")
        result: dict[int, StreamFile] = {}
        for entry in files:
            file_id = entry.get("fileId")
            if not isinstance(file_id, int) or isinstance(file_id, bool) or not 0 <= file_id <= _MAX_FILE_ID:
                raise StreamServiceError("InvalidRequestException", f"fileId must be 0..{_MAX_FILE_ID}")
            if file_id in result:
                raise StreamServiceError("InvalidRequestException", f"fileId {file_id} given twice")
            data = entry.get("data")
            path = entry.get("path")
            if isinstance(data, bytes | bytearray):
                result[file_id] = StreamFile(file_id, data=bytes(data))
            elif isinstance(path, str | Path) and Path(path).is_file():
                result[file_id] = StreamFile(file_id, path=Path(path))
            else:
                raise StreamServiceError("InvalidRequestException", f"file {file_id} needs data bytes or a path")
        return result

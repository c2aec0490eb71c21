"""Where downloaded bytes go, and how the verifier sees them in file order.

``FileSink`` writes at absolute offsets into a file of a declared size and refuses anything outside it.
``InOrderFeeder`` passes bytes to an incremental verifier strictly in file order although blocks may
arrive in any order: it holds early blocks up to a small memory budget and reads the rest back from the
sink when the gap before them closes, so memory stays flat whatever the image size.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Protocol, runtime_checkable

from ota_core.errors import DownloadError
from ota_core.protocols import BlockSink, IncrementalVerifier
from ota_stream.errors import SinkBoundsError

__all__ = ["FileSink", "InOrderFeeder", "ReadableSink"]

_log = logging.getLogger(__name__)

_READ_CHUNK = 1024 * 1024


@runtime_checkable
class ReadableSink(BlockSink, Protocol):
    """A sink that can also read back what was written (needed to re-feed a verifier after a restart)."""

    def read(self, offset: int, length: int) -> bytes: ...


class FileSink:
    """A file of a fixed size written at offsets; ``flush`` makes the data durable (fsync)."""

    def __init__(self, path: str | os.PathLike[str], size: int) -> None:
        self.path = Path(path)
        self.size = size
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            self._file = os.fdopen(fd, "r+b", buffering=0)
            current = os.fstat(fd).st_size
            if current > size:
                self._file.truncate(size)
            elif current < size and hasattr(os, "posix_fallocate"):
                # Reserve the space up front: a full disk fails now, not half way, and later syncs
                # need not update the file's size.
                os.posix_fallocate(fd, 0, size)
        except OSError as exc:
            raise DownloadError(f"cannot open {self.path.name} for writing: {exc.strerror}") from exc

    def write_at(self, offset: int, data: bytes) -> None:
        """Write ``data`` at ``offset``; raises ``SinkBoundsError`` (and writes nothing) outside the file."""
        if offset < 0 or offset + len(data) > self.size:
            raise SinkBoundsError(
                f"write of {len(data)} bytes at {offset} falls outside a file of {self.size} bytes",
                details={"offset": offset, "length": len(data), "size": self.size},
            )
        try:
            written = os.pwrite(self._file.fileno(), data, offset)
            while written < len(data):
                written += os.pwrite(self._file.fileno(), data[written:], offset + written)
        except OSError as exc:
            raise DownloadError(f"write to {self.path.name} failed: {exc.strerror}") from exc

    def read(self, offset: int, length: int) -> bytes:
        """Read back ``length`` bytes at ``offset`` (short only at the end of what was written)."""
        if offset < 0 or length < 0 or offset + length > self.size:
            raise SinkBoundsError(f"read of {length} bytes at {offset} falls outside a file of {self.size} bytes")
        try:
            return os.pread(self._file.fileno(), length, offset)
        except OSError as exc:
            raise DownloadError(f"read from {self.path.name} failed: {exc.strerror}") from exc

    def flush(self) -> None:
        """fdatasync the file so that everything written so far survives a power cut."""
        try:
            os.fdatasync(self._file.fileno())
        except OSError as exc:
            raise DownloadError(f"fsync of {self.path.name} failed: {exc.strerror}") from exc

    def close(self) -> None:
        """Close the file."""
        self._file.close()

    def __enter__(self) -> FileSink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class InOrderFeeder:
    """Feeds a verifier every byte of a file in order, whatever order the pieces arrive in.

    Call :meth:`written` after each write to the sink. Pieces ahead of the next expected offset are kept
    in memory up to ``max_buffered`` bytes; beyond that only their position is remembered and the bytes
    are read back from ``reader`` when their turn comes.
    """

    def __init__(
        self,
        verifier: IncrementalVerifier | None,
        size: int,
        *,
        reader: ReadableSink | None = None,
        max_buffered: int = 4 * 1024 * 1024,
    ) -> None:
        self._verifier = verifier
        self._size = size
        self._reader = reader
        self._max_buffered = max_buffered
        self._next = 0
        self._held: dict[int, tuple[int, bytes | None]] = {}
        self._held_bytes = 0
        self.bytes_read_back = 0

    @property
    def fed(self) -> int:
        """How many bytes from the start of the file the verifier has seen."""
        return self._next

    def catch_up(self, prefix: int) -> None:
        """Feed the first ``prefix`` bytes, already in the sink, from the sink (after a restart)."""
        if prefix <= self._next:
            return
        if self._verifier is not None:
            if self._reader is None:
                raise DownloadError("cannot resume verification: the sink cannot read back what it holds")
            position = self._next
            while position < prefix:
                chunk = self._reader.read(position, min(_READ_CHUNK, prefix - position))
                if not chunk:
                    raise DownloadError(f"sink returned no data at offset {position} while resuming")
                self._verifier.update(chunk)
                self.bytes_read_back += len(chunk)
                position += len(chunk)
        self._next = prefix
        self._advance()

    def present(self, offset: int, length: int) -> None:
        """Note a piece that is already in the sink (from saved progress) without its bytes."""
        self._hold(offset, length, None)

    def written(self, offset: int, data: bytes) -> None:
        """A piece was just written to the sink at ``offset``."""
        if offset == self._next:
            if self._verifier is not None:
                self._verifier.update(data)
            self._next += len(data)
            self._advance()
        elif offset > self._next:
            keep = self._held_bytes + len(data) <= self._max_buffered or self._reader is None
            if not keep:
                _log.debug("holding the position of %d bytes at %d without the bytes", len(data), offset)
            self._hold(offset, len(data), data if keep else None)
        # A piece below the fed offset was already seen by the verifier: nothing to do.

    def _hold(self, offset: int, length: int, data: bytes | None) -> None:
        if offset < self._next or offset in self._held:
            return
        self._held[offset] = (length, data)
        if data is not None:
            self._held_bytes += length
        self._advance()

    def _advance(self) -> None:
        while self._next in self._held:
            length, data = self._held.pop(self._next)
            if data is not None:
                self._held_bytes -= length
            elif self._verifier is not None:
                if self._reader is None:
                    raise DownloadError("cannot feed the verifier: the sink cannot read back a held piece")
                data = self._reader.read(self._next, length)
                self.bytes_read_back += len(data)
            if self._verifier is not None and data is not None:
                self._verifier.update(data)
            self._next += length

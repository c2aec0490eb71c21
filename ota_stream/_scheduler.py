"""Sans-I/O request scheduler for one stream file.

It keeps a window of blocks requested (``requests_in_flight`` requests of up to ``blocks_per_request``
blocks each), re-requests the blocks of a request that saw no block for ``request_timeout`` seconds,
accepts blocks in any order, ignores duplicates, refuses blocks that do not fit the file, and gives up
with ``DownloadStalledError`` after ``max_requests_without_progress`` expired requests in a row. Time is
passed in; it never sleeps and owns no thread.
"""

from __future__ import annotations

import attrs

from ota_core.errors import ConfigurationError
from ota_stream._bitmap import BlockBitmap, block_count, block_length
from ota_stream._codec import MAX_BITMAP_BYTES, MAX_BLOCK_SIZE, DataBlock
from ota_stream.errors import BlockInvalidError, DownloadStalledError

__all__ = ["AcceptedBlock", "GetRequest", "StreamScheduler"]

# A request bitmap never spans more than this many blocks, which keeps requests small (128 bytes).
_MAX_BITMAP_SPAN = min(1024, MAX_BITMAP_BYTES * 8)


@attrs.frozen
class GetRequest:
    """One GetStream request to send: ``offset`` plus either a bitmap (relative, LSB first) or a count."""

    offset: int
    count: int
    bitmap: bytes | None
    blocks: tuple[int, ...]


@attrs.frozen
class AcceptedBlock:
    """A new block that fits the file: write ``data`` at byte ``offset``."""

    block_id: int
    offset: int
    data: bytes


class _Outstanding:
    """A request sent and not yet fully answered."""

    __slots__ = ("blocks", "deadline")

    def __init__(self, blocks: set[int], deadline: float) -> None:
        self.blocks = blocks
        self.deadline = deadline


class StreamScheduler:
    """Decides which blocks to request next and checks every block that arrives."""

    def __init__(
        self,
        *,
        file_id: int,
        file_size: int,
        block_size: int,
        blocks_per_request: int = 4,
        requests_in_flight: int = 2,
        request_timeout: float = 3.0,
        max_requests_without_progress: int = 16,
        use_bitmap: bool = True,
        bitmap: BlockBitmap | None = None,
    ) -> None:
        total = block_count(file_size, block_size)
        if blocks_per_request < 1 or blocks_per_request * block_size > MAX_BLOCK_SIZE:
            raise ConfigurationError(
                f"blocks_per_request must be 1..{MAX_BLOCK_SIZE // block_size} for {block_size}-byte blocks "
                "(the service delivers about 128 KiB per request)"
            )
        if requests_in_flight < 1 or request_timeout <= 0 or max_requests_without_progress < 1:
            raise ConfigurationError("requests in flight, request timeout and stall limit must be positive")
        if bitmap is not None and bitmap.total != total:
            raise ConfigurationError("the saved bitmap does not match the file's block count")
        self.file_id = file_id
        self.file_size = file_size
        self.block_size = block_size
        self._per_request = blocks_per_request
        self._in_flight = requests_in_flight
        self._timeout = request_timeout
        self._stall_limit = max_requests_without_progress
        self._use_bitmap = use_bitmap
        self.bitmap = bitmap if bitmap is not None else BlockBitmap(total)
        self._outstanding: list[_Outstanding] = []
        self._pending: dict[int, _Outstanding] = {}
        self._expired_in_a_row = 0
        self.requests_sent = 0
        self.requests_expired = 0
        self.duplicates = 0

    @property
    def complete(self) -> bool:
        """True once every block has arrived."""
        return self.bitmap.complete

    @property
    def bytes_received(self) -> int:
        """Bytes of the file covered by received blocks."""
        count = self.bitmap.received
        if count and (self.bitmap.total - 1) in self.bitmap:
            return (count - 1) * self.block_size + block_length(self.file_size, self.block_size, self.bitmap.total - 1)
        return count * self.block_size

    def next_deadline(self) -> float | None:
        """When the earliest outstanding request expires (None if nothing is outstanding)."""
        return min((entry.deadline for entry in self._outstanding), default=None)

    def release_all(self) -> None:
        """Forget every outstanding request (after a reconnect), so the next poll asks again at once."""
        self._outstanding.clear()
        self._pending.clear()

    def on_retryable_rejection(self, now: float) -> None:
        """A passing service error answered one of our requests: count it as a request without progress."""
        self.release_all()
        self._count_expiry()

    def poll(self, now: float) -> list[GetRequest]:
        """Expire overdue requests and return the requests to send now to fill the window."""
        for entry in [entry for entry in self._outstanding if entry.deadline <= now]:
            self._outstanding.remove(entry)
            for block in entry.blocks:
                self._pending.pop(block, None)
            self.requests_expired += 1
            self._count_expiry()
        requests: list[GetRequest] = []
        while len(self._outstanding) < self._in_flight and not self.complete:
            blocks = self._next_blocks()
            if not blocks:
                break
            entry = _Outstanding(set(blocks), now + self._timeout)
            self._outstanding.append(entry)
            for block in blocks:
                self._pending[block] = entry
            requests.append(self._request_for(blocks))
            self.requests_sent += 1
        return requests

    def on_data(self, block: DataBlock, now: float) -> AcceptedBlock | None:
        """Check a block: returned if new, None if a duplicate; ``BlockInvalidError`` if it does not fit."""
        if block.file_id != self.file_id:
            raise BlockInvalidError(
                f"block for file {block.file_id}, expected {self.file_id}",
                details={"file_id": block.file_id, "block_id": block.block_id},
            )
        if block.block_id >= self.bitmap.total:
            raise BlockInvalidError(
                f"block id {block.block_id} beyond the last block {self.bitmap.total - 1}",
                details={"block_id": block.block_id},
            )
        expected = block_length(self.file_size, self.block_size, block.block_id)
        if block.size != expected or len(block.payload) != expected:
            raise BlockInvalidError(
                f"block {block.block_id} has {len(block.payload)} bytes, expected {expected}",
                details={"block_id": block.block_id, "size": len(block.payload), "expected": expected},
            )
        entry = self._pending.pop(block.block_id, None)
        if entry is not None:
            entry.blocks.discard(block.block_id)
            entry.deadline = now + self._timeout
            if not entry.blocks:
                self._outstanding.remove(entry)
        if not self.bitmap.add(block.block_id):
            self.duplicates += 1
            return None
        self._expired_in_a_row = 0
        return AcceptedBlock(block.block_id, block.block_id * self.block_size, block.payload)

    def _count_expiry(self) -> None:
        self._expired_in_a_row += 1
        if self._expired_in_a_row >= self._stall_limit:
            raise DownloadStalledError(
                f"{self._expired_in_a_row} requests in a row brought no new block",
                details={"received_blocks": self.bitmap.received, "total_blocks": self.bitmap.total},
            )

    def _next_blocks(self) -> list[int]:
        """Up to ``blocks_per_request`` blocks neither received nor requested, from the lowest gap up."""
        blocks: list[int] = []
        candidate = self.bitmap.first_missing(0)
        first: int | None = None
        while candidate is not None and len(blocks) < self._per_request:
            if first is not None and candidate - first >= _MAX_BITMAP_SPAN:
                break
            if candidate in self._pending:
                if not self._use_bitmap and blocks:
                    break  # a count asks for consecutive blocks only
            else:
                if not self._use_bitmap and blocks and candidate != blocks[-1] + 1:
                    break
                blocks.append(candidate)
                if first is None:
                    first = candidate
            candidate = self.bitmap.first_missing(candidate + 1)
        return blocks

    def _request_for(self, blocks: list[int]) -> GetRequest:
        offset = blocks[0]
        if not self._use_bitmap:
            return GetRequest(offset, len(blocks), None, tuple(blocks))
        span = blocks[-1] - offset + 1
        bits = bytearray((span + 7) // 8)
        for block in blocks:
            relative = block - offset
            bits[relative >> 3] |= 1 << (relative & 7)
        return GetRequest(offset, len(blocks), bytes(bits), tuple(blocks))

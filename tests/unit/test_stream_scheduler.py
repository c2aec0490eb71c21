"""Unit tests of the sans-I/O stream scheduler: window, timeouts, duplicates, order, stall, bad blocks."""

from __future__ import annotations

import random

import pytest

from ota_core.errors import ConfigurationError
from ota_stream import BlockBitmap, DataBlock, StreamScheduler
from ota_stream.errors import BlockInvalidError, DownloadStalledError

BLOCK = 256


def make(size: int = BLOCK * 10 + 7, **kwargs: object) -> StreamScheduler:
    options: dict[str, object] = {"blocks_per_request": 2, "requests_in_flight": 2, "request_timeout": 1.0}
    options.update(kwargs)
    return StreamScheduler(file_id=3, file_size=size, block_size=BLOCK, **options)  # type: ignore[arg-type]


def block(scheduler: StreamScheduler, block_id: int, data: bytes | None = None, file_id: int = 3) -> DataBlock:
    if data is None:
        length = min(BLOCK, scheduler.file_size - block_id * BLOCK)
        data = bytes([block_id % 256]) * length
    return DataBlock(file_id, block_id, len(data), data)


def test_window_fills_and_refills() -> None:
    scheduler = make()
    requests = scheduler.poll(0.0)
    assert [(r.offset, r.count, r.blocks) for r in requests] == [(0, 2, (0, 1)), (2, 2, (2, 3))]
    assert requests[0].bitmap == b"\x03"
    assert scheduler.poll(0.1) == []
    assert scheduler.next_deadline() == 1.0
    assert scheduler.on_data(block(scheduler, 0), 0.2) is not None
    assert scheduler.poll(0.3) == []  # request 0 still waits for block 1
    scheduler.on_data(block(scheduler, 1), 0.4)
    assert [r.blocks for r in scheduler.poll(0.5)] == [(4, 5)]


def test_everything_in_any_order_with_duplicates_completes() -> None:
    scheduler = make(blocks_per_request=4, requests_in_flight=3)
    rng = random.Random(5)
    now = 0.0
    written: dict[int, bytes] = {}
    for _ in range(200):
        requests = scheduler.poll(now)
        wanted = [b for r in requests for b in r.blocks]
        rng.shuffle(wanted)
        for block_id in wanted + wanted[:2]:
            accepted = scheduler.on_data(block(scheduler, block_id), now)
            if accepted is not None:
                assert accepted.offset not in written
                written[accepted.offset] = accepted.data
        now += 0.1
        if scheduler.complete:
            break
    assert scheduler.complete
    assert sum(len(v) for v in written.values()) == scheduler.file_size
    assert scheduler.bytes_received == scheduler.file_size
    assert scheduler.duplicates > 0


def test_timeout_re_requests_missing_blocks_only() -> None:
    scheduler = make(requests_in_flight=1)
    first = scheduler.poll(0.0)
    assert first[0].blocks == (0, 1)
    scheduler.on_data(block(scheduler, 0), 0.5)
    assert scheduler.poll(1.2) == []  # deadline pushed to 1.5 by block 0
    again = scheduler.poll(1.6)
    assert again[0].blocks == (1, 2)
    assert scheduler.requests_expired == 1


def test_bitmap_skips_received_and_pending_blocks() -> None:
    saved = BlockBitmap(11)
    for block_id in (0, 2, 3):
        saved.add(block_id)
    scheduler = make(bitmap=saved, blocks_per_request=3, requests_in_flight=1)
    request = scheduler.poll(0.0)[0]
    assert request.offset == 1
    assert request.blocks == (1, 4, 5)
    assert request.bitmap == bytes([0b11001])


def test_json_mode_asks_for_consecutive_runs() -> None:
    saved = BlockBitmap(11)
    saved.add(2)
    scheduler = make(bitmap=saved, blocks_per_request=4, requests_in_flight=2, use_bitmap=False)
    requests = scheduler.poll(0.0)
    assert [(r.offset, r.count, r.bitmap) for r in requests] == [(0, 2, None), (3, 4, None)]


def test_json_mode_stops_at_pending_block() -> None:
    scheduler = make(blocks_per_request=2, requests_in_flight=1, use_bitmap=False)
    scheduler.poll(0.0)
    scheduler.on_data(block(scheduler, 0), 0.1)
    scheduler.release_all()
    assert scheduler.poll(0.2)[0].blocks == (1, 2)


def test_stall_gives_up_after_n_requests_without_progress() -> None:
    scheduler = make(requests_in_flight=1, max_requests_without_progress=3)
    now = 0.0
    with pytest.raises(DownloadStalledError) as info:
        for _ in range(10):
            scheduler.poll(now)
            now += 1.5
    assert info.value.retryable
    assert scheduler.requests_expired == 3


def test_retryable_rejection_counts_towards_stall() -> None:
    scheduler = make(max_requests_without_progress=2)
    scheduler.poll(0.0)
    scheduler.on_retryable_rejection(0.1)
    assert len(scheduler.poll(0.2)) == 2
    with pytest.raises(DownloadStalledError):
        scheduler.on_retryable_rejection(0.3)


def test_progress_resets_the_stall_counter() -> None:
    scheduler = make(requests_in_flight=1, max_requests_without_progress=2)
    scheduler.poll(0.0)
    scheduler.poll(1.1)  # one expiry
    scheduler.on_data(block(scheduler, 0), 1.2)
    scheduler.poll(5.0)  # expiry again, but counter was reset
    assert not scheduler.complete


@pytest.mark.parametrize(
    ("file_id", "block_id", "length"),
    [(4, 0, BLOCK), (3, 11, 7), (3, 0, BLOCK - 1), (3, 10, 8), (3, 10, 6)],
)
def test_blocks_that_do_not_fit_are_refused(file_id: int, block_id: int, length: int) -> None:
    scheduler = make()
    with pytest.raises(BlockInvalidError):
        scheduler.on_data(DataBlock(file_id, block_id, length, bytes(length)), 0.0)
    assert scheduler.bitmap.received == 0


def test_block_with_inconsistent_header_is_refused() -> None:
    scheduler = make()
    with pytest.raises(BlockInvalidError):
        scheduler.on_data(DataBlock(3, 0, BLOCK, bytes(10)), 0.0)


def test_late_block_after_expiry_is_still_accepted() -> None:
    scheduler = make(requests_in_flight=1)
    scheduler.poll(0.0)
    scheduler.poll(2.0)  # expired, re-requested
    assert scheduler.on_data(block(scheduler, 1), 2.1) is not None


def test_zero_size_file_is_complete() -> None:
    scheduler = StreamScheduler(file_id=0, file_size=0, block_size=BLOCK)
    assert scheduler.complete
    assert scheduler.poll(0.0) == []
    assert scheduler.bytes_received == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"blocks_per_request": 0},
        {"blocks_per_request": 513},
        {"requests_in_flight": 0},
        {"request_timeout": 0},
        {"max_requests_without_progress": 0},
        {"bitmap": BlockBitmap(3)},
    ],
)
def test_bad_configuration(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        make(**kwargs)  # type: ignore[arg-type]

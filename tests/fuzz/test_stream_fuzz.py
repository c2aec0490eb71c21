"""Property-based tests: stream decoders raise only typed errors; the scheduler survives any delivery."""

from __future__ import annotations

import contextlib

import cbor2
from hypothesis import given, settings
from hypothesis import strategies as st

from ota_core.errors import OtaError
from ota_stream import (
    BlockBitmap,
    DataBlock,
    Encoding,
    StreamScheduler,
    decode_data_block,
    decode_description,
    decode_rejection,
)

DECODERS = (decode_data_block, decode_rejection, decode_description)

cbor_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8) | st.binary(max_size=16),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=2), children, max_size=5),
    max_leaves=12,
)
maps_with_stream_keys = st.dictionaries(
    st.sampled_from(["f", "i", "l", "p", "c", "o", "m", "code", "s", "r", "z", "d"]), cbor_values, max_size=6
)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(list(Encoding)))
def test_random_bytes_give_typed_errors_only(payload: bytes, encoding: Encoding) -> None:
    for decode in DECODERS:
        with contextlib.suppress(OtaError):
            decode(encoding, payload)


@settings(max_examples=200, deadline=None)
@given(maps_with_stream_keys)
def test_structured_cbor_maps_give_typed_errors_only(fields: dict[str, object]) -> None:
    payload = cbor2.dumps(fields)
    for decode in DECODERS:
        with contextlib.suppress(OtaError):
            decode(Encoding.CBOR, payload)


@settings(max_examples=200, deadline=None)
@given(maps_with_stream_keys)
def test_structured_json_maps_give_typed_errors_only(fields: dict[str, object]) -> None:
    import json

    try:
        payload = json.dumps(fields, default=lambda value: value.hex()).encode()
    except ValueError:
        return
    for decode in DECODERS:
        with contextlib.suppress(OtaError):
            decode(Encoding.JSON, payload)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=100), st.text(max_size=40))
def test_saved_bitmap_text_gives_typed_errors_only(total: int, text: str) -> None:
    with contextlib.suppress(OtaError):
        BlockBitmap.from_text(total, text)


@settings(max_examples=100, deadline=None)
@given(
    size=st.integers(min_value=1, max_value=256 * 40),
    per_request=st.integers(min_value=1, max_value=6),
    in_flight=st.integers(min_value=1, max_value=4),
    use_bitmap=st.booleans(),
    fate=st.lists(st.sampled_from(["deliver", "drop", "duplicate", "reverse"]), min_size=1, max_size=30),
)
def test_scheduler_completes_under_drops_duplicates_and_reordering(
    size: int, per_request: int, in_flight: int, use_bitmap: bool, fate: list[str]
) -> None:
    content = bytes((i * 7) % 251 for i in range(size))
    scheduler = StreamScheduler(
        file_id=0,
        file_size=size,
        block_size=256,
        blocks_per_request=per_request,
        requests_in_flight=in_flight,
        request_timeout=1.0,
        max_requests_without_progress=1000,
        use_bitmap=use_bitmap,
    )
    image = bytearray(size)
    now = 0.0
    sent = 0
    for _ in range(2000):
        for request in scheduler.poll(now):
            action = (*fate, "deliver")[sent % (len(fate) + 1)]
            sent += 1
            blocks = list(request.blocks)
            if action == "drop":
                blocks = blocks[1:]
            elif action == "duplicate":
                blocks = blocks + blocks
            elif action == "reverse":
                blocks.reverse()
            for block_id in blocks:
                data = content[block_id * 256 : (block_id + 1) * 256]
                accepted = scheduler.on_data(DataBlock(0, block_id, len(data), data), now)
                if accepted is not None:
                    image[accepted.offset : accepted.offset + len(accepted.data)] = accepted.data
        if scheduler.complete:
            break
        now += 0.6
    assert scheduler.complete
    assert bytes(image) == content

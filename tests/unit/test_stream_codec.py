"""Unit tests of the MQTT stream codec against the reference byte vectors, plus bad input."""

from __future__ import annotations

import base64
import json

import cbor2
import pytest

from ota_core.errors import ConfigurationError, OtaError
from ota_stream import (
    Encoding,
    StreamTopics,
    decode_data_block,
    decode_description,
    decode_rejection,
    encode_describe_request,
    encode_get_request,
)
from ota_stream import errors as err

H = bytes.fromhex


def test_v1_freertos_cbor_request_with_bitmap_and_count() -> None:
    # {"c":"ThisIsAClientToken","f":1,"l":4096,"o":0,"b":h'AAAAAAAA',"n":4} in c,f,l,o,b,n order.
    got = encode_get_request(
        Encoding.CBOR,
        file_id=1,
        block_size=4096,
        offset=0,
        count=4,
        bitmap=H("aaaaaaaa"),
        client_token="ThisIsAClientToken",
    )
    assert got == H(
        "a661637254686973497341436c69656e74546f6b656e616601616c191000616f0061624 4aaaaaaaa616e04".replace(" ", "")
    )


@pytest.mark.parametrize(
    ("offset", "bitmap", "expected"),
    [
        (0, "ffffff7f", "a5616363726479616600616c190800616f00616244ffffff7f"),
        (88, "01000000", "a5616363726479616600616c190800616f1858616244" + "01000000"),
    ],
)
def test_v2_v3_rustot_windowed_requests(offset: int, bitmap: str, expected: str) -> None:
    got = encode_get_request(
        Encoding.CBOR, file_id=0, block_size=2048, offset=offset, bitmap=H(bitmap), client_token="rdy"
    )
    assert got == H(expected)


def test_v4_rustot_large_stream_request() -> None:
    got = encode_get_request(
        Encoding.CBOR, file_id=0, block_size=512, offset=352, bitmap=H("07000000"), client_token="rdy"
    )
    assert got == H("a5616363726479616600616c190200616f19016061624407000000")


def test_v5_streams_lib_tiny_block_is_refused_and_v6_matches() -> None:
    # V5 asks for 3-byte blocks, which the service refuses (256..131072): we never build it.
    with pytest.raises(ConfigurationError):
        encode_get_request(
            Encoding.CBOR, file_id=4, block_size=3, offset=2, bitmap=b"MQ==", count=1, client_token="rdy"
        )
    got = encode_get_request(
        Encoding.CBOR, file_id=0, block_size=4096, offset=0, bitmap=b"MQ==", count=1, client_token="rdy"
    )
    assert got == H("a6616363726479616600616c191000616f006162444d513d3d616e01")


def test_v7_aws_doc_bitmap_example_decodes_equal() -> None:
    ours = encode_get_request(
        Encoding.CBOR,
        file_id=1,
        block_size=256,
        offset=20,
        count=32,
        bitmap=H("130080"),
        client_token="1",
        stream_version=1,
    )
    reference = H("a76163613161730161 6c19010061660161 6f14616e18206162 43130080".replace(" ", ""))
    assert cbor2.loads(ours) == cbor2.loads(reference)


def test_json_request_uses_count_and_hex_bitmap() -> None:
    got = json.loads(encode_get_request(Encoding.JSON, file_id=4, block_size=256, offset=2, count=1, stream_version=1))
    assert got == {"s": 1, "f": 4, "l": 256, "o": 2, "n": 1}
    got = json.loads(encode_get_request(Encoding.JSON, file_id=1, block_size=256, offset=20, bitmap=H("130080")))
    assert got["b"] == "0x130080"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"file_id": 256, "block_size": 1024, "count": 1},
        {"file_id": 0, "block_size": 255, "count": 1},
        {"file_id": 0, "block_size": 131073, "count": 1},
        {"file_id": 0, "block_size": 1024, "offset": 98305, "count": 1},
        {"file_id": 0, "block_size": 1024, "count": 98305},
        {"file_id": 0, "block_size": 1024, "bitmap": b""},
        {"file_id": 0, "block_size": 1024, "bitmap": bytes(12288)},
        {"file_id": 0, "block_size": 1024, "count": 1, "client_token": "x" * 65},
        {"file_id": 0, "block_size": 1024, "count": 1, "stream_version": 65536},
        {"file_id": 0, "block_size": 1024},
    ],
)
def test_requests_the_service_would_refuse_are_not_built(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        encode_get_request(Encoding.CBOR, **kwargs)  # type: ignore[arg-type]


def test_describe_request() -> None:
    assert encode_describe_request(Encoding.JSON) == b"{}"
    assert cbor2.loads(encode_describe_request(Encoding.CBOR, "tok")) == {"c": "tok"}
    with pytest.raises(ConfigurationError):
        encode_describe_request(Encoding.CBOR, "é" * 33)


def test_v8_real_service_response_indefinite_map() -> None:
    payload = bytearray(1024)
    payload[:10] = H("8d3e1cf650c102000002")
    message = H("bf616600616900616c19040061705904 00".replace(" ", "")) + bytes(payload) + H("ff")
    block = decode_data_block(Encoding.CBOR, message)
    assert (block.file_id, block.block_id, block.size, block.client_token) == (0, 0, 1024, None)
    assert block.payload == bytes(payload)


def test_v9_definite_map_block() -> None:
    block = decode_data_block(Encoding.CBOR, H("a461660061690561 6c0461704474657374".replace(" ", "")))
    assert (block.file_id, block.block_id, block.size, block.payload) == (0, 5, 4, b"test")


def test_json_block_with_numeric_strings() -> None:
    block = decode_data_block(Encoding.JSON, b'{"f": "12", "i": "1", "l": "4", "p": "dGVzdA==", "c": "t"}')
    assert (block.file_id, block.block_id, block.size, block.payload, block.client_token) == (
        12,
        1,
        4,
        b"test",
        "t",
    )


@pytest.mark.parametrize(
    "message",
    [
        b'{"f": "file", "i": "1", "l": "4", "p": "dGVzdA=="}',
        b'{"f": 1, "i": "block", "l": "4", "p": "dGVzdA=="}',
        b'{"f": 1, "i": 1, "l": "5147483647", "p": "dGVzdA=="}',
        b'{"f": 1, "i": 1, "l": "2147483649", "p": "dGVzdA=="}',
        b'{"i": 1, "l": 4, "p": "dGVzdA=="}',
        b'{"f": 1, "l": 4, "p": "dGVzdA=="}',
        b'{"f": 1, "i": 1, "p": "dGVzdA=="}',
        b'{"f": 1, "i": 1, "l": 4}',
        b'{"wrongKey": 1}',
        b'{"f": 1, "i": 1, "l": 4, "p": "notEncoded"}',
        b'{"f": 1, "i": 1, "l": 5, "p": "dGVzdA=="}',
        b'{"f": 1, "i": 1, "l": 4, "p": 7}',
        b'{"f": true, "i": 1, "l": 4, "p": "dGVzdA=="}',
        b'{"f": 300, "i": 1, "l": 4, "p": "dGVzdA=="}',
        b"[1, 2]",
        b"not json",
        b"\xff\xfe",
    ],
)
def test_bad_json_blocks(message: bytes) -> None:
    with pytest.raises(err.StreamMessageError):
        decode_data_block(Encoding.JSON, message)


@pytest.mark.parametrize(
    "message",
    [
        H("8101"),  # a top-level array
        cbor2.dumps({"f": "corrupt", "i": 0, "l": 4, "p": b"test"}),
        cbor2.dumps({"f": 0, "i": 0, "l": 4, "p": "test"}),
        cbor2.dumps({"f": 0, "i": -1, "l": 4, "p": b"test"}),
        H("a4616600"),  # truncated
        b"",
        b"\x00" * (300 * 1024),
    ],
)
def test_bad_cbor_blocks(message: bytes) -> None:
    with pytest.raises(err.StreamMessageError):
        decode_data_block(Encoding.CBOR, message)


def test_rejection_with_both_key_styles_json() -> None:
    payload = (
        b'{"clientToken":"rdy","c":"rdy","code":"InvalidRequest","o":"InvalidRequest",'
        b'"message":"The data requested is out of the range of data available.",'
        b'"m":"The data requested is out of the range of data available."}'
    )
    rejection = decode_rejection(Encoding.JSON, payload)
    assert rejection.service_code == "InvalidRequest"
    assert rejection.client_token == "rdy"
    error = rejection.to_error()
    assert isinstance(error, err.StreamInvalidRequestError)
    assert not error.retryable
    assert "out of the range" in str(error)


def test_rejection_cbor_indefinite_map_both_styles() -> None:
    payload = (
        b"\xbf\x64code\x6bInvalidCbor\x61o\x6bInvalidCbor\x67message\x74Invalid CBOR message"
        b"\x61m\x74Invalid CBOR message\xff"
    )
    rejection = decode_rejection(Encoding.CBOR, payload)
    assert (rejection.service_code, rejection.message) == ("InvalidCbor", "Invalid CBOR message")
    assert isinstance(rejection.to_error(), err.StreamInvalidCborError)


def test_rejection_long_names_only() -> None:
    rejection = decode_rejection(Encoding.JSON, b'{"code":"InternalError","message":"m"}')
    assert rejection.service_code == "InternalError"


@pytest.mark.parametrize(
    ("code", "cls", "retryable"),
    [
        ("InvalidTopic", err.StreamInvalidTopicError, False),
        ("InvalidJson", err.StreamInvalidJsonError, False),
        ("InvalidCbor", err.StreamInvalidCborError, False),
        ("InvalidRequest", err.StreamInvalidRequestError, False),
        ("Unauthorized", err.StreamUnauthorizedError, False),
        ("BlockSizeOutOfBounds", err.StreamBlockSizeError, False),
        ("OffsetOutOfBounds", err.StreamOffsetError, False),
        ("BlockCountLimitExceeded", err.StreamBlockCountLimitError, False),
        ("BlockBitmapLimitExceeded", err.StreamBitmapLimitError, False),
        ("ResourceNotFound", err.StreamResourceNotFoundError, False),
        ("VersionMismatch", err.StreamVersionMismatchError, True),
        ("ETagMismatch", err.StreamEtagMismatchError, True),
        ("InternalError", err.StreamInternalError, True),
        ("SomethingNew", err.StreamRejectedError, False),
    ],
)
def test_every_service_code_maps_to_a_typed_error(
    code: str, cls: type[err.StreamRejectedError], retryable: bool
) -> None:
    error = err.rejection_error(code, "msg", "tok")
    assert type(error) is cls
    assert error.retryable is retryable
    assert error.service_code == code
    assert error.details["client_token"] == "tok"
    assert isinstance(error, OtaError)


@pytest.mark.parametrize("payload", [b'{"m":"no code"}', b"[]", b'{"o": 5}'])
def test_bad_rejections(payload: bytes) -> None:
    with pytest.raises(err.StreamMessageError):
        decode_rejection(Encoding.JSON, payload)


def test_description() -> None:
    payload = b'{"c":"t","s":3,"d":"fw","r":[{"f":0,"z":131072},{"f":1,"z":51200}]}'
    description = decode_description(Encoding.JSON, payload)
    assert description.version == 3
    assert description.file_sizes == {0: 131072, 1: 51200}
    assert description.description == "fw"
    cbor = decode_description(Encoding.CBOR, cbor2.dumps({"r": [{"f": 2, "z": 5}]}))
    assert cbor.version is None
    assert cbor.file_sizes == {2: 5}


@pytest.mark.parametrize(
    "payload",
    [b'{"r": 5}', b'{"r": [5]}', b'{"r": [{"f": 0}]}', b'{"s": "x"}', b'{"r": [{"f": 0, "z": -1}]}'],
)
def test_bad_descriptions(payload: bytes) -> None:
    with pytest.raises(err.StreamMessageError):
        decode_description(Encoding.JSON, payload)


def test_topics() -> None:
    topics = StreamTopics("thingname", "stream-name", Encoding.JSON)
    assert topics.data == "$aws/things/thingname/streams/stream-name/data/json"
    assert topics.get == "$aws/things/thingname/streams/stream-name/get/json"
    cbor = StreamTopics("thingname", "stream-name")
    assert cbor.data.endswith("/data/cbor")
    assert cbor.describe.endswith("/describe/cbor")
    assert cbor.description.endswith("/description/cbor")
    assert cbor.rejected.endswith("/rejected/cbor")


def test_base64_roundtrip_json_block() -> None:
    data = bytes(range(256)) * 4
    message = json.dumps({"f": 0, "i": 3, "l": len(data), "p": base64.b64encode(data).decode()}).encode()
    assert decode_data_block(Encoding.JSON, message).payload == data

"""Unit tests of the stream store (control plane) of the AWS stand-in."""

from __future__ import annotations

from pathlib import Path

import pytest

from ota_cloud.aws_streams import StreamServiceError, StreamStore


def test_create_describe_update_delete(tmp_path: Path) -> None:
    store = StreamStore()
    on_disk = tmp_path / "f.bin"
    on_disk.write_bytes(b"abcdef")
    created = store.create_stream("s-1", [{"fileId": 0, "data": b"xyz"}, {"fileId": 5, "path": str(on_disk)}], "fw")
    assert created["streamVersion"] == 1
    assert created["streamArn"].endswith("stream/s-1")
    info = store.describe_stream("s-1")["streamInfo"]
    assert [f["fileId"] for f in info["files"]] == [0, 5]
    record = store.get("s-1")
    assert record is not None
    assert record.files[5].size == 6
    assert record.files[5].read(2, 10) == b"cdef"
    assert record.files[0].read(1, 1) == b"y"
    updated = store.update_stream("s-1", description="new")
    assert updated["streamVersion"] == 2
    assert store.list_streams()["streams"][0]["description"] == "new"
    assert store.delete_stream("s-1") == {}
    assert store.get("s-1") is None


@pytest.mark.parametrize(
    ("stream_id", "files", "code"),
    [
        ("bad id!", [{"fileId": 0, "data": b"x"}], "InvalidRequestException"),
        ("s", [], "InvalidRequestException"),
        ("s", [{"fileId": 256, "data": b"x"}], "InvalidRequestException"),
        ("s", [{"fileId": True, "data": b"x"}], "InvalidRequestException"),
        ("s", [{"fileId": 0, "data": b"x"}, {"fileId": 0, "data": b"y"}], "InvalidRequestException"),
        ("s", [{"fileId": 0}], "InvalidRequestException"),
        ("s", [{"fileId": 0, "data": b"x"}] * 51, "InvalidRequestException"),
    ],
)
def test_create_refuses_bad_input(stream_id: str, files: list[dict[str, object]], code: str) -> None:
    with pytest.raises(StreamServiceError) as info:
        StreamStore().create_stream(stream_id, files)
    assert info.value.code == code


def test_duplicates_and_missing() -> None:
    store = StreamStore()
    store.create_stream("s", [{"fileId": 0, "data": b"x"}])
    with pytest.raises(StreamServiceError) as info:
        store.create_stream("s", [{"fileId": 0, "data": b"x"}])
    assert info.value.code == "ResourceAlreadyExistsException"
    for operation in (store.describe_stream, store.delete_stream, store.update_stream):
        with pytest.raises(StreamServiceError) as missing:
            operation("nope")
        assert missing.value.code == "ResourceNotFoundException"

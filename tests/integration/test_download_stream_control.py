"""The stream operations on the stand-in's control plane, driven with a real boto3 client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from ota_cloud.aws import ControlPlaneServer
from ota_cloud.aws_streams import StreamStore, register_stream_operations


@pytest.fixture
def iot(tmp_path: Path) -> Iterator[tuple[Any, StreamStore]]:
    (tmp_path / "big").write_bytes(b"x" * 1000)
    objects: dict[tuple[str, str], bytes | Path] = {
        ("bucket", "fw.bin"): b"firmware",
        ("bucket", "big.bin"): tmp_path / "big",
    }
    store = StreamStore()
    server = ControlPlaneServer()
    register_stream_operations(server, store, lambda bucket, key, version: objects.get((bucket, key)))
    server.start()
    client = boto3.client(
        "iot",
        endpoint_url=server.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    try:
        yield client, store
    finally:
        client.close()
        server.close()


ROLE = "arn:aws:iam::123456789012:role/ota-streams"


def location(key: str) -> dict[str, str]:
    return {"bucket": "bucket", "key": key}


def test_create_describe_update_list_delete(iot: tuple[Any, StreamStore]) -> None:
    client, store = iot
    created = client.create_stream(
        streamId="AFR_OTA-1", description="fw", files=[{"fileId": 0, "s3Location": location("fw.bin")}], roleArn=ROLE
    )
    assert created["streamVersion"] == 1
    record = store.get("AFR_OTA-1")
    assert record is not None and record.files[0].read(0, 100) == b"firmware"
    info = client.describe_stream(streamId="AFR_OTA-1")["streamInfo"]
    assert (info["streamVersion"], info["description"], info["files"][0]["fileId"]) == (1, "fw", 0)
    updated = client.update_stream(streamId="AFR_OTA-1", files=[{"fileId": 1, "s3Location": location("big.bin")}])
    assert updated["streamVersion"] == 2
    record = store.get("AFR_OTA-1")
    assert record is not None and record.files[1].size == 1000
    assert [s["streamId"] for s in client.list_streams()["streams"]] == ["AFR_OTA-1"]
    client.delete_stream(streamId="AFR_OTA-1")
    assert store.get("AFR_OTA-1") is None


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda c: c.describe_stream(streamId="nope"), "ResourceNotFoundException"),
        (lambda c: c.delete_stream(streamId="nope"), "ResourceNotFoundException"),
        (
            lambda c: c.create_stream(
                streamId="s", roleArn=ROLE, files=[{"fileId": 0, "s3Location": location("missing")}]
            ),
            "InvalidRequestException",
        ),
        (
            lambda c: c.create_stream(
                streamId="s", roleArn=ROLE, files=[{"fileId": 300, "s3Location": location("fw.bin")}]
            ),
            "InvalidRequestException",
        ),
    ],
)
def test_errors_reach_boto3_as_client_errors(iot: tuple[Any, StreamStore], call: Any, error: str) -> None:
    client, _store = iot
    with pytest.raises(ClientError) as info:
        call(client)
    assert info.value.response["Error"]["Code"] == error


def test_duplicate_stream(iot: tuple[Any, StreamStore]) -> None:
    client, _store = iot
    files = [{"fileId": 0, "s3Location": location("fw.bin")}]
    client.create_stream(streamId="s", roleArn=ROLE, files=files)
    with pytest.raises(ClientError) as info:
        client.create_stream(streamId="s", roleArn=ROLE, files=files)
    assert info.value.response["Error"]["Code"] == "ResourceAlreadyExistsException"

"""CreateStream, DescribeStream, UpdateStream, DeleteStream and ListStreams on the stand-in's
boto3-compatible control plane (``ota_cloud.aws.ControlPlaneServer``).

The AWS API names each file by an S3 location; the stand-in has no S3, so ``resolve_s3(bucket, key,
version)`` turns a location into the file's bytes or a local path (or None: the request is refused).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ota_cloud.aws import ControlPlaneServer, OperationRequest, ServiceError
from ota_cloud.aws_streams._store import StreamServiceError, StreamStore

__all__ = ["S3Resolver", "register_stream_operations"]

S3Resolver = Callable[[str, str, str | None], "bytes | Path | None"]

_STATUS = {"ResourceNotFoundException": 404, "ResourceAlreadyExistsException": 409}


def register_stream_operations(server: ControlPlaneServer, store: StreamStore, resolve_s3: S3Resolver) -> None:
    """Add the stream operations to ``server``, backed by ``store``."""

    def files(body: Mapping[str, Any]) -> list[dict[str, Any]] | None:
        raw = body.get("files")
        if raw is None:
            return None
        if not isinstance(raw, list):
            raise ServiceError.invalid("files must be a list")
        result: list[dict[str, Any]] = []
        for entry in raw:
            location = entry.get("s3Location") if isinstance(entry, Mapping) else None
            if not isinstance(location, Mapping) or not location.get("bucket") or not location.get("key"):
                raise ServiceError.invalid("every file needs fileId and s3Location {bucket, key}")
            content = resolve_s3(str(location["bucket"]), str(location["key"]), location.get("version"))
            if content is None:
                raise ServiceError.invalid(f"s3://{location['bucket']}/{location['key']} does not exist")
            key = "data" if isinstance(content, bytes) else "path"
            result.append({"fileId": entry.get("fileId"), key: content})
        return result

    def call(operation: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        try:
            return operation()
        except StreamServiceError as exc:
            raise ServiceError(exc.code, exc.message, status=_STATUS.get(exc.code, 400)) from exc

    def create(request: OperationRequest) -> dict[str, Any]:
        stream_id = request.path_params["streamId"]
        given = files(request.body)
        return call(
            lambda: store.create_stream(
                stream_id, given or [], str(request.body.get("description", "")), str(request.body.get("roleArn", ""))
            )
        )

    def update(request: OperationRequest) -> dict[str, Any]:
        stream_id = request.path_params["streamId"]
        given = files(request.body)
        description = request.body.get("description")
        return call(lambda: store.update_stream(stream_id, given, None if description is None else str(description)))

    def describe(request: OperationRequest) -> dict[str, Any]:
        return call(lambda: store.describe_stream(request.path_params["streamId"]))

    def delete(request: OperationRequest) -> dict[str, Any]:
        return call(lambda: store.delete_stream(request.path_params["streamId"]))

    def list_all(_request: OperationRequest) -> dict[str, Any]:
        return store.list_streams()

    server.register_operation("CreateStream", "POST", "/streams/{streamId}", create)
    server.register_operation("UpdateStream", "PUT", "/streams/{streamId}", update)
    server.register_operation("DescribeStream", "GET", "/streams/{streamId}", describe)
    server.register_operation("DeleteStream", "DELETE", "/streams/{streamId}", delete)
    server.register_operation("ListStreams", "GET", "/streams", list_all)

"""The AWS IoT MQTT file-stream service stand-in: a stream store (control plane) and its MQTT data plane."""

from ota_cloud.aws_streams._control import S3Resolver, register_stream_operations
from ota_cloud.aws_streams._data_plane import StreamDataPlane, StreamFaults
from ota_cloud.aws_streams._store import StreamFile, StreamRecord, StreamServiceError, StreamStore

__all__ = [
    "S3Resolver",
    "StreamDataPlane",
    "StreamFaults",
    "StreamFile",
    "StreamRecord",
    "StreamServiceError",
    "StreamStore",
    "register_stream_operations",
]

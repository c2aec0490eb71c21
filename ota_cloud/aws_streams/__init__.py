"""The AWS IoT MQTT file-stream service stand-in: a stream store (control plane) and its MQTT data plane."""

from ota_cloud.aws_streams._data_plane import StreamDataPlane, StreamFaults
from ota_cloud.aws_streams._store import StreamFile, StreamRecord, StreamServiceError, StreamStore

__all__ = ["StreamDataPlane", "StreamFaults", "StreamFile", "StreamRecord", "StreamServiceError", "StreamStore"]

"""ota_cloud: local stand-ins of the clouds, for tests, demos and fleet simulation.

The AWS IoT Jobs and MQTT file-stream services, Azure IoT Hub twins and the Device Update service side,
a managed mosquitto broker, a loopback HTTP file server with Range support and a local PKI. Written from
the protocol descriptions, independently of the device-side packages.
"""

from ota_cloud.aws import AwsIotStandIn
from ota_cloud.broker import (
    BrokerStartError,
    MosquittoBroker,
    MosquittoNotInstalledError,
    TlsListener,
    free_port,
)
from ota_cloud.file_server import ByteRange, FileEntry, RangeFileServer, parse_range_header
from ota_cloud.pki import CertificateFiles, LocalPki

__all__ = [
    "AwsIotStandIn",
    "BrokerStartError",
    "ByteRange",
    "CertificateFiles",
    "FileEntry",
    "LocalPki",
    "MosquittoBroker",
    "MosquittoNotInstalledError",
    "RangeFileServer",
    "TlsListener",
    "free_port",
    "parse_range_header",
]

# Download side: the MQTT stream service stand-in and the fault-injecting presigned file server.
from ota_cloud.aws_streams import StreamDataPlane, StreamFaults, StreamServiceError, StreamStore

# --- Azure stand-in (ota_cloud.azure) -------------------------------------------------------------
from ota_cloud.azure import AzureStandIn, DeviceUpdateService, IotHubStandIn, MxchipRollout
from ota_cloud.http_faults import FaultyFileServer, HttpFaults

__all__ += [
    "FaultyFileServer",
    "HttpFaults",
    "StreamDataPlane",
    "StreamFaults",
    "StreamServiceError",
    "StreamStore",
]
__all__ += ["AzureStandIn", "DeviceUpdateService", "IotHubStandIn", "MxchipRollout"]

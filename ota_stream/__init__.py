"""ota_stream: Download.

AWS IoT MQTT file streams (CBOR and JSON) and HTTP(S) range downloads, with block bitmaps and progress
persisted in the state store so that a download resumes after a power cut or a dropped link.
"""

from ota_stream._backoff import Backoff
from ota_stream._bitmap import BlockBitmap, block_count, block_length
from ota_stream._codec import (
    DataBlock,
    Encoding,
    StreamDescription,
    StreamRejection,
    StreamTopics,
    decode_data_block,
    decode_description,
    decode_rejection,
    encode_describe_request,
    encode_get_request,
)
from ota_stream._progress import DownloadIdentity, ProgressMeter, ResumeStore
from ota_stream._scheduler import AcceptedBlock, GetRequest, StreamScheduler
from ota_stream.http import DownloadStats, HttpDownloadConfig, HttpRangeDownloader, UrlRefresher
from ota_stream.mqtt import MqttStreamConfig, MqttStreamDownloader, StreamStats
from ota_stream.sinks import FileSink, InOrderFeeder, ReadableSink

__all__ = [
    "AcceptedBlock",
    "Backoff",
    "BlockBitmap",
    "DataBlock",
    "DownloadIdentity",
    "DownloadStats",
    "Encoding",
    "FileSink",
    "GetRequest",
    "HttpDownloadConfig",
    "HttpRangeDownloader",
    "InOrderFeeder",
    "MqttStreamConfig",
    "MqttStreamDownloader",
    "ProgressMeter",
    "ReadableSink",
    "ResumeStore",
    "StreamDescription",
    "StreamRejection",
    "StreamScheduler",
    "StreamStats",
    "StreamTopics",
    "UrlRefresher",
    "block_count",
    "block_length",
    "decode_data_block",
    "decode_description",
    "decode_rejection",
    "encode_describe_request",
    "encode_get_request",
]

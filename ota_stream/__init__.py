"""ota_stream: Download.

AWS IoT MQTT file streams (CBOR and JSON) and HTTP(S) range downloads, with block bitmaps and progress
persisted in the state store so that a download resumes after a power cut or a dropped link.
"""

__all__: list[str] = []

"""Child process for the SIGKILL resume test: downloads one file (HTTP or MQTT stream), resuming from the
state store, then verifies it. Exit 0: complete and verified; 3: verification failed."""

from __future__ import annotations

import sys
from pathlib import Path

from ota_core.errors import VerificationError
from ota_core.models import LocationKind
from ota_core.mqtt import MqttConnection, MqttSettings
from ota_core.state_store import FileStateStore
from ota_stream import FileSink, HttpDownloadConfig, HttpRangeDownloader, MqttStreamConfig, MqttStreamDownloader
from tests.download_fixtures import Sha256Verifier, make_request


def main() -> int:
    """argv: mode (http|mqtt), url (file URL or broker URL), state dir, image path, size, sha256 hex."""
    mode, url, state_dir, image, size_text, digest = sys.argv[1:7]
    size = int(size_text)
    store = FileStateStore(state_dir)
    verifier = Sha256Verifier(bytes.fromhex(digest))
    placeholder = bytes(size)  # only its length matters to make_request; the digest is set below
    with FileSink(Path(image), size) as sink:
        if mode == "http":
            request = make_request(placeholder, sink, uri=url, verifier=verifier)
            downloader = HttpRangeDownloader(
                store,
                HttpDownloadConfig(
                    allow_insecure_http=True,
                    save_interval_bytes=128 * 1024,
                    save_interval_seconds=0.1,
                    read_timeout=5.0,
                ),
            )
            downloader.download(request)
        else:
            request = make_request(
                placeholder, sink, kind=LocationKind.MQTT_STREAM, uri="AFR_OTA-kill", file_id=0, verifier=verifier
            )
            with MqttConnection(MqttSettings(broker_url=url, client_id="kill-device", connect_timeout=5.0)) as conn:
                config = MqttStreamConfig(
                    block_size=4096,
                    blocks_per_request=2,
                    requests_in_flight=1,
                    request_timeout=1.0,
                    save_interval_seconds=0.1,
                )
                MqttStreamDownloader(conn, "dev1", store, config).download(request)
    try:
        verifier.finish()
    except VerificationError:
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())

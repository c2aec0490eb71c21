"""The whole Azure stand-in in one object: hub twins, Device Update, MXChip rollout and the admin API."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ota_cloud.azure._admin_api import AdminApi
from ota_cloud.azure._adu_service import DeviceUpdateService
from ota_cloud.azure._hub import DEFAULT_HOSTNAME, IotHubStandIn
from ota_cloud.azure._mxchip_rollout import MxchipRollout
from ota_cloud.azure._signing import SigningKeys
from ota_cloud.file_server import RangeFileServer

__all__ = ["AzureStandIn"]


class AzureStandIn:
    """Starts the hub responder on ``broker_url``, a file server, Device Update and the admin API.

    State (twins, imported updates, deployments, keys, files) lives in ``state_dir`` and survives a
    restart. ``topic_prefix=""`` means one device per broker with the hub's exact topics.
    """

    def __init__(self, broker_url: str, state_dir: str | Path, *, hostname: str = DEFAULT_HOSTNAME,
                 topic_prefix: str = "{device_id}/", admin_port: int | None = 0, file_port: int = 0,
                 key_size: int = 3072, keys: SigningKeys | None = None,
                 mqtt_options: Mapping[str, Any] | None = None) -> None:
        self.state_dir = Path(state_dir)
        self.hub = IotHubStandIn(broker_url, hostname=hostname, state_dir=self.state_dir,
                                 topic_prefix=topic_prefix, mqtt_options=mqtt_options)
        self.files = RangeFileServer(port=file_port)
        self.adu = DeviceUpdateService(self.hub, self.files, self.state_dir, keys=keys, key_size=key_size)
        self.mxchip = MxchipRollout(self.hub)
        self.admin = AdminApi(self, port=admin_port) if admin_port is not None else None

    def start(self) -> None:
        """Connect to the broker, serve files and the admin API."""
        self.files.start()
        self.hub.start()
        if self.admin is not None:
            self.admin.start()

    def close(self) -> None:
        """Stop everything."""
        if self.admin is not None:
            self.admin.close()
        self.hub.close()
        self.files.stop()

    def __enter__(self) -> AzureStandIn:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

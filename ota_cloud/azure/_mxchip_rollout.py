"""Operator view of an MXChip-style firmware rollout on the stand-in hub.

Sets ``properties.desired.firmware`` on one device or many (what an IoT Hub automatic device
configuration does) and counts devices by reported ``firmware.fwUpdateStatus``, the five metrics of the
DevKit tutorial (Current, Downloading, Verifying, Applying, Error), matched case-insensitively so that
the lower-case tutorial vocabulary counts too (its ``rebooting`` and ``rolledback`` get their own rows).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable
from typing import Any

from ota_cloud.azure._errors import StandInRequestError
from ota_cloud.azure._hub import IotHubStandIn

__all__ = ["MXCHIP_METRICS", "MxchipRollout"]

MXCHIP_METRICS = ("Current", "Downloading", "Verifying", "Applying", "Error")


class MxchipRollout:
    """Desired firmware for a set of devices and the status counts."""

    def __init__(self, hub: IotHubStandIn) -> None:
        self.hub = hub

    def set_firmware(self, device_ids: Iterable[str], *, version: str, uri: str,
                     check_value: str | None = None, size: int | None = None) -> dict[str, int]:
        """Write desired ``firmware`` to each device; returns the new desired ``$version`` per device."""
        if not version or not isinstance(version, str):
            raise StandInRequestError("fwVersion is required")
        if urllib.parse.urlsplit(uri).scheme not in ("http", "https"):
            raise StandInRequestError("fwPackageURI must be an http(s) URL")
        firmware: dict[str, Any] = {"fwVersion": version, "fwPackageURI": uri}
        if check_value is not None:
            firmware["fwPackageCheckValue"] = check_value
        if size is not None:
            firmware["fwSize"] = size
        ids = list(device_ids) or self.hub.twins.device_ids()
        for device_id in ids:
            self.hub.check_device(device_id)
        return {d: self.hub.update_desired(d, {"firmware": firmware}) for d in ids}

    def metrics(self, device_ids: Iterable[str] | None = None) -> dict[str, int]:
        """Devices per reported status: the five DevKit metrics plus any other status seen."""
        counts = dict.fromkeys(MXCHIP_METRICS, 0)
        ids = list(device_ids) if device_ids is not None else self.hub.twins.device_ids()
        for device_id in ids:
            firmware = self.hub.twins.get(device_id).reported.get("firmware")
            status = firmware.get("fwUpdateStatus") if isinstance(firmware, dict) else None
            if not isinstance(status, str):
                continue
            name = next((m for m in MXCHIP_METRICS if m.lower() == status.lower()), status.lower())
            counts[name] = counts.get(name, 0) + 1
        return counts

    def device_statuses(self) -> dict[str, dict[str, Any]]:
        """The reported ``firmware`` of every device."""
        out: dict[str, dict[str, Any]] = {}
        for device_id in self.hub.twins.device_ids():
            firmware = self.hub.twins.get(device_id).reported.get("firmware")
            out[device_id] = dict(firmware) if isinstance(firmware, dict) else {}
        return out

"""The Azure twin demo: the Azure IoT Hub stand-in (twins, MXChip rollout view, HTTP file server).

The device runs the MXChip-schema twin orchestrator. The scenario serves signed firmware 1.0.1 over
loopback HTTP and writes the desired ``firmware`` property (version, URI, CRC-16/XMODEM check value,
size), as an IoT Hub automatic device configuration does. Expected end: reported ``Current`` with 1.0.1
running, or ``Error`` (``Rolled back to: 1.0.0``) with 1.0.0 running for ``--fail-self-test``.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from ota_cloud.azure import AzureStandIn
from ota_jobs.azure import crc16_xmodem, format_check_value
from ota_orchestrators.demo._runner import NEW_VERSION, OLD_VERSION, DemoContext, Expected, register_scenario

__all__ = ["AzureScenario"]

HUB = "modular-ota.azure-devices.net"
DEVICE_KEY = "bW9kdWxhci1vdGEgZGVtbyBkZXZpY2Uga2V5IDAxMjM0NTY3ODk="
"""The demo device's symmetric key (the stand-in checks the SAS tokens made from it)."""


class AzureScenario:
    """The cloud side of ``ota demo azure``."""

    title = "Azure IoT Hub twin firmware (MXChip schema), 1.0.0 -> 1.0.1"

    def __init__(self) -> None:
        self.cloud: AzureStandIn | None = None

    def start_cloud(self, context: DemoContext) -> None:
        """Start the stand-in on the demo broker and register the device."""
        self.cloud = AzureStandIn(context.broker_url, context.work_dir / "azure-state", hostname=HUB,
                                  admin_port=None, key_size=2048)
        self.cloud.start()
        self.cloud.hub.register_device(context.device_id, DEVICE_KEY)
        context.print_line(f"cloud: Azure IoT Hub stand-in up, device {context.device_id} registered")

    def device_settings(self, context: DemoContext) -> dict[str, Any]:
        """The device's ``azure`` flow settings: the local broker as the hub's gateway, plain MQTT."""
        assert self.cloud is not None
        broker = urllib.parse.urlsplit(context.broker_url)
        return {
            "device_id": context.device_id,
            "hostname": HUB,
            "shared_access_key": DEVICE_KEY,
            "gateway_host": broker.hostname or "127.0.0.1",
            "port": broker.port or 1883,
            "use_tls": False,
            "topic_prefix": self.cloud.hub.prefix_for(context.device_id),
            "allow_http": True,
        }

    def publish(self, context: DemoContext) -> str:
        """Serve the image and set the desired firmware."""
        assert self.cloud is not None
        firmware = context.new_firmware
        url = self.cloud.files.add_file(f"firmware-{firmware.version}.bin", firmware.image)
        check = format_check_value(crc16_xmodem(firmware.image))
        self.cloud.mxchip.set_firmware([context.device_id], version=firmware.version, uri=url, check_value=check,
                                       size=len(firmware.image))
        size = len(firmware.image)
        return f"desired firmware {firmware.version}: {url} (fwPackageCheckValue {check}, {size:,} bytes)"

    def expected(self, context: DemoContext) -> Expected:
        """Current with the new image, or Error with the old one after a failing self-test."""
        if context.options.fail_self_test:
            return Expected("Error", OLD_VERSION)
        return Expected("Current", NEW_VERSION)

    def cloud_state(self, context: DemoContext) -> tuple[str, dict[str, Any]]:
        """The reported ``firmware`` of the device's twin."""
        assert self.cloud is not None
        firmware = self.cloud.hub.twins.get(context.device_id).reported.get("firmware")
        reported = dict(firmware) if isinstance(firmware, dict) else {}
        return str(reported.get("fwUpdateStatus", "")), reported

    def close(self) -> None:
        """Stop the stand-in."""
        if self.cloud is not None:
            self.cloud.close()
            self.cloud = None


register_scenario("azure", AzureScenario)

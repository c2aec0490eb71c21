"""ota_orchestrators: reference orchestrators and the ``ota`` command.

Short, readable compositions of the components for AWS IoT Jobs, Azure IoT Hub twins (MXChip firmware
schema) and Azure Device Update, meant to be copied and changed; the simulated device and ``ota demo``.
"""

from ota_orchestrators.adu import AduAgent, AduSettings
from ota_orchestrators.aws import (
    FREERTOS_BLOCK_SIZE,
    AwsOrchestrator,
    AwsSettings,
    app_version_hex,
    freertos_status_details,
)
from ota_orchestrators.azure_twin import AzureTwinDevice, AzureTwinSettings

__all__: list[str] = [
    "FREERTOS_BLOCK_SIZE",
    "AduAgent",
    "AduSettings",
    "AwsOrchestrator",
    "AwsSettings",
    "AzureTwinDevice",
    "AzureTwinSettings",
    "app_version_hex",
    "freertos_status_details",
]

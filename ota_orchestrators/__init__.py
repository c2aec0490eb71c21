"""ota_orchestrators: reference orchestrators and the ``ota`` command.

Short, readable compositions of the components for AWS IoT Jobs, Azure IoT Hub twins (MXChip firmware
schema) and Azure Device Update, meant to be copied and changed.
"""

from ota_orchestrators.azure_twin import AzureTwinDevice, AzureTwinSettings

__all__: list[str] = [
    "AzureTwinDevice",
    "AzureTwinSettings",
]

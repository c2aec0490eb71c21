"""ota_jobs: Notify and Parse.

The AWS IoT Jobs MQTT API, the Azure IoT Hub twin protocol and the Device Update ``deviceUpdate``
component, each as a sans-I/O core plus an adapter over ``ota_core``'s MQTT connection; job-document
parsers (``afr_ota``, generic HTTP, MXChip firmware twin, Device Update manifests) and the parser chain.
"""

__all__: list[str] = []

# --- Azure IoT Hub twins, MXChip firmware schema, Device Update (ota_jobs.azure) ---------------------
from ota_jobs.azure import (
    AduAgentReporter,
    AduJobSource,
    AduParser,
    AduWorkflowTracker,
    IotHubSettings,
    MxchipFirmwareParser,
    MxchipJobSource,
    MxchipReporter,
    SasTokenProvider,
    TwinClient,
    TwinCore,
    parse_connection_string,
)

__all__ += [
    "AduAgentReporter",
    "AduJobSource",
    "AduParser",
    "AduWorkflowTracker",
    "IotHubSettings",
    "MxchipFirmwareParser",
    "MxchipJobSource",
    "MxchipReporter",
    "SasTokenProvider",
    "TwinClient",
    "TwinCore",
    "parse_connection_string",
]

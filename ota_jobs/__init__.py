"""ota_jobs: Notify and Parse.

The AWS IoT Jobs MQTT API, the Azure IoT Hub twin protocol and the Device Update ``deviceUpdate``
component, each as a sans-I/O core plus an adapter over ``ota_core``'s MQTT connection; job-document
parsers (``afr_ota``, generic HTTP, MXChip firmware twin, Device Update manifests) and the parser chain.
"""

# AWS IoT Jobs (ota_jobs.aws), Azure IoT Hub twins + MXChip + Device Update (ota_jobs.azure), parsers.
from ota_jobs.aws import (
    AwsJobsClient,
    JobsCore,
    JobsRejectedError,
    JobsTopics,
    JobTracker,
)
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
from ota_jobs.parsers import (
    AfrOtaParser,
    AfrOtaParserConfig,
    HttpDocumentParser,
    HttpDocumentParserConfig,
    NoParserAcceptedError,
    ParserChain,
    default_parser_chain,
    rejection_report,
)

__all__ = [
    "AduAgentReporter",
    "AduJobSource",
    "AduParser",
    "AduWorkflowTracker",
    "AfrOtaParser",
    "AfrOtaParserConfig",
    "AwsJobsClient",
    "HttpDocumentParser",
    "HttpDocumentParserConfig",
    "IotHubSettings",
    "JobTracker",
    "JobsCore",
    "JobsRejectedError",
    "JobsTopics",
    "MxchipFirmwareParser",
    "MxchipJobSource",
    "MxchipReporter",
    "NoParserAcceptedError",
    "ParserChain",
    "SasTokenProvider",
    "TwinClient",
    "TwinCore",
    "default_parser_chain",
    "parse_connection_string",
    "rejection_report",
]

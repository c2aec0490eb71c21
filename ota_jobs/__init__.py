"""ota_jobs: Notify and Parse.

The AWS IoT Jobs MQTT API, the Azure IoT Hub twin protocol and the Device Update ``deviceUpdate``
component, each as a sans-I/O core plus an adapter over ``ota_core``'s MQTT connection; job-document
parsers (``afr_ota``, generic HTTP, MXChip firmware twin, Device Update manifests) and the parser chain.
"""

# --- AWS IoT Jobs and job-document parsers (begin) ---
from ota_jobs.aws import (
    AwsJobsClient,
    JobsCore,
    JobsRejectedError,
    JobsTopics,
    JobTracker,
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
    # --- AWS IoT Jobs and job-document parsers (begin) ---
    "AfrOtaParser",
    "AfrOtaParserConfig",
    "AwsJobsClient",
    "HttpDocumentParser",
    "HttpDocumentParserConfig",
    "JobTracker",
    "JobsCore",
    "JobsRejectedError",
    "JobsTopics",
    "NoParserAcceptedError",
    "ParserChain",
    "default_parser_chain",
    "rejection_report",
    # --- AWS IoT Jobs and job-document parsers (end) ---
]

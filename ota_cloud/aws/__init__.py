"""A local stand-in of AWS IoT Jobs: the MQTT data plane over a real broker and a boto3-compatible
control plane over loopback HTTP, with its state in a directory.

Written from the AWS protocol descriptions, independently of ``ota_jobs``.
"""

from ota_cloud.aws._control_plane import ControlPlaneServer, OperationHandler, OperationRequest, OperationResponse
from ota_cloud.aws._errors import ServiceError
from ota_cloud.aws._model import ACCOUNT_ID, REGION, ServiceState, job_arn, thing_arn
from ota_cloud.aws._presign import PresignedUrlResolver, PresignRequest, identity_resolver, resolve_placeholders
from ota_cloud.aws._service import JobsService, Outgoing
from ota_cloud.aws._standin import AwsIotStandIn

__all__ = [
    "ACCOUNT_ID",
    "REGION",
    "AwsIotStandIn",
    "ControlPlaneServer",
    "JobsService",
    "OperationHandler",
    "OperationRequest",
    "OperationResponse",
    "Outgoing",
    "PresignRequest",
    "PresignedUrlResolver",
    "ServiceError",
    "ServiceState",
    "identity_resolver",
    "job_arn",
    "resolve_placeholders",
    "thing_arn",
]

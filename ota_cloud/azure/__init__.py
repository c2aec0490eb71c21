"""Azure stand-in: IoT Hub twins and direct methods over a real MQTT broker, the Device Update service
side (import, deployments, JWS manifest signing, files over local HTTP, per-device state), an MXChip
rollout operator view and a small admin HTTP API. Written independently of the device side."""

from ota_cloud.azure._admin_api import AdminApi
from ota_cloud.azure._adu_service import DeviceUpdateService
from ota_cloud.azure._errors import DeviceNotFoundError, MethodTimeoutError, StandInError, StandInRequestError
from ota_cloud.azure._hub import DEFAULT_HOSTNAME, IotHubStandIn
from ota_cloud.azure._mxchip_rollout import MXCHIP_METRICS, MxchipRollout
from ota_cloud.azure._sas_check import check_sas_token
from ota_cloud.azure._signing import SigningKeys, sign_update_manifest
from ota_cloud.azure._standin import AzureStandIn
from ota_cloud.azure._twins import DeviceTwin, TwinRegistry, merge_json

__all__ = [
    "DEFAULT_HOSTNAME",
    "MXCHIP_METRICS",
    "AdminApi",
    "AzureStandIn",
    "DeviceNotFoundError",
    "DeviceTwin",
    "DeviceUpdateService",
    "IotHubStandIn",
    "MethodTimeoutError",
    "MxchipRollout",
    "SigningKeys",
    "StandInError",
    "StandInRequestError",
    "TwinRegistry",
    "check_sas_token",
    "merge_json",
    "sign_update_manifest",
]

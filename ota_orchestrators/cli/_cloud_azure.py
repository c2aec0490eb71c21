"""``ota cloud azure``: run the Azure stand-in and drive it through its admin HTTP API."""

from __future__ import annotations

import argparse
import base64
import json
from pathlib import Path
from typing import Any

import requests

from ota_cloud.azure import AzureStandIn, StandInRequestError
from ota_orchestrators.cli._common import cloud_subparsers, wait_for_interrupt

DEFAULT_ADMIN = "http://127.0.0.1:8765"


def register(subparsers: Any) -> None:
    """Add ``ota cloud azure ...``."""
    azure = cloud_subparsers(subparsers).add_parser("azure", help="Azure IoT Hub twins + Device Update stand-in")
    commands = azure.add_subparsers(dest="azure_command", metavar="COMMAND")
    azure.set_defaults(handler=lambda _a: (azure.print_help(), 2)[1])

    serve = commands.add_parser("serve", help="run the stand-in on a broker until Ctrl-C")
    serve.add_argument("--broker", required=True, help="broker URL, e.g. mqtt://127.0.0.1:1883")
    serve.add_argument("--state-dir", type=Path, default=Path("azure-standin"), help="where state is kept")
    serve.add_argument("--admin-port", type=int, default=8765, help="admin API port on 127.0.0.1")
    serve.add_argument("--file-port", type=int, default=0, help="file server port (default: a free one)")
    serve.add_argument("--hostname", default="modular-ota.azure-devices.net", help="the hub name devices use")
    serve.add_argument(
        "--single-device", action="store_true", help="one device per broker with the hub's exact (unprefixed) topics"
    )
    serve.set_defaults(handler=_serve)

    def client(name: str, help_text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = commands.add_parser(name, help=help_text)
        parser.add_argument("--admin", default=DEFAULT_ADMIN, help=f"admin API URL (default {DEFAULT_ADMIN})")
        return parser

    device = client("device-add", "register a device")
    device.add_argument("device_id")
    device.add_argument("--key", default=None, help="its primary key (base64)")
    device.set_defaults(handler=lambda a: _call(a, "POST", "/devices", {"deviceId": a.device_id, "primaryKey": a.key}))

    twin = client("twin", "show a device's twin")
    twin.add_argument("device_id")
    twin.set_defaults(handler=lambda a: _call(a, "GET", f"/devices/{a.device_id}/twin"))

    desired = client("desired", "merge a JSON patch into a device's desired properties")
    desired.add_argument("device_id")
    desired.add_argument("patch", help="JSON object")
    desired.set_defaults(
        handler=lambda a: _call(a, "PATCH", f"/devices/{a.device_id}/twin/desired", _json_arg(a.patch))
    )

    method = client("method", "invoke a direct method and print the answer")
    method.add_argument("device_id")
    method.add_argument("name")
    method.add_argument("--payload", default="null", help="JSON payload")
    method.add_argument("--timeout", type=float, default=30.0)
    method.set_defaults(
        handler=lambda a: _call(
            a,
            "POST",
            f"/devices/{a.device_id}/methods/{a.name}",
            {"payload": _json_arg(a.payload), "timeout": a.timeout},
        )
    )

    mx_set = client("mxchip-set", "set desired firmware on devices (all if none named)")
    mx_set.add_argument("devices", nargs="*")
    mx_set.add_argument("--fw-version", required=True)
    mx_set.add_argument("--uri", required=True)
    mx_set.add_argument("--check-value", default=None, help="CRC-16/XMODEM as hex")
    mx_set.add_argument("--size", type=int, default=None)
    mx_set.set_defaults(
        handler=lambda a: _call(
            a,
            "POST",
            "/mxchip/firmware",
            {
                "devices": a.devices,
                "fwVersion": a.fw_version,
                "fwPackageURI": a.uri,
                "fwPackageCheckValue": a.check_value,
                "fwSize": a.size,
            },
        )
    )

    metrics = client("mxchip-metrics", "count devices by reported fwUpdateStatus")
    metrics.set_defaults(handler=lambda a: _call(a, "GET", "/mxchip/metrics"))

    imp = client("adu-import", "import an update: an import manifest and its files")
    imp.add_argument("manifest", type=Path)
    imp.add_argument("files", type=Path, nargs="+")
    imp.set_defaults(handler=_import)

    deploy = client("adu-deploy", "deploy an imported update to devices")
    deploy.add_argument("deployment_id")
    deploy.add_argument("devices", nargs="+")
    deploy.add_argument("--provider", required=True)
    deploy.add_argument("--name", required=True)
    deploy.add_argument("--update-version", required=True)
    deploy.set_defaults(
        handler=lambda a: _call(
            a,
            "POST",
            "/adu/deployments",
            {
                "deploymentId": a.deployment_id,
                "devices": a.devices,
                "updateId": {"provider": a.provider, "name": a.name, "version": a.update_version},
            },
        )
    )

    for name, verb, help_text in (
        ("adu-status", "GET", "per-device state of a deployment"),
        ("adu-retry", "POST", "retry a deployment"),
        ("adu-cancel", "POST", "cancel a deployment"),
    ):
        sub = client(name, help_text)
        sub.add_argument("deployment_id")
        suffix = "" if verb == "GET" else "/" + name.split("-")[1]
        sub.set_defaults(handler=lambda a, v=verb, s=suffix: _call(a, v, f"/adu/deployments/{a.deployment_id}{s}"))

    root = client("adu-root-key", "print the stand-in's root key (PEM) for devices to trust")
    root.set_defaults(handler=_root_key)


def _json_arg(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise StandInRequestError(f"not JSON: {exc}") from exc


def _request(arguments: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    try:
        response = requests.request(method, arguments.admin.rstrip("/") + path, json=body, timeout=330)
    except requests.RequestException as exc:
        raise StandInRequestError(f"admin API not reachable at {arguments.admin}: {exc}") from exc
    try:
        data = response.json()
    except ValueError:
        data = {"reason": response.text[:200]}
    if response.status_code != 200:
        raise StandInRequestError(f"{response.status_code}: {data.get('reason', data)}")
    return data


def _call(arguments: argparse.Namespace, method: str, path: str, body: Any = None) -> int:
    print(json.dumps(_request(arguments, method, path, body), indent=2, sort_keys=True))
    return 0


def _import(arguments: argparse.Namespace) -> int:
    try:
        manifest = json.loads(arguments.manifest.read_text())
        files = {p.name: base64.b64encode(p.read_bytes()).decode() for p in arguments.files}
    except (OSError, ValueError) as exc:
        raise StandInRequestError(f"cannot read the update: {exc}") from exc
    return _call(arguments, "POST", "/adu/updates", {"importManifest": manifest, "files": files})


def _root_key(arguments: argparse.Namespace) -> int:
    print(_request(arguments, "GET", "/adu/root-key")["pem"], end="")
    return 0


def _serve(arguments: argparse.Namespace) -> int:
    standin = AzureStandIn(
        arguments.broker,
        arguments.state_dir,
        hostname=arguments.hostname,
        topic_prefix="" if arguments.single_device else "{device_id}/",
        admin_port=arguments.admin_port,
        file_port=arguments.file_port,
    )
    with standin:
        assert standin.admin is not None
        print(
            f"Azure stand-in on {arguments.broker}; admin API {standin.admin.url}; files {standin.files.url}",
            flush=True,
        )
        print("press Ctrl-C to stop", flush=True)
        wait_for_interrupt()
    return 0

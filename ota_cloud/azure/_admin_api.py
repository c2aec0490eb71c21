"""A small local admin HTTP API over the Azure stand-in (JSON in, JSON out, 127.0.0.1 only).

Routes (documented in the Azure docs page):
  GET  /devices                          list devices
  POST /devices                          {"deviceId", "primaryKey"?, "tags"?}
  GET  /devices/{id}/twin                the twin
  PATCH /devices/{id}/twin/desired       merge a desired patch (pushed to the device)
  POST /devices/{id}/methods/{name}      {"payload", "timeout"?} -> {"status", "payload"}
  POST /devices/{id}/faults              {"operation": "get"|"patch", "statuses": [429, ...]}
  POST /mxchip/firmware                  {"devices"?, "fwVersion", "fwPackageURI", "fwPackageCheckValue"?, "fwSize"?}
  GET  /mxchip/metrics                   counts by fwUpdateStatus
  POST /adu/updates                      {"importManifest", "files": {name: base64}}
  GET  /adu/updates                      imported update ids
  POST /adu/deployments                  {"deploymentId", "updateId", "devices"}
  GET  /adu/deployments/{id}             per-device state
  POST /adu/deployments/{id}/retry       new retryTimestamp
  POST /adu/deployments/{id}/cancel      cancel
  GET  /adu/root-key                     the stand-in's root key (JWK and PEM) for devices to trust
"""

from __future__ import annotations

import http.server
import json
import logging
import threading
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ota_cloud.azure._adu_service import decode_files
from ota_cloud.azure._errors import DeviceNotFoundError, StandInRequestError
from ota_core.errors import OtaError

if TYPE_CHECKING:
    from ota_cloud.azure._standin import AzureStandIn

__all__ = ["AdminApi"]

_log = logging.getLogger(__name__)
_MAX_BODY = 64 * 1024 * 1024


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        _log.debug("admin api: " + format, *args)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            raise StandInRequestError("request body too large")
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise StandInRequestError(f"body is not JSON: {exc}") from exc

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _run(self, method: str) -> None:
        parts = [urllib.parse.unquote(p) for p in urllib.parse.urlsplit(self.path).path.strip("/").split("/")]
        try:
            body = self._body() if method in ("POST", "PATCH") else {}
            if not isinstance(body, dict):
                raise StandInRequestError("body must be a JSON object")
            self._send(200, self.server.route(method, parts, body))
        except DeviceNotFoundError as exc:
            self._send(404, exc.as_report())
        except OtaError as exc:
            self._send(504 if exc.code == "AZURE_STANDIN_METHOD_TIMEOUT" else 400, exc.as_report())
        except (KeyError, TypeError, ValueError) as exc:
            self._send(400, {"code": "BAD_REQUEST", "reason": f"missing or bad field: {exc}"})
        except LookupError as exc:
            self._send(404, {"code": "NOT_FOUND", "reason": str(exc)})

    def do_GET(self) -> None:
        self._run("GET")

    def do_POST(self) -> None:
        self._run("POST")

    def do_PATCH(self) -> None:
        self._run("PATCH")


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    route: Callable[[str, list[str], dict[str, Any]], Any]


class AdminApi:
    """The admin HTTP server of an ``AzureStandIn``."""

    def __init__(self, standin: AzureStandIn, *, port: int = 0) -> None:
        self.standin = standin
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.route = self.route
        self._thread = threading.Thread(target=self._server.serve_forever, name="azure-admin", daemon=True)

    @property
    def url(self) -> str:
        """Base URL of the API."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    def route(self, method: str, parts: list[str], body: dict[str, Any]) -> Any:
        """Dispatch one request to the stand-in."""
        s = self.standin
        match method, parts:
            case "GET", ["devices"]:
                return {"devices": s.hub.twins.device_ids()}
            case "POST", ["devices"]:
                s.hub.register_device(body["deviceId"], body.get("primaryKey"), body.get("tags"))
                return {"deviceId": body["deviceId"], "topicPrefix": s.hub.prefix_for(body["deviceId"])}
            case "GET", ["devices", device_id, "twin"]:
                return s.hub.get_twin(device_id)
            case "PATCH", ["devices", device_id, "twin", "desired"]:
                return {"$version": s.hub.update_desired(device_id, body)}
            case "POST", ["devices", device_id, "methods", name]:
                status, payload = s.hub.invoke_method(device_id, name, body.get("payload"),
                                                      float(body.get("timeout", 30)))
                return {"status": status, "payload": payload}
            case "POST", ["devices", device_id, "faults"]:
                s.hub.check_device(device_id)
                s.hub.inject_faults(device_id, body["operation"], [int(x) for x in body["statuses"]])
                return {}
            case "POST", ["mxchip", "firmware"]:
                return s.mxchip.set_firmware(body.get("devices", []), version=body["fwVersion"],
                                             uri=body["fwPackageURI"], check_value=body.get("fwPackageCheckValue"),
                                             size=body.get("fwSize"))
            case "GET", ["mxchip", "metrics"]:
                return s.mxchip.metrics()
            case "POST", ["adu", "updates"]:
                return s.adu.import_update(body["importManifest"], decode_files(body.get("files", {})))
            case "GET", ["adu", "updates"]:
                return {"updates": s.adu.updates()}
            case "POST", ["adu", "deployments"]:
                s.adu.create_deployment(body["deploymentId"], body["updateId"], list(body["devices"]))
                return s.adu.deployment_status(body["deploymentId"])
            case "GET", ["adu", "deployments", deployment_id]:
                return s.adu.deployment_status(deployment_id)
            case "POST", ["adu", "deployments", deployment_id, "retry"]:
                return {"retryTimestamp": s.adu.retry_deployment(deployment_id)}
            case "POST", ["adu", "deployments", deployment_id, "cancel"]:
                s.adu.cancel_deployment(deployment_id)
                return s.adu.deployment_status(deployment_id)
            case "GET", ["adu", "root-key"]:
                return {"jwk": s.adu.keys.root_jwk(), "pem": s.adu.keys.root_public_pem().decode()}
        raise LookupError(f"no route for {method} /{'/'.join(parts)}")

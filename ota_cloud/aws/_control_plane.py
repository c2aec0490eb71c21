"""A local HTTP server for a subset of the AWS IoT control plane, compatible with boto3.

Requests and responses follow botocore's REST-JSON model of the ``iot`` service (method, path, query
and body members), so ``boto3.client("iot", endpoint_url=...)`` works against it unchanged. Request
signatures are not checked. Errors are sent as AWS sends them: status code, ``x-amzn-ErrorType`` header
and a ``{"message": ...}`` body.

Operations are entries of a route table; ``register_operation`` adds more (the stream operations are
added that way by another module), so the control plane grows without changes here.
"""

from __future__ import annotations

import http.server
import json
import logging
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ota_cloud.aws._errors import ServiceError
from ota_core.errors import OtaError

__all__ = ["ControlPlaneServer", "OperationHandler", "OperationRequest", "OperationResponse"]

_log = logging.getLogger(__name__)
_MAX_BODY = 1024 * 1024


@attrs.frozen
class OperationRequest:
    """One decoded control-plane request: path parameters, query parameters and JSON body."""

    method: str
    path: str
    path_params: Mapping[str, str]
    query: Mapping[str, str]
    body: Mapping[str, Any]
    headers: Mapping[str, str]


@attrs.frozen
class OperationResponse:
    """A JSON response (``body`` None sends an empty body, as for DeleteJob)."""

    body: Mapping[str, Any] | None = None
    status: int = 200


OperationHandler = Callable[[OperationRequest], OperationResponse | Mapping[str, Any] | None]


@attrs.frozen
class _Route:
    name: str
    method: str
    segments: tuple[str, ...]
    handler: OperationHandler

    def match(self, method: str, segments: list[str]) -> dict[str, str] | None:
        if method != self.method or len(segments) != len(self.segments):
            return None
        params: dict[str, str] = {}
        for pattern, value in zip(self.segments, segments, strict=True):
            if pattern.startswith("{") and pattern.endswith("}"):
                params[pattern[1:-1]] = value
            elif pattern != value:
                return None
        return params


def _split(path: str) -> list[str]:
    return [urllib.parse.unquote(part) for part in path.strip("/").split("/") if part]


class ControlPlaneServer:
    """A threaded loopback HTTP server dispatching to registered operations."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._routes: list[_Route] = []
        self._lock = threading.Lock()
        handler_class = self._make_handler()
        self._server = http.server.ThreadingHTTPServer((host, port), handler_class)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self._server.server_address[1])

    @property
    def endpoint_url(self) -> str:
        """The URL to give boto3 as ``endpoint_url``."""
        return f"http://127.0.0.1:{self.port}"

    def register_operation(self, name: str, method: str, path: str, handler: OperationHandler) -> None:
        """Serve ``method path`` (``{param}`` segments match one path segment) with ``handler``.

        ``handler`` receives an ``OperationRequest`` and returns an ``OperationResponse``, a mapping (sent
        with status 200) or ``None`` (empty 200); it raises ``ServiceError`` for an AWS error response.
        A later registration of the same method and path replaces the earlier one.
        """
        route = _Route(name, method.upper(), tuple(_split(path)), handler)
        with self._lock:
            self._routes = [r for r in self._routes if (r.method, r.segments) != (route.method, route.segments)]
            self._routes.append(route)

    @property
    def operations(self) -> tuple[str, ...]:
        """The names of the registered operations."""
        with self._lock:
            return tuple(route.name for route in self._routes)

    def start(self) -> None:
        """Serve in a background thread."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._server.serve_forever, name="aws-control-plane", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving and release the port."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def dispatch(
        self, method: str, raw_path: str, headers: Mapping[str, str], raw_body: bytes
    ) -> tuple[int, bytes, dict[str, str]]:
        """Serve one request; returns status, body and extra headers (also used by tests without HTTP)."""
        parsed = urllib.parse.urlsplit(raw_path)
        segments = _split(parsed.path)
        query = {key: values[-1] for key, values in urllib.parse.parse_qs(parsed.query).items()}
        with self._lock:
            routes = list(self._routes)
        for route in routes:
            params = route.match(method, segments)
            if params is None:
                continue
            try:
                body = json.loads(raw_body) if raw_body.strip() else {}
                if not isinstance(body, dict):
                    raise ServiceError("SerializationException", "the request body must be a JSON object")
                request = OperationRequest(method, parsed.path, params, query, body, dict(headers))
                result = route.handler(request)
            except ServiceError as error:
                return _error(error)
            except OtaError as error:
                _log.error("operation %s failed: %s", route.name, error)
                return _error(ServiceError("InternalFailureException", str(error), status=500))
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
                return _error(ServiceError("SerializationException", "the request body is not JSON"))
            response = result if isinstance(result, OperationResponse) else OperationResponse(result)
            payload = b"" if response.body is None else json.dumps(response.body).encode("utf-8")
            return response.status, payload, {}
        return _error(ServiceError("UnknownOperationException", f"no operation for {method} {parsed.path}", status=404))

    def _make_handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > _MAX_BODY:
                    status, body, extra = _error(ServiceError.invalid("request body too large"))
                    self.close_connection = True
                else:
                    raw = self.rfile.read(length) if length > 0 else b""
                    status, body, extra = server.dispatch(self.command, self.path, dict(self.headers), raw)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("x-amzn-RequestId", "00000000-0000-0000-0000-000000000000")
                for key, value in extra.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _serve  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                _log.debug("control plane: " + format, *args)

        return Handler


def _error(error: ServiceError) -> tuple[int, bytes, dict[str, str]]:
    body = json.dumps({"message": error.message, "__type": error.error_type}).encode("utf-8")
    return error.status, body, {"x-amzn-ErrorType": error.error_type}

"""A presigned-URL file server with fault switches, for download tests and demos.

``FaultyFileServer`` extends the foundation's ``RangeFileServer``:

* presigned, expiring URLs (``presign``): an HMAC over the path and the expiry time, checked on every
  request when ``require_signature`` is on; an expired or forged URL gets 403, as S3 answers;
* fault switches in ``faults`` (change them at any time, also from another thread): answer the next
  requests with given statuses (403, 5xx ...), ignore ``Range`` (200 with the whole file), cut the
  body after N bytes, stall after N bytes, throttle to N bytes/s, or send more than the file (an
  oversized or endless body without Content-Length).

It is written from the HTTP description, independently of the device-side downloader.
"""

from __future__ import annotations

import hashlib
import hmac
import http.server
import logging
import secrets
import ssl
import threading
import time
import urllib.parse

import attrs

from ota_cloud.file_server import FileEntry, RangeFileServer

__all__ = ["FaultyFileServer", "HttpFaults"]

_log = logging.getLogger(__name__)


@attrs.define
class HttpFaults:
    """Fault switches; each ``*_requests`` count says how many of the next requests it applies to.

    ``statuses``: answer the next requests with these statuses, one per request, in order.
    ``ignore_range``: serve 200 with the whole file whatever ``Range`` says.
    ``cut_after`` / ``cut_requests``: close the connection after that many body bytes.
    ``stall_after`` / ``stall_seconds``: stop sending after that many body bytes for that long.
    ``throttle``: at most this many body bytes per second (None: no limit).
    ``extra_bytes``: after the file, send this many more bytes, without Content-Length (oversized body).
    """

    statuses: list[int] = attrs.field(factory=list)
    ignore_range: bool = False
    cut_after: int | None = None
    cut_requests: int = 0
    stall_after: int | None = None
    stall_seconds: float = 0.0
    stall_requests: int = 0
    throttle: int | None = None
    extra_bytes: int = 0


class FaultyFileServer(RangeFileServer):
    """A ``RangeFileServer`` with presigned expiring URLs and switchable faults."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls_context: ssl.SSLContext | None = None,
        require_signature: bool = False,
        secret: bytes | None = None,
    ) -> None:
        super().__init__(host=host, port=port, tls_context=tls_context)
        self.faults = HttpFaults()
        self.require_signature = require_signature
        self._secret = secret or secrets.token_bytes(32)
        self._fault_lock = threading.Lock()
        self._stop = threading.Event()
        self.statuses_sent: list[int] = []
        self.body_bytes_sent = 0
        self.ranges_requested: list[str | None] = []

    # --- presigned URLs --------------------------------------------------------------------------

    def presign(self, name: str, expires_in: float = 1800.0, *, now: float | None = None) -> str:
        """A URL for ``name`` valid for ``expires_in`` seconds (S3 allows 60..3600 for job URLs)."""
        url = self.url + urllib.parse.quote(name.strip("/"))
        expires = int((time.time() if now is None else now) + expires_in)
        path = urllib.parse.urlsplit(url).path
        query = urllib.parse.urlencode({"X-Expires": str(expires), "X-Signature": self._sign(path, expires)})
        return f"{url}?{query}"

    def _sign(self, path: str, expires: int) -> str:
        return hmac.new(self._secret, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()

    def _signature_ok(self, raw_path: str) -> bool:
        parts = urllib.parse.urlsplit(raw_path)
        query = urllib.parse.parse_qs(parts.query)
        try:
            expires = int(query["X-Expires"][0])
            signature = query["X-Signature"][0]
        except (KeyError, IndexError, ValueError):
            return False
        if expires < time.time():
            return False
        return hmac.compare_digest(signature, self._sign(parts.path, expires))

    # --- serving ---------------------------------------------------------------------------------

    def respond(self, handler: http.server.BaseHTTPRequestHandler, *, head_only: bool) -> None:
        """Apply the fault switches, then serve normally."""
        with self._fault_lock:
            self.ranges_requested.append(handler.headers.get("Range"))
            status = self.faults.statuses.pop(0) if self.faults.statuses else None
        if self.require_signature and not self._signature_ok(handler.path):
            self._status(
                handler, 403, b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
            )
            return
        if status is not None:
            self._status(handler, status, b"injected fault\n")
            return
        if self.faults.ignore_range:
            del handler.headers["Range"]
            del handler.headers["If-Range"]
        entry = self.entry_for(handler.path)
        if entry is not None and self.faults.extra_bytes and not head_only:
            self._oversized(handler, entry)
            return
        with self._fault_lock:
            self.statuses_sent.append(200)
        super().respond(handler, head_only=head_only)

    def _status(self, handler: http.server.BaseHTTPRequestHandler, status: int, body: bytes) -> None:
        with self._fault_lock:
            self.statuses_sent.append(status)
        self.send_status(handler, status, body)

    def _oversized(self, handler: http.server.BaseHTTPRequestHandler, entry: FileEntry) -> None:
        """200 without Content-Length: the file, then ``extra_bytes`` more, then close."""
        handler.send_response(200)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("ETag", entry.etag)
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.close_connection = True
        try:
            for chunk in self.iter_content(entry, 0, entry.size):
                handler.wfile.write(chunk)
            left = self.faults.extra_bytes
            filler = b"\xee" * 65536
            while left > 0 and not self._stop.is_set():
                piece = filler[: min(left, len(filler))]
                handler.wfile.write(piece)
                left -= len(piece)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            _log.debug("client hung up on the oversized body of %s", entry.name)

    def send_body(self, handler: http.server.BaseHTTPRequestHandler, entry: FileEntry, first: int, length: int) -> None:
        """Send the body, honouring cut, stall and throttle switches."""
        with self._fault_lock:
            faults = self.faults
            cut = faults.cut_after if faults.cut_requests > 0 else None
            if cut is not None:
                faults.cut_requests -= 1
            stall = faults.stall_after if faults.stall_requests > 0 else None
            if stall is not None:
                faults.stall_requests -= 1
            stall_seconds = faults.stall_seconds
            throttle = faults.throttle
        sent = 0
        started = time.monotonic()
        try:
            for chunk in self.iter_content(entry, first, length):
                view = memoryview(chunk)
                while view:
                    piece_size = len(view)
                    if throttle:
                        piece_size = min(piece_size, max(1, throttle // 20))
                    if cut is not None:
                        piece_size = min(piece_size, cut - sent)
                    if stall is not None and sent < stall:
                        piece_size = min(piece_size, stall - sent)
                    if piece_size <= 0:
                        break
                    handler.wfile.write(view[:piece_size])
                    sent += piece_size
                    with self._fault_lock:
                        self.body_bytes_sent += piece_size
                    view = view[piece_size:]
                    if throttle:
                        ahead = sent / throttle - (time.monotonic() - started)
                        if ahead > 0 and self._stop.wait(ahead):
                            return
                    if stall is not None and sent == stall:
                        handler.wfile.flush()
                        if self._stop.wait(stall_seconds):
                            return
                        stall = None
                if cut is not None and sent >= cut:
                    handler.wfile.flush()
                    handler.close_connection = True
                    _log.debug("cutting the body of %s after %d bytes", entry.name, sent)
                    return
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            _log.debug("client went away during %s", entry.name)

    def __enter__(self) -> FaultyFileServer:
        self.start()
        return self

    def stop(self) -> None:
        """Release stalled or throttled responses, then stop serving."""
        self._stop.set()
        super().stop()

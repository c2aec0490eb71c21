"""A loopback HTTP(S) file server with single-range ``Range``, ``If-Range`` and strong ETags.

It serves update files to simulated devices and tests. Python's own ``http.server`` ignores ``Range``,
which makes it useless for resume tests; this one honours it as RFC 9110 says, and subclasses can add
fault behaviour by overriding ``respond``.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import logging
import re
import ssl
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import attrs

__all__ = ["ByteRange", "FileEntry", "RangeFileServer", "parse_range_header"]

_log = logging.getLogger(__name__)
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CHUNK = 1024 * 1024


@attrs.frozen
class ByteRange:
    """An inclusive byte range ``first..last`` of a file."""

    first: int
    last: int

    @property
    def length(self) -> int:
        """Number of bytes in the range."""
        return self.last - self.first + 1


def parse_range_header(header: str | None, size: int) -> ByteRange | str | None:
    """Interpret a ``Range`` header for a file of ``size`` bytes.

    Returns the range to serve, ``None`` to serve the whole file (no header, several ranges, or a form this
    server does not serve), or ``"unsatisfiable"`` for a range wholly outside the file (answered with 416).
    """
    if header is None:
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        return None
    start_text, end_text = match.groups()
    if not start_text and not end_text:
        return None
    if not start_text:
        suffix = int(end_text)
        if suffix == 0:
            return "unsatisfiable"
        return ByteRange(max(0, size - suffix), size - 1) if size else "unsatisfiable"
    first = int(start_text)
    if first >= size:
        return "unsatisfiable"
    last = int(end_text) if end_text else size - 1
    if last < first:
        return None
    return ByteRange(first, min(last, size - 1))


@attrs.frozen
class FileEntry:
    """A file the server offers: bytes in memory or a file on disk, with its strong ETag."""

    name: str
    size: int
    etag: str
    data: bytes | None = None
    path: Path | None = None

    def open(self) -> BinaryIO:
        """Open the content for reading."""
        if self.path is not None:
            return self.path.open("rb")
        return io.BytesIO(self.data or b"")


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.server.owner.respond(self, head_only=False)

    def do_HEAD(self) -> None:
        self.server.owner.respond(self, head_only=True)

    def log_message(self, format: str, *args: object) -> None:
        _log.debug("%s " + format, self.address_string(), *args)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    owner: RangeFileServer

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that goes away mid-request (a device losing power) is normal here: log, no traceback.
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            _log.debug("client %s went away: %s", client_address, error)
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class RangeFileServer:
    """Serves registered files on 127.0.0.1 over HTTP, or HTTPS when given a TLS context."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, tls_context: ssl.SSLContext | None = None) -> None:
        self._files: dict[str, FileEntry] = {}
        self._lock = threading.Lock()
        self._server = _Server((host, port), _Handler)
        self._server.owner = self
        self._tls = tls_context is not None
        if tls_context is not None:
            self._server.socket = tls_context.wrap_socket(self._server.socket, server_side=True)
        self._thread: threading.Thread | None = None
        self.requests_served = 0

    @property
    def port(self) -> int:
        """The port the server listens on."""
        port: int = self._server.server_address[1]
        return port

    @property
    def url(self) -> str:
        """The server's base URL, ending in ``/``."""
        scheme = "https" if self._tls else "http"
        host = "localhost" if self._tls else "127.0.0.1"
        return f"{scheme}://{host}:{self.port}/"

    def add_file(self, name: str, content: bytes | Path) -> str:
        """Offer ``content`` under ``name`` (a path segment; subfolders allowed) and return its URL."""
        clean = name.strip("/")
        if not clean or ".." in clean.split("/"):
            raise ValueError(f"invalid file name {name!r}")
        if isinstance(content, Path):
            stat = content.stat()
            etag = f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'
            entry = FileEntry(name=clean, size=stat.st_size, etag=etag, path=content)
        else:
            etag = '"' + hashlib.sha256(content).hexdigest()[:32] + '"'
            entry = FileEntry(name=clean, size=len(content), etag=etag, data=bytes(content))
        with self._lock:
            self._files[clean] = entry
        return self.url + urllib.parse.quote(clean)

    def remove_file(self, name: str) -> None:
        """Stop offering ``name``."""
        with self._lock:
            self._files.pop(name.strip("/"), None)

    def entry_for(self, path: str) -> FileEntry | None:
        """The file a request path refers to (query string ignored), or ``None``."""
        name = urllib.parse.unquote(urllib.parse.urlsplit(path).path).strip("/")
        with self._lock:
            return self._files.get(name)

    # --- serving ---------------------------------------------------------------------------------

    def respond(self, handler: http.server.BaseHTTPRequestHandler, *, head_only: bool) -> None:
        """Answer one request. Subclasses override this to inject faults, then call it for normal service."""
        with self._lock:
            self.requests_served += 1
        entry = self.entry_for(handler.path)
        if entry is None:
            self.send_status(handler, 404, b"not found\n")
            return
        wanted = parse_range_header(handler.headers.get("Range"), entry.size)
        if_range = handler.headers.get("If-Range")
        if wanted is not None and if_range is not None and if_range.strip() != entry.etag:
            wanted = None  # the file changed since the client's copy: send all of it
        if wanted == "unsatisfiable":
            handler.send_response(416)
            handler.send_header("Content-Range", f"bytes */{entry.size}")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        byte_range = wanted if isinstance(wanted, ByteRange) else None
        first, length = (byte_range.first, byte_range.length) if byte_range else (0, entry.size)
        handler.send_response(206 if byte_range else 200)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Accept-Ranges", "bytes")
        handler.send_header("ETag", entry.etag)
        handler.send_header("Content-Length", str(length))
        if byte_range:
            handler.send_header("Content-Range", f"bytes {first}-{byte_range.last}/{entry.size}")
        handler.end_headers()
        if head_only:
            return
        self.send_body(handler, entry, first, length)

    def send_body(self, handler: http.server.BaseHTTPRequestHandler, entry: FileEntry, first: int, length: int) -> None:
        """Write ``length`` bytes of ``entry`` from ``first`` to the client."""
        try:
            for chunk in self.iter_content(entry, first, length):
                handler.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            _log.debug("client went away during %s", entry.name)

    @staticmethod
    def iter_content(entry: FileEntry, first: int, length: int) -> Iterator[bytes]:
        """The bytes of ``entry`` from ``first``, in chunks, ``length`` in total."""
        with entry.open() as source:
            source.seek(first)
            left = length
            while left > 0:
                chunk = source.read(min(_CHUNK, left))
                if not chunk:
                    return
                left -= len(chunk)
                yield chunk

    @staticmethod
    def send_status(handler: http.server.BaseHTTPRequestHandler, status: int, body: bytes = b"") -> None:
        """Answer with a status and a short body."""
        handler.send_response(status)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    # --- life cycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Serve on a background thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, name="range-file-server", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5.0)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> RangeFileServer:
        self.start()
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _value: BaseException | None, _traceback: TracebackType | None
    ) -> None:
        self.stop()

"""HTTP(S) range downloader: one file into a sink, resumable, bounded in time, size and retries.

It reads large ranges (the whole rest of the file per request, read in big chunks), resumes with
``Range`` and ``If-Range``/ETag from progress saved in the state store, copes with a server that ignores
``Range`` (200 instead of 206) by skipping what is already written, aborts a transfer that stays below a
minimum speed, never writes past the declared size (an endless or oversized body is cut off and
reported), asks for a fresh URL when the server answers 401/403 (expired presigned URL) and retries
passing failures with exponential backoff and jitter, within a bounded budget. TLS is verified unless
the caller says otherwise.
"""

from __future__ import annotations

import logging
import random
import re
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import attrs
import requests
import urllib3

from ota_core.clock import Clock, SystemClock
from ota_core.errors import ConfigurationError, DownloadError
from ota_core.models import FileLocation, LocationKind
from ota_core.protocols import DownloadRequest, StateStore
from ota_stream._backoff import Backoff
from ota_stream._progress import DownloadIdentity, ProgressMeter, ResumeStore
from ota_stream.errors import (
    BodyTooLargeError,
    HttpStatusError,
    InsecureUrlError,
    LowSpeedError,
    RetryBudgetExhaustedError,
    SourceChangedError,
    UrlExpiredError,
)
from ota_stream.sinks import InOrderFeeder, ReadableSink

__all__ = ["DownloadStats", "HttpDownloadConfig", "HttpRangeDownloader", "UrlRefresher"]

_log = logging.getLogger(__name__)

UrlRefresher = Callable[[DownloadRequest], "str | None"]
"""Asked for a fresh URL after a 401/403 (e.g. re-read the job document); None if there is none."""

_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$")
_RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@attrs.frozen
class HttpDownloadConfig:
    """Knobs of the HTTP downloader (defaults chosen by measurement, see docs/download.md)."""

    chunk_size: int = attrs.field(default=1024 * 1024, validator=attrs.validators.ge(4096))
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    low_speed_limit: int = 1024
    low_speed_time: float = 30.0
    max_attempts: int = attrs.field(default=6, validator=attrs.validators.ge(1))
    backoff: Backoff = attrs.field(factory=Backoff)
    max_url_refreshes: int = 3
    save_interval_bytes: int = 32 * 1024 * 1024
    save_interval_seconds: float = 2.0
    progress_interval: float = 0.5
    allow_insecure_http: bool = False
    verify: bool | str = True


@attrs.define
class DownloadStats:
    """What one ``download`` call did: bytes from the network, bytes written, retries, refreshes."""

    resumed_from: int = 0
    bytes_from_network: int = 0
    bytes_written: int = 0
    bytes_skipped: int = 0
    attempts: int = 0
    url_refreshes: int = 0


class _RetryError(Exception):
    """Internal: an attempt failed in a way another attempt may fix."""

    def __init__(self, reason: str, error: DownloadError | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error


class _ForbiddenError(Exception):
    """Internal: the server refused the URL (401/403)."""


class HttpRangeDownloader:
    """A ``Downloader`` for ``LocationKind.HTTP`` locations over ``requests``."""

    def __init__(
        self,
        state_store: StateStore,
        config: HttpDownloadConfig | None = None,
        *,
        url_refresher: UrlRefresher | None = None,
        session: requests.Session | None = None,
        clock: Clock | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._store = state_store
        self.config = config or HttpDownloadConfig()
        self._refresh = url_refresher
        self._session = session or requests.Session()
        self._clock = clock or SystemClock()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.last_stats = DownloadStats()

    def supports(self, location: FileLocation) -> bool:
        """True for HTTP locations (https, or http when explicitly allowed)."""
        return location.kind is LocationKind.HTTP

    def close(self) -> None:
        """Close the HTTP session's pooled connections (the downloader can still be used afterwards)."""
        self._session.close()

    def __enter__(self) -> HttpRangeDownloader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def download(self, request: DownloadRequest) -> None:
        """Fetch the whole file into ``request.sink`` or raise a ``DownloadError`` subclass."""
        if not self.supports(request.location):
            raise ConfigurationError(f"not an HTTP location: {request.location.kind}")
        url = self._check_url(request.location.uri)
        size = request.target.size
        stats = self.last_stats = DownloadStats()
        resume = ResumeStore(self._store, request.progress_key, DownloadIdentity.of(request, _without_query(url)))
        reader = request.sink if isinstance(request.sink, ReadableSink) else None
        offset, etag = self._saved(resume, size)
        if offset and request.verifier is not None and reader is None:
            _log.info("sink cannot be read back for the verifier; restarting %s", request.target.name)
            offset, etag = 0, None
        feeder = InOrderFeeder(request.verifier, size, reader=reader)
        feeder.catch_up(offset)
        stats.resumed_from = offset
        meter = ProgressMeter(
            request.job_id,
            size,
            self._clock,
            request.on_progress,
            interval=self.config.progress_interval,
            start_bytes=offset,
        )
        state = _Transfer(request, resume, feeder, meter, stats, offset, etag, self._clock, self.config)
        failures = 0
        refreshes = 0
        last_reason = ""
        while state.offset < size:
            stats.attempts += 1
            before = state.offset
            try:
                self._attempt(url, state)
            except _ForbiddenError as exc:
                refreshes = 0 if state.offset > before else refreshes + 1
                url = self._fresh_url(request, url, refreshes, str(exc))
                stats.url_refreshes += 1
                continue
            except _RetryError as exc:
                last_reason = exc.reason
                # Progress forgives earlier failures, except for a slow server: a trickle always makes some
                # progress, so low-speed aborts are counted whatever came through.
                slow = isinstance(exc.error, LowSpeedError)
                failures = 1 if state.offset > before and not slow else failures + 1
                _log.info("download of %s: attempt failed (%s)", request.target.name, exc.reason)
                if failures >= self.config.max_attempts:
                    state.save(force=True)
                    cause = exc.error
                    if isinstance(cause, LowSpeedError):
                        raise cause from exc
                    raise RetryBudgetExhaustedError(
                        f"download of {request.target.name} failed {failures} times in a row: {last_reason}",
                        details={"last_error": last_reason, "offset": state.offset},
                    ) from cause
                state.save(force=True)
                self._sleep(self.config.backoff.delay(failures, self._rng))
                continue
            failures = 0
        state.save(force=True)
        meter.update(state.offset, force=True, message="complete")

    # --- helpers ---------------------------------------------------------------------------------

    def _check_url(self, url: str) -> str:
        scheme = urllib.parse.urlsplit(url).scheme.lower()
        if scheme == "https" or (scheme == "http" and self.config.allow_insecure_http):
            return url
        raise InsecureUrlError(f"refusing URL with scheme {scheme or '(none)'!r}: only https is allowed")

    @staticmethod
    def _saved(resume: ResumeStore, size: int) -> tuple[int, str | None]:
        saved = resume.load()
        if saved is None:
            return 0, None
        offset = saved.get("offset")
        etag = saved.get("etag")
        if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= size:
            resume.clear()
            return 0, None
        return offset, etag if isinstance(etag, str) else None

    def _fresh_url(self, request: DownloadRequest, url: str, refreshes: int, reason: str) -> str:
        if self._refresh is None or refreshes > self.config.max_url_refreshes:
            raise UrlExpiredError(f"URL refused ({reason}) and no fresh URL is available")
        fresh = self._refresh(request)
        if not fresh:
            raise UrlExpiredError(f"URL refused ({reason}); the job source has no fresh URL")
        _log.info("URL refused (%s); resuming with a fresh URL", reason)
        return self._check_url(fresh)

    def _attempt(self, url: str, state: _Transfer) -> None:
        size = state.request.target.size
        headers = {"Accept-Encoding": "identity"}
        if state.offset:
            headers["Range"] = f"bytes={state.offset}-{size - 1}"
            if state.etag:
                headers["If-Range"] = state.etag
        cfg = self.config
        try:
            response = self._session.get(
                url,
                headers=headers,
                stream=True,
                timeout=(cfg.connect_timeout, cfg.read_timeout),
                verify=cfg.verify,
                allow_redirects=True,
            )
        except requests.exceptions.SSLError as exc:
            raise DownloadError(f"TLS failure: {type(exc).__name__}") from exc
        except (requests.RequestException, OSError) as exc:
            raise _RetryError(f"request failed: {type(exc).__name__}") from exc
        with response:
            if response.url != url:
                self._check_url(response.url)  # a redirect must not leave https
            self._handle(response, state)

    def _handle(self, response: requests.Response, state: _Transfer) -> None:
        size = state.request.target.size
        status = response.status_code
        if status in (401, 403):
            raise _ForbiddenError(f"HTTP {status}")
        if status in _RETRYABLE_STATUS:
            raise _RetryError(f"HTTP {status}")
        if status == 416 and state.offset >= size:
            return
        etag = response.headers.get("ETag")
        if status == 206:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            if match is None or int(match.group(1)) != state.offset:
                raise _RetryError(f"unusable Content-Range {response.headers.get('Content-Range')!r}")
            if match.group(3) != "*" and int(match.group(3)) != size:
                raise HttpStatusError(f"server holds {match.group(3)} bytes, the job declares {size}", status=status)
            skip = 0
        elif status == 200:
            if state.offset and state.etag and etag and etag != state.etag:
                state.resume.clear()
                raise SourceChangedError("the file changed on the server (new ETag); progress discarded")
            skip = state.offset
            if skip:
                _log.info("server ignored Range; skipping %d bytes already written", skip)
        else:
            raise HttpStatusError(f"unexpected HTTP status {status}", status=status)
        if etag:
            state.etag = etag
        declared = response.headers.get("Content-Length")
        expected = size - state.offset + skip
        if declared is not None and declared.isdigit() and int(declared) < expected:
            _log.debug("body declares %s bytes, %d expected; reading what comes", declared, expected)
        self._read_body(response, state, skip, declared == str(expected))

    def _read_body(self, response: requests.Response, state: _Transfer, skip: int, length_exact: bool) -> None:
        cfg = self.config
        size = state.request.target.size
        raw = response.raw
        window_time = self._clock.monotonic()
        window_bytes = state.stats.bytes_from_network
        try:
            while state.offset < size:
                chunk = raw.read1(cfg.chunk_size, decode_content=False)
                if not chunk:
                    raise _RetryError(f"body ended early at offset {state.offset}")
                state.stats.bytes_from_network += len(chunk)
                if skip:
                    dropped = min(skip, len(chunk))
                    skip -= dropped
                    state.stats.bytes_skipped += dropped
                    chunk = chunk[dropped:]
                if chunk:
                    room = size - state.offset
                    excess = len(chunk) > room
                    state.write(chunk[:room])
                    if excess:
                        raise BodyTooLargeError(f"server sent more than the declared {size} bytes; cut off")
                now = self._clock.monotonic()
                if now - window_time >= cfg.low_speed_time:
                    rate = (state.stats.bytes_from_network - window_bytes) / (now - window_time)
                    if rate < cfg.low_speed_limit:
                        raise _RetryError(
                            f"below {cfg.low_speed_limit} B/s for {cfg.low_speed_time:g} s",
                            LowSpeedError(f"transfer at {rate:.0f} B/s, below {cfg.low_speed_limit} B/s"),
                        )
                    window_time, window_bytes = now, state.stats.bytes_from_network
            if not length_exact and raw.read(1, decode_content=False):
                raise BodyTooLargeError(f"server kept sending after the declared {size} bytes; cut off")
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise _RetryError(f"read failed: {type(exc).__name__}") from exc


def _without_query(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


class _Transfer:
    """Mutable state of one download call: offset, ETag, save bookkeeping."""

    def __init__(  # noqa: PLR0917
        self,
        request: DownloadRequest,
        resume: ResumeStore,
        feeder: InOrderFeeder,
        meter: ProgressMeter,
        stats: DownloadStats,
        offset: int,
        etag: str | None,
        clock: Clock,
        config: HttpDownloadConfig,
    ) -> None:
        self.request = request
        self.resume = resume
        self.feeder = feeder
        self.meter = meter
        self.stats = stats
        self.offset = offset
        self.etag = etag
        self._clock = clock
        self._every_bytes = config.save_interval_bytes
        self._every_seconds = config.save_interval_seconds
        self._saved_offset = offset
        self._saved_at = clock.monotonic()

    def write(self, data: bytes) -> None:
        """Write at the current offset, feed the verifier, count, and save progress when due."""
        self.request.sink.write_at(self.offset, data)
        self.feeder.written(self.offset, data)
        self.offset += len(data)
        self.stats.bytes_written += len(data)
        self.meter.update(self.offset)
        self.save()

    def save(self, *, force: bool = False) -> None:
        """Make the data durable, then record the offset (in that order, so a record never runs ahead)."""
        now = self._clock.monotonic()
        if self.offset == self._saved_offset and not force:
            return
        if (
            not force
            and self.offset - self._saved_offset < self._every_bytes
            and now - self._saved_at < self._every_seconds
        ):
            return
        self.request.sink.flush()
        progress: dict[str, Any] = {"offset": self.offset}
        if self.etag:
            progress["etag"] = self.etag
        self.resume.save(progress)
        self._saved_offset = self.offset
        self._saved_at = now

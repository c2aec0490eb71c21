"""Sans-I/O core of the IoT Hub device twin and direct-method protocol.

The core builds the (topic, payload) pairs to publish and consumes received messages; it opens no socket,
starts no thread and never reads the clock (``now`` is passed in, monotonic seconds). It implements:

* twin GET and reported PATCH correlated by ``$rid``;
* desired-property patches ordered by ``$version``: patches that arrive before the GET answer are held,
  and any patch not newer than the document (or the last patch) is dropped, because the hub does not
  queue desired changes for an offline device and a GET after each connect is the only way to catch up;
* one reported patch in flight at a time (the hub may apply parallel patches out of order);
* bounded retries with exponential backoff and jitter for 429 and 5xx answers and for missing answers;
* direct methods: requests in, responses out.
"""

from __future__ import annotations

import collections
import itertools
import json
import logging
import random
import urllib.parse
from collections.abc import Mapping
from typing import Any

import attrs

from ota_jobs.azure._errors import TwinDocumentError
from ota_jobs.azure._json import check_twin_patch, json_depth, load_json

__all__ = [
    "DesiredPatch",
    "MethodCall",
    "Outgoing",
    "ReportedAccepted",
    "RequestFailed",
    "RetryPolicy",
    "TwinCore",
    "TwinDocument",
    "TwinEvent",
    "TwinStep",
    "parse_topic_query",
]

_log = logging.getLogger(__name__)

TWIN_RESPONSE_FILTER = "$iothub/twin/res/#"
DESIRED_PATCH_FILTER = "$iothub/twin/PATCH/properties/desired/#"
METHOD_REQUEST_FILTER = "$iothub/methods/POST/#"
_RES_PREFIX = "$iothub/twin/res/"
_DESIRED_PREFIX = "$iothub/twin/PATCH/properties/desired/"
_METHOD_PREFIX = "$iothub/methods/POST/"
_MAX_TWIN_DOCUMENT = 96 * 1024
_MAX_METHOD_PAYLOAD = 128 * 1024
_MAX_TOPIC = 1024
_MAX_DEPTH = 12
_METHOD_NAME_FORBIDDEN = set('$()<>@,;:\\"/[]?={} \t')


@attrs.frozen
class Outgoing:
    """A message the adapter must publish (QoS 1)."""

    topic: str
    payload: bytes


@attrs.frozen
class TwinDocument:
    """The full twin from a GET: desired and reported sections without their ``$version``."""

    desired: Mapping[str, Any]
    reported: Mapping[str, Any]
    desired_version: int
    reported_version: int | None


@attrs.frozen
class DesiredPatch:
    """A desired-property patch newer than everything seen so far (``$version`` removed)."""

    patch: Mapping[str, Any]
    version: int


@attrs.frozen
class ReportedAccepted:
    """The hub accepted the reported patch with this ticket; ``version`` is the new reported version."""

    ticket: int
    version: int | None


@attrs.frozen
class RequestFailed:
    """A GET (ticket 0) or reported patch failed for good: error status or retries ran out (0: no answer)."""

    ticket: int
    kind: str
    status: int
    reason: str


@attrs.frozen
class MethodCall:
    """A direct-method request: answer it with ``TwinCore.method_response(rid, ...)``."""

    name: str
    rid: str
    payload: Any


TwinEvent = TwinDocument | DesiredPatch | ReportedAccepted | RequestFailed | MethodCall


@attrs.frozen
class TwinStep:
    """What one call into the core produced: events for the application, messages to publish."""

    events: tuple[TwinEvent, ...] = ()
    outgoing: tuple[Outgoing, ...] = ()


@attrs.frozen
class RetryPolicy:
    """Bounded exponential backoff with jitter for 429/5xx answers and unanswered requests."""

    max_attempts: int = attrs.field(default=5, validator=attrs.validators.in_(range(1, 101)))
    initial_delay: float = 0.5
    max_delay: float = 30.0
    jitter: float = 0.2
    response_timeout: float = 15.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Delay before retry number ``attempt`` (1-based), capped, with +/- ``jitter`` spread."""
        base = min(self.max_delay, self.initial_delay * (2.0 ** (attempt - 1)))
        return max(0.0, base * (1.0 + self.jitter * (2.0 * rng.random() - 1.0)))


def parse_topic_query(topic: str) -> tuple[str, dict[str, str]]:
    """Split ``path/?k=v&k2=v2`` into the path and its URL-decoded properties."""
    path, sep, query = topic.partition("?")
    props: dict[str, str] = {}
    if sep:
        for part in query.split("&"):
            if not part:
                continue
            key, _, value = part.partition("=")
            props[urllib.parse.unquote(key)] = urllib.parse.unquote(value)
    return path, props


def _parse_int(text: str | None, what: str) -> int:
    if text is None or not text.isascii() or not text.isdigit() or len(text) > 18:
        raise TwinDocumentError(f"{what} is not a non-negative integer: {text!r:.40}")
    return int(text)


def _version_of(section: Any, what: str) -> int:
    if not isinstance(section, Mapping):
        raise TwinDocumentError(f"{what} must be a JSON object")
    version = section.get("$version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise TwinDocumentError(f"{what} has no valid $version")
    return version


def _strip_version(section: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in section.items() if k not in ("$version", "$metadata")}


@attrs.define
class _Request:
    kind: str
    ticket: int
    body: bytes
    attempts: int = 0
    sent_at: float = 0.0
    due: float | None = None
    rid: str = ""


class TwinCore:
    """Twin protocol state for one device connection; not thread-safe (one worker drives it)."""

    def __init__(self, *, retry: RetryPolicy | None = None, rng: random.Random | None = None) -> None:
        self._retry = retry or RetryPolicy()
        self._rng = rng or random.Random()
        self._rids = itertools.count(1)
        # A per-instance prefix keeps $rid values unique across restarts of the device.
        self._rid_prefix = f"{self._rng.getrandbits(32):08x}-"
        self._tickets = itertools.count(1)
        self._by_rid: dict[str, _Request] = {}
        self._get: _Request | None = None
        self._reported_queue: collections.deque[_Request] = collections.deque()
        self._reported_inflight: _Request | None = None
        self._desired_version: int | None = None
        self._held: list[DesiredPatch] = []

    # --- introspection ---------------------------------------------------------------------------

    @property
    def subscriptions(self) -> tuple[str, ...]:
        """The three filters to subscribe to before anything is sent (of the hub's five)."""
        return (TWIN_RESPONSE_FILTER, DESIRED_PATCH_FILTER, METHOD_REQUEST_FILTER)

    @property
    def desired_version(self) -> int | None:
        """The newest desired ``$version`` seen (document or patch)."""
        return self._desired_version

    @property
    def waiting_for_document(self) -> bool:
        """True while a GET is outstanding (desired patches are held until it answers)."""
        return self._get is not None

    @property
    def reported_backlog(self) -> int:
        """Reported patches waiting or in flight."""
        return len(self._reported_queue) + (1 if self._reported_inflight is not None else 0)

    def next_deadline(self) -> float | None:
        """The earliest monotonic time at which ``poll`` has something to do (retry or timeout)."""
        times: list[float] = []
        for req in self._active():
            if req.due is not None:
                times.append(req.due)
            elif req.attempts:
                times.append(req.sent_at + self._retry.response_timeout)
        return min(times, default=None)

    def _active(self) -> list[_Request]:
        return [r for r in (self._get, self._reported_inflight) if r is not None]

    # --- outgoing --------------------------------------------------------------------------------

    def request_twin(self, now: float) -> TwinStep:
        """Ask for the full twin (after every connect); desired patches are held until it answers."""
        if self._get is not None:
            return TwinStep()
        self._get = _Request(kind="get", ticket=0, body=b"")
        return TwinStep(outgoing=(self._send(self._get, now),))

    def patch_reported(self, patch: Mapping[str, Any], now: float) -> tuple[int, TwinStep]:
        """Queue a reported patch; returns its ticket and what to publish now (nothing while one is out)."""
        body = check_twin_patch(patch, TwinDocumentError)
        request = _Request(kind="reported", ticket=next(self._tickets), body=body)
        self._reported_queue.append(request)
        return request.ticket, TwinStep(outgoing=self._next_reported(now))

    def method_response(self, rid: str, status: int, payload: Any = None) -> Outgoing:
        """The answer to a direct method: any integer status and a JSON payload (``None`` sends ``null``)."""
        if isinstance(status, bool) or not isinstance(status, int):
            raise TwinDocumentError("a method status must be an integer")
        body = load_json_dump(payload)
        if len(body) > _MAX_METHOD_PAYLOAD:
            raise TwinDocumentError("a method response is limited to 128 KB")
        return Outgoing(f"$iothub/methods/res/{status}/?$rid={urllib.parse.quote(rid, safe='')}", body)

    def reconnected(self, now: float) -> TwinStep:
        """After a reconnect: resend what was in flight (new ``$rid``) and GET the twin again."""
        outgoing: list[Outgoing] = []
        self._by_rid.clear()
        if self._reported_inflight is not None and self._reported_inflight.due is None:
            outgoing.append(self._send(self._reported_inflight, now, count=False))
        if self._get is not None:
            outgoing.append(self._send(self._get, now, count=False))
        else:
            outgoing.extend(self.request_twin(now).outgoing)
        return TwinStep(outgoing=tuple(outgoing))

    def _send(self, request: _Request, now: float, *, count: bool = True) -> Outgoing:
        if request.rid:
            self._by_rid.pop(request.rid, None)
        request.rid = f"{self._rid_prefix}{next(self._rids)}"
        if count or request.attempts == 0:
            request.attempts += 1
        request.sent_at = now
        request.due = None
        self._by_rid[request.rid] = request
        if request.kind == "get":
            return Outgoing(f"$iothub/twin/GET/?$rid={request.rid}", request.body)
        return Outgoing(f"$iothub/twin/PATCH/properties/reported/?$rid={request.rid}", request.body)

    def _next_reported(self, now: float) -> tuple[Outgoing, ...]:
        if self._reported_inflight is not None or not self._reported_queue:
            return ()
        self._reported_inflight = self._reported_queue.popleft()
        return (self._send(self._reported_inflight, now),)

    # --- time ------------------------------------------------------------------------------------

    def poll(self, now: float) -> TwinStep:
        """Send retries that are due and turn unanswered requests into retries or failures."""
        events: list[TwinEvent] = []
        outgoing: list[Outgoing] = []
        for request in self._active():
            if request.due is not None:
                if now >= request.due:
                    outgoing.append(self._send(request, now))
            elif request.attempts and now - request.sent_at >= self._retry.response_timeout:
                self._by_rid.pop(request.rid, None)
                self._retry_or_fail(request, 0, "no answer from the hub", now,
                                    events=events, outgoing=outgoing)
        return TwinStep(tuple(events), tuple(outgoing))

    def _retry_or_fail(
        self, request: _Request, status: int, reason: str, now: float, *,
        events: list[TwinEvent], outgoing: list[Outgoing],
    ) -> None:
        if request.attempts < self._retry.max_attempts:
            request.due = now + self._retry.delay(request.attempts, self._rng)
            _log.info("twin %s got %s (%s); retry %d in %.2fs", request.kind, status or "no answer",
                      reason, request.attempts, request.due - now)
            return
        self._fail(request, status, f"{reason} after {request.attempts} attempts", now,
                   events=events, outgoing=outgoing)

    def _fail(
        self, request: _Request, status: int, reason: str, now: float, *,
        events: list[TwinEvent], outgoing: list[Outgoing],
    ) -> None:
        _log.warning("twin %s failed: status %s, %s", request.kind, status, reason)
        events.append(RequestFailed(request.ticket, request.kind, status, reason))
        if request is self._get:
            self._get = None
            events.extend(self._release_held(None))
        elif request is self._reported_inflight:
            self._reported_inflight = None
            outgoing.extend(self._next_reported(now))

    # --- incoming --------------------------------------------------------------------------------

    def receive(self, topic: str, payload: bytes, now: float) -> TwinStep:
        """Consume one received message; raises ``TwinDocumentError`` for a malformed unsolicited message."""
        if len(topic) > _MAX_TOPIC:
            raise TwinDocumentError("topic too long")
        if topic.startswith(_RES_PREFIX):
            return self._on_response(topic, payload, now)
        if topic.startswith(_DESIRED_PREFIX):
            return TwinStep(events=self._on_desired(topic, payload))
        if topic.startswith(_METHOD_PREFIX):
            return TwinStep(events=(self._on_method(topic, payload),))
        _log.debug("ignoring message on %s", topic[:120])
        return TwinStep()

    def _on_response(self, topic: str, payload: bytes, now: float) -> TwinStep:
        path, props = parse_topic_query(topic)
        status = _parse_int(path[len(_RES_PREFIX):].strip("/"), "twin response status")
        rid = props.get("$rid")
        request = self._by_rid.pop(rid, None) if rid is not None else None
        if request is None:
            _log.info("ignoring twin response for unknown $rid %r", rid)
            return TwinStep()
        events: list[TwinEvent] = []
        outgoing: list[Outgoing] = []
        if status == 429 or status >= 500:
            self._retry_or_fail(request, status, "throttled" if status == 429 else "server error",
                                now, events=events, outgoing=outgoing)
        elif status >= 300:
            self._fail(request, status, "rejected by the hub", now, events=events, outgoing=outgoing)
        elif request.kind == "get":
            try:
                document = self._decode_document(payload)
            except TwinDocumentError as exc:
                self._fail(request, status, str(exc), now, events=events, outgoing=outgoing)
            else:
                self._get = None
                events.append(document)
                events.extend(self._release_held(document.desired_version))
        else:
            version: int | None = None
            if "$version" in props:
                try:
                    version = _parse_int(props["$version"], "reported $version")
                except TwinDocumentError:
                    _log.info("ignoring malformed $version in %s", topic[:120])
            events.append(ReportedAccepted(request.ticket, version))
            self._reported_inflight = None
            outgoing.extend(self._next_reported(now))
        return TwinStep(tuple(events), tuple(outgoing))

    def _decode_document(self, payload: bytes) -> TwinDocument:
        body = load_json(payload, TwinDocumentError, limit=_MAX_TWIN_DOCUMENT, what="twin document")
        if not isinstance(body, Mapping) or json_depth(body) > _MAX_DEPTH:
            raise TwinDocumentError("a twin document must be a JSON object of bounded depth")
        desired = body.get("desired", {"$version": 0})
        desired_version = _version_of(desired, "desired")
        reported = body.get("reported", {})
        if not isinstance(reported, Mapping):
            raise TwinDocumentError("reported must be a JSON object")
        reported_version = _version_of(reported, "reported") if "$version" in reported else None
        return TwinDocument(_strip_version(desired), _strip_version(reported), desired_version,
                            reported_version)

    def _release_held(self, document_version: int | None) -> list[TwinEvent]:
        if document_version is not None:
            self._desired_version = max(document_version, self._desired_version or 0)
        held, self._held = self._held, []
        events: list[TwinEvent] = []
        for patch in sorted(held, key=lambda p: p.version):
            if self._desired_version is not None and patch.version <= self._desired_version:
                _log.info("dropping desired patch $version %d: not newer than %d", patch.version,
                          self._desired_version)
                continue
            self._desired_version = patch.version
            events.append(patch)
        return events

    def _on_desired(self, topic: str, payload: bytes) -> tuple[TwinEvent, ...]:
        _, props = parse_topic_query(topic)
        version = _parse_int(props.get("$version"), "desired patch $version")
        body = load_json(payload, TwinDocumentError, limit=_MAX_TWIN_DOCUMENT, what="desired patch")
        if not isinstance(body, Mapping) or json_depth(body) > _MAX_DEPTH:
            raise TwinDocumentError("a desired patch must be a JSON object of bounded depth")
        if "desired" in body and isinstance(body["desired"], Mapping) and "$version" in body["desired"]:
            body = body["desired"]  # a full document delivered as a patch
        patch = DesiredPatch(_strip_version(body), version)
        if self._get is not None:
            self._held.append(patch)
            return ()
        if self._desired_version is not None and version <= self._desired_version:
            _log.info("dropping desired patch $version %d: not newer than %d", version, self._desired_version)
            return ()
        self._desired_version = version
        return (patch,)

    def _on_method(self, topic: str, payload: bytes) -> MethodCall:
        path, props = parse_topic_query(topic)
        name = path[len(_METHOD_PREFIX):].rstrip("/")
        if not name or len(name) > 128 or any(c in _METHOD_NAME_FORBIDDEN or not c.isprintable()
                                              or not c.isascii() for c in name):
            raise TwinDocumentError(f"invalid direct method name {name[:40]!r}")
        rid = props.get("$rid")
        if not rid or len(rid) > 128:
            raise TwinDocumentError("a direct method request has no $rid")
        body: Any = None
        if payload.strip():
            body = load_json(payload, TwinDocumentError, limit=_MAX_METHOD_PAYLOAD, what="method payload")
        return MethodCall(name, rid, body)


def load_json_dump(value: Any) -> bytes:
    """Compact JSON encoding of a method payload, wrapping encoding failures in ``TwinDocumentError``."""
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:
        raise TwinDocumentError(f"payload is not JSON-serialisable: {exc}") from exc

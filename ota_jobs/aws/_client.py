"""The AWS IoT Jobs client: drives ``JobsCore`` and ``JobTracker`` over ``ota_core``'s MQTT connection.

It implements ``ota_core.protocols.JobSource``: ``start`` subscribes to the thing's notify, notify-next and
reply topics, ``request_next`` asks for the next pending job (DescribeJobExecution ``$next`` by default, so
that the job stays QUEUED and can still be REJECTED if no parser accepts it; StartNext on request),
``report`` sends a status update and waits for the service to accept it. Replies are correlated by
``clientToken``; replies meant for another client token or another thing are ignored. The synchronous
methods ``get_pending``, ``start_next``, ``describe`` and ``update`` give direct access to the API.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

from ota_core.errors import OtaError
from ota_core.models import JobEvent, JobStatus, StatusReport
from ota_core.mqtt import MqttConnection, MqttMessage, Subscription
from ota_jobs.aws._core import JobsCore, JobsEvent, JobsReply, OutgoingRequest, ReplyBody
from ota_jobs.aws._errors import JobsMessageError, JobsVersionMismatchError
from ota_jobs.aws._identifiers import NEXT_JOB_ID
from ota_jobs.aws._messages import (
    ExecutionReply,
    JobExecutionsChanged,
    PendingJobsReply,
    UpdateReply,
)
from ota_jobs.aws._topics import JobsApi
from ota_jobs.aws._tracker import JobTracker

__all__ = ["AwsJobsClient"]

_log = logging.getLogger(__name__)
_MAX_ASYNC_TOKENS = 32


class AwsJobsClient:
    """A Jobs client for one thing over an already connected ``MqttConnection``.

    ``use_start_next`` makes ``request_next`` use StartNextPendingJobExecution (the job moves to
    IN_PROGRESS at once) instead of DescribeJobExecution ``$next``. ``use_expected_version`` sends the
    last known ``versionNumber`` as ``expectedVersion`` with every update (off by default: a stale
    version makes the service refuse the update). ``on_event`` callbacks run on the connection's
    dispatcher thread, one at a time.
    """

    def __init__(
        self,
        connection: MqttConnection,
        thing_name: str,
        *,
        request_timeout: float = 10.0,
        use_start_next: bool = False,
        use_expected_version: bool = False,
        step_timeout_in_minutes: int | None = None,
        token_prefix: str | None = None,
    ) -> None:
        self._connection = connection
        self._core = JobsCore(thing_name, token_prefix=token_prefix)
        self._tracker = JobTracker(self._core.thing_name)
        self._timeout = request_timeout
        self._use_start_next = use_start_next
        self._use_expected_version = use_expected_version
        self._step_timeout = step_timeout_in_minutes
        self._lock = threading.RLock()
        self._on_event: Callable[[JobEvent], None] | None = None
        self._subscriptions: list[Subscription] = []
        self._async_tokens: dict[str, JobsApi] = {}
        self._listening = False

    @property
    def thing_name(self) -> str:
        """The thing this client speaks for."""
        return self._core.thing_name

    @property
    def core(self) -> JobsCore:
        """The sans-I/O core (topics, encoders, decoders) this client drives."""
        return self._core

    @property
    def tracker(self) -> JobTracker:
        """The job bookkeeping (active job, known versions)."""
        return self._tracker

    # --- JobSource -------------------------------------------------------------------------------

    def start(self, on_event: Callable[[JobEvent], None]) -> None:
        """Subscribe to the thing's Jobs topics and deliver job events to ``on_event``."""
        with self._lock:
            if self._listening:
                self._on_event = on_event
                return
            self._on_event = on_event
            topics = self._core.topics
            token_of = self._token_of
            try:
                for reply_filter in topics.reply_filters():
                    self._subscriptions.append(self._connection.add_reply_route(reply_filter, token_of))
                    self._subscriptions.append(self._connection.subscribe(reply_filter, self._on_message))
                for event_topic in (topics.notify_next(), topics.notify()):
                    self._subscriptions.append(self._connection.subscribe(event_topic, self._on_message))
            except OtaError:
                self._drop_subscriptions()
                raise
            self._connection.add_connection_listener(self._on_connection_change)
            self._listening = True

    def request_next(self) -> None:
        """Ask for the next pending job; the answer arrives as a job event (NEW or NOTHING_PENDING)."""
        if self._use_start_next:
            request = self._core.start_next(step_timeout_in_minutes=self._step_timeout)
        else:
            request = self._core.describe(NEXT_JOB_ID)
        with self._lock:
            if len(self._async_tokens) >= _MAX_ASYNC_TOKENS:
                self._async_tokens.pop(next(iter(self._async_tokens)))
            self._async_tokens[request.client_token] = request.api
        self._connection.publish(request.topic, request.payload, qos=1, wait=True, timeout=self._timeout)

    def report(self, report: StatusReport) -> None:
        """Send ``report`` as an UpdateJobExecution and wait until the service accepts it.

        Raises a ``JobsRejectedError`` subclass when the service refuses (for example
        ``JobsInvalidStateTransitionError`` for REJECTED after IN_PROGRESS), ``RequestTimeoutError`` when
        no reply comes.
        """
        self.update(report.job_id, report.status, status_details=report.details or None)

    def stop(self) -> None:
        """Unsubscribe and stop delivering events."""
        with self._lock:
            self._on_event = None
            self._listening = False
            self._drop_subscriptions()

    # --- direct API ------------------------------------------------------------------------------

    def get_pending(self) -> PendingJobsReply:
        """GetPendingJobExecutions."""
        body = self._exchange(self._core.get_pending())
        assert isinstance(body, PendingJobsReply)
        return body

    def start_next(
        self, *, status_details: Mapping[str, str] | None = None, step_timeout_in_minutes: int | None = None
    ) -> ExecutionReply:
        """StartNextPendingJobExecution; the tracker sees the answer (events only for what is new)."""
        request = self._core.start_next(status_details=status_details, step_timeout_in_minutes=step_timeout_in_minutes)
        body = self._exchange(request)
        assert isinstance(body, ExecutionReply)
        self._observe_execution_reply(body)
        return body

    def describe(
        self,
        job_id: str = NEXT_JOB_ID,
        *,
        execution_number: int | None = None,
        include_job_document: bool = True,
    ) -> ExecutionReply:
        """DescribeJobExecution of ``job_id`` (``$next`` by default)."""
        request = self._core.describe(
            job_id, execution_number=execution_number, include_job_document=include_job_document
        )
        body = self._exchange(request)
        assert isinstance(body, ExecutionReply)
        if job_id == NEXT_JOB_ID:
            self._observe_execution_reply(body)
        return body

    def update(
        self,
        job_id: str,
        status: JobStatus | str,
        *,
        status_details: Mapping[str, str] | None = None,
        expected_version: int | None = None,
        step_timeout_in_minutes: int | None = None,
        include_job_document: bool = False,
    ) -> UpdateReply:
        """UpdateJobExecution; with ``use_expected_version`` the tracked version is sent unless given."""
        with self._lock:
            if expected_version is None and self._use_expected_version:
                expected_version = self._tracker.version_of(job_id)
        if step_timeout_in_minutes is None and status == JobStatus.IN_PROGRESS:
            step_timeout_in_minutes = self._step_timeout
        request = self._core.update(  # validates everything, including the status, before sending
            job_id,
            status,
            status_details=status_details,
            expected_version=expected_version,
            step_timeout_in_minutes=step_timeout_in_minutes,
            include_job_document=include_job_document,
        )
        final = JobStatus(status).is_terminal
        if final:
            with self._lock:
                self._tracker.begin_final_update(job_id)
        try:
            body = self._exchange(request)
        except JobsVersionMismatchError as error:
            with self._lock:
                self._tracker.observe_version(job_id, error.execution_state)
            raise
        finally:
            if final:
                with self._lock:
                    self._tracker.end_final_update(job_id)
        assert isinstance(body, UpdateReply)
        with self._lock:
            self._tracker.observe_update(job_id, JobStatus(status), body.execution_state)
        return body

    # --- plumbing --------------------------------------------------------------------------------

    def _token_of(self, message: MqttMessage) -> str | None:
        return self._core.client_token_of(message.topic, message.payload)

    def _exchange(self, request: OutgoingRequest) -> ReplyBody:
        message = self._connection.request(
            request.topic, request.payload, token=request.client_token, timeout=self._timeout
        )
        incoming = self._core.receive(message.topic, message.payload)
        if not isinstance(incoming, JobsReply):
            raise JobsMessageError(
                "the reply to a Jobs request came on an unexpected topic", details={"topic": message.topic}
            )
        if incoming.error is not None:
            raise incoming.error
        assert incoming.body is not None
        return incoming.body

    def _drop_subscriptions(self) -> None:
        subscriptions, self._subscriptions = self._subscriptions, []
        for subscription in subscriptions:
            try:
                self._connection.unsubscribe(subscription)
            except OtaError as error:
                _log.warning("could not unsubscribe from %s: %s", subscription.topic_filter, error)

    def _emit(self, events: list[JobEvent]) -> None:
        callback = self._on_event
        if callback is None:
            return
        for event in events:
            callback(event)

    def _observe_execution_reply(self, body: ExecutionReply) -> None:
        with self._lock:
            self._emit(self._tracker.observe_next(body.execution, body.timestamp))

    def _on_connection_change(self, connected: bool) -> None:
        if not connected or not self._listening:
            return
        _log.info("connection restored: asking for the next job of %s again", self.thing_name)
        try:
            self.request_next()
        except OtaError as error:
            _log.warning("could not ask for the next job after a reconnect: %s", error)

    def _on_message(self, message: MqttMessage) -> None:
        try:
            incoming = self._core.receive(message.topic, message.payload)
        except JobsMessageError as error:
            _log.warning("ignoring a malformed Jobs message on %s: %s", message.topic, error)
            return
        if incoming is None:
            return
        with self._lock:
            if isinstance(incoming, JobsEvent):
                body = incoming.body
                if isinstance(body, JobExecutionsChanged):
                    self._emit(self._tracker.observe_pending(body))
                else:
                    self._emit(self._tracker.observe_next(body.execution, body.timestamp))
                return
            self._on_async_reply(incoming)

    def _on_async_reply(self, reply: JobsReply) -> None:
        token = reply.client_token
        if token is None or token not in self._async_tokens:
            _log.debug("ignoring a Jobs reply for another client token (%s)", token)
            return
        del self._async_tokens[token]
        if reply.error is not None:
            _log.warning("the request for the next job was rejected: %s", reply.error)
            return
        if isinstance(reply.body, ExecutionReply):
            self._emit(self._tracker.observe_next(reply.body.execution, reply.body.timestamp, explicit=True))

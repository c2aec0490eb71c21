"""The AWS IoT control-plane operations the stand-in serves, registered on a ``ControlPlaneServer``.

Paths, query members and response shapes follow botocore's ``iot`` service model (2015-05-28).
Operations that change executions hand their notifications to ``publish`` so devices hear about them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ota_cloud.aws._control_plane import ControlPlaneServer, OperationRequest, OperationResponse
from ota_cloud.aws._errors import ServiceError
from ota_cloud.aws._service import JobsService, Outgoing

__all__ = ["register_jobs_operations"]

Publish = Callable[[Sequence[Outgoing]], None]
_DEFAULT_PAGE = 100


def _flag(request: OperationRequest, name: str) -> bool:
    return request.query.get(name, "false").lower() == "true"


def _int_query(request: OperationRequest, name: str) -> int | None:
    value = request.query.get(name)
    if value is None:
        return None
    if not value.isdigit():
        raise ServiceError.invalid(f"{name} must be a number")
    return int(value)


def _page(items: list[dict[str, Any]], request: OperationRequest, key: str) -> dict[str, Any]:
    """Slice ``items`` by ``maxResults`` and ``nextToken`` (an offset), as AWS list operations do."""
    size = _int_query(request, "maxResults") or _DEFAULT_PAGE
    if not 1 <= size <= 250:
        raise ServiceError.invalid("maxResults must be in 1..250")
    token = request.query.get("nextToken")
    start = 0
    if token is not None:
        if not token.isdigit():
            raise ServiceError.invalid("invalid nextToken")
        start = int(token)
    body: dict[str, Any] = {key: items[start : start + size]}
    if start + size < len(items):
        body["nextToken"] = str(start + size)
    return body


def register_jobs_operations(server: ControlPlaneServer, service: JobsService, publish: Publish) -> None:
    """Register things and jobs operations of the ``iot`` API on ``server``."""

    def create_thing(request: OperationRequest) -> dict[str, Any]:
        payload = request.body.get("attributePayload") or {}
        attributes = payload.get("attributes") if isinstance(payload, dict) else None
        return service.create_thing(request.path_params["thingName"], attributes)

    def create_job(request: OperationRequest) -> dict[str, Any]:
        reply, out = service.create_job(request.path_params["jobId"], request.body)
        publish(out)
        return reply

    def cancel_job(request: OperationRequest) -> dict[str, Any]:
        reason = request.body.get("reasonCode")
        comment = request.body.get("comment")
        reply, out = service.cancel_job(
            request.path_params["jobId"],
            force=_flag(request, "force"),
            reason_code=reason if isinstance(reason, str) else None,
            comment=comment if isinstance(comment, str) else None,
        )
        publish(out)
        return reply

    def delete_job(request: OperationRequest) -> OperationResponse:
        publish(service.delete_job(request.path_params["jobId"], force=_flag(request, "force")))
        return OperationResponse(None)

    def list_jobs(request: OperationRequest) -> dict[str, Any]:
        return _page(service.list_jobs(request.query.get("status")), request, "jobs")

    def describe_job_execution(request: OperationRequest) -> dict[str, Any]:
        return service.describe_job_execution(
            request.path_params["jobId"], request.path_params["thingName"], _int_query(request, "executionNumber")
        )

    def list_for_thing(request: OperationRequest) -> dict[str, Any]:
        items = service.list_job_executions_for_thing(
            request.path_params["thingName"], request.query.get("status"), request.query.get("jobId")
        )
        return _page(items, request, "executionSummaries")

    def list_for_job(request: OperationRequest) -> dict[str, Any]:
        items = service.list_job_executions_for_job(request.path_params["jobId"], request.query.get("status"))
        return _page(items, request, "executionSummaries")

    server.register_operation("CreateThing", "POST", "/things/{thingName}", create_thing)
    server.register_operation(
        "DescribeThing", "GET", "/things/{thingName}", lambda r: service.describe_thing(r.path_params["thingName"])
    )
    server.register_operation("CreateJob", "PUT", "/jobs/{jobId}", create_job)
    server.register_operation(
        "DescribeJob", "GET", "/jobs/{jobId}", lambda r: service.describe_job(r.path_params["jobId"])
    )
    server.register_operation(
        "GetJobDocument",
        "GET",
        "/jobs/{jobId}/job-document",
        lambda r: service.get_job_document(r.path_params["jobId"]),
    )
    server.register_operation("ListJobs", "GET", "/jobs", list_jobs)
    server.register_operation("CancelJob", "PUT", "/jobs/{jobId}/cancel", cancel_job)
    server.register_operation("DeleteJob", "DELETE", "/jobs/{jobId}", delete_job)
    server.register_operation("DescribeJobExecution", "GET", "/things/{thingName}/jobs/{jobId}", describe_job_execution)
    server.register_operation("ListJobExecutionsForThing", "GET", "/things/{thingName}/jobs", list_for_thing)
    server.register_operation("ListJobExecutionsForJob", "GET", "/jobs/{jobId}/things", list_for_job)

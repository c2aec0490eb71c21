"""boto3 against the stand-in's control plane over loopback HTTP: shapes, errors, paging, extensions."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator, Sequence
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from ota_cloud.aws import (
    ControlPlaneServer,
    JobsService,
    OperationRequest,
    OperationResponse,
    Outgoing,
    ServiceError,
    thing_arn,
)
from ota_cloud.aws._operations import register_jobs_operations


class Plane:
    def __init__(self) -> None:
        self.service = JobsService()
        self.published: list[Outgoing] = []
        self.server = ControlPlaneServer()
        register_jobs_operations(self.server, self.service, self.publish)

    def publish(self, messages: Sequence[Outgoing]) -> None:
        self.published.extend(messages)


@pytest.fixture
def plane() -> Iterator[Plane]:
    plane = Plane()
    plane.server.start()
    try:
        yield plane
    finally:
        plane.server.close()


@pytest.fixture
def iot(plane: Plane) -> Any:
    return boto3.client(
        "iot",
        endpoint_url=plane.server.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def error_code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return str(excinfo.value.response["Error"]["Code"])


def test_things_and_jobs_round_trip(plane: Plane, iot: Any) -> None:
    created = iot.create_thing(thingName="dev:1", attributePayload={"attributes": {"model": "x1"}})
    assert created["thingArn"] == thing_arn("dev:1")
    described = iot.describe_thing(thingName="dev:1")
    assert described["attributes"] == {"model": "x1"}
    job = iot.create_job(
        jobId="job-1",
        targets=[thing_arn("dev:1")],
        document=json.dumps({"afr_ota": {}}),
        description="first",
        timeoutConfig={"inProgressTimeoutInMinutes": 30},
        presignedUrlConfig={"roleArn": "arn:aws:iam::123456789012:role/r", "expiresInSec": 300},
    )
    assert job["jobId"] == "job-1"
    assert job["description"] == "first"
    assert {m.topic for m in plane.published} == {"$aws/things/dev:1/jobs/notify", "$aws/things/dev:1/jobs/notify-next"}
    detail = iot.describe_job(jobId="job-1")["job"]
    assert detail["status"] == "IN_PROGRESS"
    assert detail["jobProcessDetails"]["numberOfQueuedThings"] == 1
    assert detail["timeoutConfig"] == {"inProgressTimeoutInMinutes": 30}
    assert detail["presignedUrlConfig"]["expiresInSec"] == 300
    assert detail["createdAt"].year >= 2024  # botocore parsed the timestamp
    assert json.loads(iot.get_job_document(jobId="job-1")["document"]) == {"afr_ota": {}}
    execution = iot.describe_job_execution(jobId="job-1", thingName="dev:1", executionNumber=1)["execution"]
    assert (execution["status"], execution["versionNumber"]) == ("QUEUED", 1)
    for_thing = iot.list_job_executions_for_thing(thingName="dev:1")["executionSummaries"]
    assert for_thing[0]["jobId"] == "job-1"
    assert for_thing[0]["jobExecutionSummary"]["status"] == "QUEUED"
    for_job = iot.list_job_executions_for_job(jobId="job-1", status="QUEUED")["executionSummaries"]
    assert for_job[0]["thingArn"] == thing_arn("dev:1")
    cancelled = iot.cancel_job(jobId="job-1", reasonCode="OOPS", comment="wrong image")
    assert cancelled["jobArn"].endswith("job/job-1")
    assert iot.describe_job(jobId="job-1")["job"]["reasonCode"] == "OOPS"
    iot.delete_job(jobId="job-1")
    assert iot.list_jobs()["jobs"] == []


def test_errors_as_boto3_sees_them(plane: Plane, iot: Any) -> None:
    with pytest.raises(ClientError) as caught:
        iot.describe_thing(thingName="ghost")
    assert error_code(caught) == "ResourceNotFoundException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    iot.create_thing(thingName="d")
    iot.create_job(jobId="j", targets=[thing_arn("d")], document="{}")
    with pytest.raises(ClientError) as caught:
        iot.create_job(jobId="j", targets=[thing_arn("d")], document="{}")
    assert error_code(caught) == "ResourceAlreadyExistsException"
    with pytest.raises(ClientError) as caught:
        iot.create_job(jobId="k", targets=[thing_arn("d")], document="not json")
    assert error_code(caught) == "InvalidRequestException"
    with pytest.raises(ClientError) as caught:
        iot.list_jobs(maxResults=5, nextToken="garbage")
    assert error_code(caught) == "InvalidRequestException"
    with pytest.raises(ClientError) as caught:
        iot.describe_job_execution(jobId="j", thingName="d", executionNumber=3)
    assert error_code(caught) == "ResourceNotFoundException"


def test_list_jobs_pages(plane: Plane, iot: Any) -> None:
    iot.create_thing(thingName="d")
    for index in range(7):
        iot.create_job(jobId=f"j{index}", targets=[thing_arn("d")], document="{}")
    first = iot.list_jobs(maxResults=3)
    assert [j["jobId"] for j in first["jobs"]] == ["j0", "j1", "j2"]
    assert "nextToken" in first
    paginator = iot.get_paginator("list_jobs")
    ids = [job["jobId"] for page in paginator.paginate(PaginationConfig={"PageSize": 2}) for job in page["jobs"]]
    assert ids == [f"j{index}" for index in range(7)]
    assert iot.list_jobs(status="COMPLETED")["jobs"] == []


def test_extension_point_and_raw_errors(plane: Plane) -> None:
    streams: dict[str, Any] = {}

    def create_stream(request: OperationRequest) -> OperationResponse:
        stream_id = request.path_params["streamId"]
        if stream_id in streams:
            raise ServiceError.exists("stream exists")
        streams[stream_id] = dict(request.body)
        return OperationResponse({"streamId": stream_id, "streamVersion": 1})

    plane.server.register_operation("CreateStream", "POST", "/streams/{streamId}", create_stream)
    assert "CreateStream" in plane.server.operations
    iot = boto3.client(
        "iot",
        endpoint_url=plane.server.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    reply = iot.create_stream(
        streamId="s1",
        files=[{"fileId": 0, "s3Location": {"bucket": "b", "key": "k"}}],
        roleArn="arn:aws:iam::123456789012:role/r",
    )
    assert reply["streamVersion"] == 1
    assert streams["s1"]["files"][0]["fileId"] == 0
    with pytest.raises(ClientError) as caught:
        iot.create_stream(
            streamId="s1",
            files=[{"fileId": 0, "s3Location": {"bucket": "b", "key": "k"}}],
            roleArn="arn:aws:iam::123456789012:role/r",
        )
    assert error_code(caught) == "ResourceAlreadyExistsException"
    status, body, _ = plane.server.dispatch("GET", "/nowhere", {}, b"")
    assert status == 404
    assert json.loads(body)["__type"] == "UnknownOperationException"
    status, body, _ = plane.server.dispatch("POST", "/things/x", {}, b"[1]")
    assert json.loads(body)["__type"] == "SerializationException"
    status, body, _ = plane.server.dispatch("POST", "/things/x", {}, b"{bad")
    assert json.loads(body)["__type"] == "SerializationException"
    request = urllib.request.Request(f"{plane.server.endpoint_url}/things/y", data=b"{}", method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:  # a plain HTTP client works too
        assert json.loads(response.read())["thingName"] == "y"

"""``ota cloud aws``: run the local AWS IoT Jobs stand-in and drive its control plane.

``serve`` runs the stand-in (MQTT data plane on ``--broker``, boto3-compatible control plane on
``--port``, state in ``--state``) until interrupted. The other subcommands are small boto3 clients of a
running stand-in (or of real AWS IoT, given its endpoint and credentials from the environment).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ota_cloud.aws import AwsIotStandIn, thing_arn
from ota_core.errors import ConfigurationError
from ota_orchestrators.cli._common import cloud_subparsers, wait_for_interrupt

__all__ = ["register"]

_DEFAULT_ENDPOINT = "http://127.0.0.1:8443"


def register(subparsers: Any) -> None:
    """Add ``ota cloud aws ...`` to the top-level subparsers."""
    aws = cloud_subparsers(subparsers).add_parser("aws", help="the local AWS IoT Jobs stand-in")
    commands = aws.add_subparsers(dest="aws_command", metavar="COMMAND")
    aws.set_defaults(handler=lambda _arguments: _help(aws))

    serve = commands.add_parser("serve", help="run the stand-in until Ctrl-C")
    serve.add_argument("--broker", required=True, help="MQTT broker URL, e.g. mqtt://127.0.0.1:1883")
    serve.add_argument("--state", type=Path, required=True, help="directory that keeps things and jobs")
    serve.add_argument("--port", type=int, default=8443, help="control-plane HTTP port on 127.0.0.1 (0: any)")
    serve.add_argument("--minute-seconds", type=float, default=60.0, help="length of a timeout minute")
    serve.set_defaults(handler=_serve)

    def client_command(name: str, help_text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = commands.add_parser(name, help=help_text)
        parser.add_argument("--endpoint", default=_DEFAULT_ENDPOINT, help="control-plane URL of the stand-in")
        return parser

    thing = client_command("create-thing", "register a thing")
    thing.add_argument("thing_name")
    thing.set_defaults(handler=_create_thing)

    job = client_command("create-job", "create a job for one or more things")
    job.add_argument("job_id")
    job.add_argument("--thing", action="append", required=True, help="target thing name (repeatable)")
    job.add_argument("--document", required=True, help="job document: a JSON text or @FILE")
    job.add_argument("--presigned-role", default=None, help="role ARN: enables presigned-URL placeholders")
    job.add_argument("--expires", type=int, default=1800, help="presigned URL lifetime in seconds")
    job.add_argument("--timeout-minutes", type=int, default=None, help="in-progress timeout of each execution")
    job.set_defaults(handler=_create_job)

    listing = client_command("list-jobs", "list jobs (JSON lines)")
    listing.add_argument("--status", default=None)
    listing.set_defaults(handler=_list_jobs)

    describe = client_command("describe-execution", "show one thing's execution of a job")
    describe.add_argument("job_id")
    describe.add_argument("thing_name")
    describe.set_defaults(handler=_describe_execution)

    cancel = client_command("cancel-job", "cancel a job")
    cancel.add_argument("job_id")
    cancel.add_argument("--force", action="store_true", help="also cancel executions in progress")
    cancel.set_defaults(handler=_cancel_job)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _serve(arguments: argparse.Namespace) -> int:
    standin = AwsIotStandIn(
        arguments.broker, arguments.state, port=arguments.port, minute_seconds=arguments.minute_seconds
    )
    with standin:
        print(f"AWS IoT stand-in: control plane {standin.endpoint_url}", flush=True)
        print(f"Jobs data plane on {arguments.broker}; state in {arguments.state}", flush=True)
        print("press Ctrl-C to stop", flush=True)
        wait_for_interrupt()
    return 0


def _client(endpoint: str) -> Any:
    import boto3  # noqa: PLC0415 - only the client subcommands need the sim extra

    return boto3.client(
        "iot",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - the stand-in does not check signatures
    )


def _call(call: Any, **kwargs: Any) -> Any:
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    try:
        return call(**kwargs)
    except ClientError as error:
        detail = error.response.get("Error", {})
        raise ConfigurationError(f"{detail.get('Code', 'Error')}: {detail.get('Message', '')}") from None
    except BotoCoreError as error:
        raise ConfigurationError(f"cannot reach the control plane: {error}") from None


def _print_json(data: Any) -> None:
    print(json.dumps(data, default=str, sort_keys=True), flush=True)


def _create_thing(arguments: argparse.Namespace) -> int:
    reply = _call(_client(arguments.endpoint).create_thing, thingName=arguments.thing_name)
    _print_json({"thingName": reply["thingName"], "thingArn": reply["thingArn"]})
    return 0


def _read_document(text: str) -> str:
    if text.startswith("@"):
        try:
            return Path(text[1:]).read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigurationError(f"cannot read the job document: {error}") from None
    return text


def _create_job(arguments: argparse.Namespace) -> int:
    options: dict[str, Any] = {
        "jobId": arguments.job_id,
        "targets": [thing_arn(name) for name in arguments.thing],
        "document": _read_document(arguments.document),
    }
    if arguments.presigned_role:
        options["presignedUrlConfig"] = {"roleArn": arguments.presigned_role, "expiresInSec": arguments.expires}
    if arguments.timeout_minutes:
        options["timeoutConfig"] = {"inProgressTimeoutInMinutes": arguments.timeout_minutes}
    reply = _call(_client(arguments.endpoint).create_job, **options)
    _print_json({"jobId": reply["jobId"], "jobArn": reply["jobArn"]})
    return 0


def _list_jobs(arguments: argparse.Namespace) -> int:
    options = {"status": arguments.status} if arguments.status else {}
    for job in _call(_client(arguments.endpoint).list_jobs, **options)["jobs"]:
        _print_json({"jobId": job["jobId"], "status": job["status"]})
    return 0


def _describe_execution(arguments: argparse.Namespace) -> int:
    reply = _call(
        _client(arguments.endpoint).describe_job_execution, jobId=arguments.job_id, thingName=arguments.thing_name
    )
    execution = reply["execution"]
    _print_json(
        {
            "jobId": execution["jobId"],
            "status": execution["status"],
            "statusDetails": execution.get("statusDetails", {}).get("detailsMap", {}),
            "versionNumber": execution["versionNumber"],
        }
    )
    return 0


def _cancel_job(arguments: argparse.Namespace) -> int:
    _call(_client(arguments.endpoint).cancel_job, jobId=arguments.job_id, force=arguments.force)
    _print_json({"jobId": arguments.job_id, "status": "CANCELED"})
    return 0

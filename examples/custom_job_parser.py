"""Register your own job-document parser next to the built-in ones.

A fleet that creates its AWS IoT jobs by hand often has its own document format. This example adds a
parser for ``{"acme_update": {...}}`` documents to the parser chain, in front of the built-in ``afr_ota``
and ``ota_http`` parsers, and shows the three outcomes: a plan, "not mine" (the next parser is tried),
and a typed error for a document that is ours but invalid (reported REJECTED with a reason).

    python examples/custom_job_parser.py                      # parse sample documents offline
    python examples/custom_job_parser.py --broker mqtt://127.0.0.1:1883
        # also: start the local AWS IoT stand-in, create a job with boto3, receive it on a device
        # client, parse it with the chain and report the result
"""

from __future__ import annotations

import argparse
import hashlib
import json
import queue
import re
import sys
import tempfile
from collections.abc import Mapping
from typing import Any

from ota_cloud.aws import AwsIotStandIn, thing_arn
from ota_core import (
    FileLocation,
    FileTarget,
    Integrity,
    JobDocumentError,
    JobEvent,
    JobEventKind,
    JobStatus,
    LocationKind,
    OtaError,
    StatusReport,
    UpdatePlan,
    Version,
)
from ota_core.mqtt import MqttConnection, MqttSettings
from ota_jobs.aws import AwsJobsClient
from ota_jobs.parsers import NoParserAcceptedError, ParserChain, default_parser_chain, rejection_report


class AcmeUpdateParser:
    """Parses ``{"acme_update": {"version": "2.1.0", "image": URL, "bytes": N, "sha256": HEX}}``."""

    name = "acme-update"

    def parse(self, event: JobEvent) -> UpdatePlan | None:
        body = event.document.get("acme_update")
        if body is None:
            return None  # not mine: the chain tries the next parser
        if not isinstance(body, Mapping):
            raise JobDocumentError("acme_update must be an object")
        image, size, digest, version = body.get("image"), body.get("bytes"), body.get("sha256"), body.get("version")
        if not isinstance(image, str) or not image.startswith("https://"):
            raise JobDocumentError("acme_update.image must be an https URL")
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise JobDocumentError("acme_update.bytes must be a positive integer")
        if not isinstance(digest, str) or re.fullmatch(r"[0-9a-f]{64}", digest) is None:
            raise JobDocumentError("acme_update.sha256 must be 64 lowercase hex digits")
        if not isinstance(version, str):
            raise JobDocumentError("acme_update.version must be a string")
        target = FileTarget(
            name="firmware.bin",
            size=size,
            locations=(FileLocation(LocationKind.HTTP, image),),
            integrity=Integrity(digests={"sha256": bytes.fromhex(digest)}),
        )
        return UpdatePlan(job_id=event.job_id or "", origin=self.name, files=(target,), version=Version.parse(version))


def build_chain() -> ParserChain:
    """The built-in parsers plus ours, ours tried first."""
    chain = default_parser_chain()
    chain.register(AcmeUpdateParser(), first=True)
    return chain


SAMPLES: dict[str, dict[str, Any]] = {
    "acme": {
        "acme_update": {
            "version": "2.1.0",
            "image": "https://updates.example.com/fw-2.1.0.bin",
            "bytes": 4096,
            "sha256": hashlib.sha256(b"x").hexdigest(),
        }
    },
    "acme-invalid": {"acme_update": {"version": "2.1.0", "image": "ftp://nope", "bytes": 1, "sha256": "00"}},
    "unknown": {"something_else": True},
}


def decide(chain: ParserChain, event: JobEvent) -> tuple[UpdatePlan | None, StatusReport | None]:
    """A plan to carry out, or the REJECTED report to send."""
    try:
        return chain.parse(event), None
    except (NoParserAcceptedError, JobDocumentError) as error:
        return None, rejection_report(event.job_id or "", error)


def offline() -> None:
    """Parse the sample documents and print what the chain decides."""
    chain = build_chain()
    print("parsers, in order:", ", ".join(parser.name for parser in chain.parsers))
    for job_id, document in SAMPLES.items():
        plan, report = decide(chain, JobEvent(kind=JobEventKind.NEW, job_id=job_id, document=document))
        if plan is not None:
            print(f"{job_id}: plan from {plan.origin}: version {plan.version}, {plan.total_size} bytes")
        elif report is not None:
            print(f"{job_id}: {report.status.value}: {report.details.get('code')} {report.details.get('reason')}")


def end_to_end(broker_url: str) -> None:
    """Run the chain on jobs delivered by the local AWS IoT stand-in over a real broker."""
    chain = build_chain()
    with tempfile.TemporaryDirectory() as state, AwsIotStandIn(broker_url, state) as standin:
        iot = standin.boto3_client()
        iot.create_thing(thingName="acme-device")
        events: queue.Queue[JobEvent] = queue.Queue()
        with MqttConnection(MqttSettings(broker_url=broker_url, client_id="acme-device")) as connection:
            client = AwsJobsClient(connection, "acme-device")
            client.start(events.put)
            for job_id in ("acme", "acme-invalid"):
                iot.create_job(jobId=job_id, targets=[thing_arn("acme-device")], document=json.dumps(SAMPLES[job_id]))
                client.request_next()
                event = events.get(timeout=10)
                while event.kind is not JobEventKind.NEW or event.job_id != job_id:
                    event = events.get(timeout=10)
                plan, report = decide(chain, event)
                if plan is not None:
                    client.report(StatusReport(event.job_id or "", JobStatus.IN_PROGRESS, {"step": "download"}))
                    client.report(StatusReport(event.job_id or "", JobStatus.SUCCEEDED, {"version": str(plan.version)}))
                elif report is not None:
                    client.report(report)
                status = iot.describe_job_execution(jobId=job_id, thingName="acme-device")["execution"]["status"]
                print(f"{job_id}: cloud says {status}")
            client.stop()


def main() -> int:
    """Parse the arguments and run the offline or end-to-end demonstration."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", help="MQTT broker URL: also run against the local AWS IoT stand-in")
    arguments = parser.parse_args()
    offline()
    if arguments.broker:
        try:
            end_to_end(arguments.broker)
        except OtaError as error:
            print(f"custom parser example failed: {error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""An AWS IoT Jobs device: real AWS IoT Core given an endpoint and certificates, or the local stand-in.

The device keeps its application in directory slots (``<root>/slots/A|B``) and takes OTA jobs made by
``CreateOTAUpdate`` (``afr_ota``, MQTT streams or HTTP) or hand-made jobs with the ``ota_http`` document.
Every file must carry an ECDSA P-256 / SHA-256 signature (``sig-sha256-ecdsa``) by the key whose public
half is given with ``--signing-key``, or by a code-signing certificate that chains to ``--code-signing-ca``.

Against AWS IoT Core (the thing, its certificate and policy exist; see docs/orchestrator-aws.md):

    python examples/aws_iot_device.py --root /var/lib/my-device \\
        --endpoint mqtts://abc123-ats.iot.eu-west-1.amazonaws.com:8883 --thing my-thing \\
        --ca AmazonRootCA1.pem --cert my-thing.cert.pem --key my-thing.private.key \\
        --signing-key release.pub.pem

Against the local stand-in (a private mosquitto, the Jobs stand-in and its stream service; it creates a
signed ``afr_ota`` job for the device, runs the update to the end and exits):

    python examples/aws_iot_device.py --local
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import sys
import tempfile
import threading
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ota_boot import DirectorySlots
from ota_core import ImageInfo, OtaError, VerificationError, Version
from ota_core.engine import EngineEvent, EngineEventKind
from ota_core.mqtt import MqttConnection, MqttSettings
from ota_core.protocols import SlotReader
from ota_orchestrators.aws import AwsOrchestrator, AwsSettings
from ota_verify import CertificateVerifier, KeyRing, PlanVerifier, load_certificates, load_public_key

_VERSION = re.compile(rb'^VERSION = "([0-9]+\.[0-9]+\.[0-9]+)"$', re.MULTILINE)


def make_bundle(version: str) -> bytes:
    """A stand-in application: a script that knows its version."""
    return f'#!/usr/bin/env python3\nVERSION = "{version}"\nprint("application", VERSION)\n'.encode()


class ScriptBundleValidator:
    """Reads the version line of the bundle, so the engine knows what runs (FreeRTOS' ``updatedBy`` check)."""

    def validate(self, slot: SlotReader) -> ImageInfo:
        data = slot.read(0, slot.size)
        match = _VERSION.search(data[:4096])
        if match is None:
            raise VerificationError("the bundle has no VERSION line")
        return ImageInfo(Version.parse(match.group(1).decode()), hashlib.sha256(data).digest())


def build_verifier(arguments: argparse.Namespace) -> PlanVerifier:
    """Signatures are required: by a trusted key, or by a code-signing certificate named in the job."""
    keys = KeyRing()
    if arguments.signing_key is not None:
        keys.add(load_public_key(arguments.signing_key.read_bytes(), source=str(arguments.signing_key)))
    certificates = None
    if arguments.code_signing_ca is not None:
        certificates = CertificateVerifier(load_certificates(arguments.code_signing_ca.read_bytes()))
    source = {path.name: path.read_bytes() for path in arguments.certfile}
    return PlanVerifier(key_ring=keys, certificates=certificates, certificate_source=source, require_signature=True)


class Device:
    """Runs the orchestrator; after the restart it asks for, starts it again over the same state."""

    def __init__(self, arguments: argparse.Namespace, verifier: PlanVerifier) -> None:
        self.arguments = arguments
        self.verifier = verifier
        self.restart_requested = threading.Event()
        self.finished = threading.Event()
        self.status = ""
        self.orchestrator: AwsOrchestrator | None = None

    def start(self) -> None:
        arguments = self.arguments
        slots = DirectorySlots(arguments.root / "app", validator=ScriptBundleValidator())
        slots.boot()  # the launcher's part: count a trial start, go back if the trial was never confirmed
        print(f"running {slots.state().running_version} (slot {slots.current_slot()})", flush=True)
        settings = AwsSettings(
            thing_name=arguments.thing,
            mqtt=MqttSettings(
                broker_url=arguments.endpoint,
                client_id=arguments.thing,
                ca_file=arguments.ca,
                cert_file=arguments.cert,
                key_file=arguments.key,
            ),
            state_dir=arguments.root / "state",
        )
        self.restart_requested.clear()
        self.orchestrator = AwsOrchestrator(
            settings,
            verifier=self.verifier,
            boot_control=slots,
            restart=self.restart_requested.set,
            self_test=lambda _context: slots.state().running_version is not None,
        )
        self.orchestrator.engine.add_listener(self._on_event)
        self.orchestrator.start()

    def _on_event(self, event: EngineEvent) -> None:
        if event.kind is EngineEventKind.PHASE:
            print(f"  {event.phase} {event.message}".rstrip(), flush=True)
        elif event.kind is EngineEventKind.FINISHED:
            self.status = str(event.status)
            print(f"job {event.job_id}: {self.status}", flush=True)
            self.finished.set()

    def run(self, *, until_finished: bool) -> str:
        """Serve jobs; restart when asked. With ``until_finished``, return after the first update ends."""
        self.start()
        try:
            while True:
                if self.restart_requested.wait(0.2):
                    assert self.orchestrator is not None
                    self.orchestrator.stop()
                    print("restarting", flush=True)
                    self.start()
                if until_finished and self.finished.is_set() and not self.restart_requested.wait(1.0):
                    return self.status
        finally:
            if self.orchestrator is not None:
                self.orchestrator.stop()


def run_local(arguments: argparse.Namespace) -> int:
    """Start a broker, the stand-in and its stream service; create a signed job for this device; update."""
    from ota_cloud import AwsIotStandIn, MosquittoBroker  # noqa: PLC0415 - only the local mode needs them
    from ota_cloud.aws import thing_arn  # noqa: PLC0415
    from ota_cloud.aws_streams import StreamDataPlane, StreamStore  # noqa: PLC0415

    root: Path = arguments.root
    key = ec.generate_private_key(ec.SECP256R1())
    key_file = root / "release.pub.pem"
    root.mkdir(parents=True, exist_ok=True)
    key_file.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    arguments.signing_key = key_file
    DirectorySlots.initialise(root / "app", make_bundle("1.0.0"), validator=ScriptBundleValidator())
    bundle = make_bundle("1.1.0")
    signature = base64.b64encode(key.sign(bundle, ec.ECDSA(hashes.SHA256()))).decode()
    streams = StreamStore()
    streams.create_stream("AFR_OTA-app-1-1-0", [{"fileId": 0, "data": bundle}])
    with MosquittoBroker(root / "broker") as broker, AwsIotStandIn(broker.url, root / "cloud") as standin:
        arguments.endpoint = broker.url
        with MqttConnection(MqttSettings(broker_url=broker.url, client_id="stream-service")) as connection:
            service = StreamDataPlane(connection, streams)
            service.start()
            standin.service.create_thing(arguments.thing)
            document = {
                "afr_ota": {
                    "protocols": ["MQTT"],
                    "streamname": "AFR_OTA-app-1-1-0",
                    "files": [
                        {
                            "filepath": "app.bin",
                            "filesize": len(bundle),
                            "fileid": 0,
                            "certfile": None,
                            "sig-sha256-ecdsa": signature,
                        }
                    ],
                }
            }
            _reply, out = standin.service.create_job(
                "app-1-1-0", {"document": json.dumps(document), "targets": [thing_arn(arguments.thing)]}
            )
            standin.publish(out)
            status = Device(arguments, build_verifier(arguments)).run(until_finished=True)
            service.stop()
            execution = standin.service.describe_job_execution("app-1-1-0", arguments.thing, None)["execution"]
    print(f"cloud: {execution['status']} {json.dumps(execution['statusDetails']['detailsMap'])}")
    return 0 if status == "SUCCEEDED" and execution["status"] == "SUCCEEDED" else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--local", action="store_true", help="run against a local stand-in and exit")
    parser.add_argument("--root", type=Path, default=None, help="where the slots and the state live")
    parser.add_argument("--endpoint", help="mqtts://<prefix>-ats.iot.<region>.amazonaws.com:8883")
    parser.add_argument("--thing", default="example-thing", help="thing name (also the MQTT client id)")
    parser.add_argument("--ca", default=None, help="Amazon root CA (PEM)")
    parser.add_argument("--cert", default=None, help="the thing's certificate (PEM)")
    parser.add_argument("--key", default=None, help="the thing's private key (PEM)")
    parser.add_argument("--signing-key", type=Path, default=None, help="public key that signs firmware (PEM)")
    parser.add_argument("--code-signing-ca", type=Path, default=None, help="root of code-signing certificates")
    parser.add_argument("--certfile", type=Path, action="append", default=[], help="a certificate named by jobs")
    arguments = parser.parse_args()
    try:
        if arguments.local:
            arguments.root = arguments.root or Path(tempfile.mkdtemp(prefix="ota-aws-device-"))
            return run_local(arguments)
        if not arguments.endpoint or arguments.root is None:
            parser.error("--endpoint and --root are needed (or --local)")
        if not (arguments.root / "app" / "current").exists():
            DirectorySlots.initialise(arguments.root / "app", make_bundle("1.0.0"), validator=ScriptBundleValidator())
        Device(arguments, build_verifier(arguments)).run(until_finished=False)
    except OtaError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

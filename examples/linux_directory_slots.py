"""A Linux application updated through directory slots, with a self-test that runs the new version.

The application is a Python script kept in ``<root>/slots/A|B/image.bin``; ``<root>/current`` points to the
slot the launcher starts. The example composes the AWS IoT Jobs reference orchestrator with:

- ``DirectorySlots`` (ota_boot) as the boot control: A/B directories, a trial record, atomic switch;
- ``ScriptBundleValidator``: reads ``VERSION = "x.y.z"`` from the script and hashes it, so the engine knows
  which version runs (the same-version / downgrade check on self-test needs it);
- a self-test that *runs the new script* with ``--self-test`` and expects exit status 0 within 10 s;
- a restart callback that does what a launcher does after ``restart``: ``slots.boot()`` then start again.

Run it against a private broker and the local AWS IoT stand-in (needs mosquitto):

    python examples/linux_directory_slots.py            # 1.0.0 -> 1.0.1 (passes), then 1.0.2 (fails: rollback)

With ``--root DIR`` the slots stay in DIR so you can look at them afterwards.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from ota_boot import DirectorySlots
from ota_cloud import AwsIotStandIn, MosquittoBroker, RangeFileServer
from ota_cloud.aws import thing_arn
from ota_core import ImageInfo, OtaError, VerificationError, Version
from ota_core.engine import EngineConfig, EngineEvent, EngineEventKind
from ota_core.mqtt import MqttSettings
from ota_core.protocols import SlotReader
from ota_orchestrators.aws import AwsOrchestrator, AwsSettings
from ota_verify import PlanVerifier

THING = "linux-gateway-1"
_VERSION = re.compile(rb'^VERSION = "([0-9]+\.[0-9]+\.[0-9]+)"$', re.MULTILINE)


def make_bundle(version: str, *, healthy: bool = True) -> bytes:
    """The application: a script that prints its version, and answers ``--self-test``."""
    check = "0" if healthy else "1"
    return (
        "#!/usr/bin/env python3\n"
        f'VERSION = "{version}"\n'
        "import sys\n"
        "if '--self-test' in sys.argv:\n"
        f"    sys.exit({check})\n"
        "print('application', VERSION)\n"
    ).encode()


class ScriptBundleValidator:
    """An ``ImageValidator`` for script bundles: the version line must be there; the digest is SHA-256."""

    def validate(self, slot: SlotReader) -> ImageInfo:
        data = slot.read(0, slot.size)
        match = _VERSION.search(data[:4096])
        if match is None:
            raise VerificationError("the bundle has no VERSION line")
        return ImageInfo(Version.parse(match.group(1).decode()), hashlib.sha256(data).digest())


def run_self_test(slots: DirectorySlots) -> bool:
    """Run the new application once in self-test mode (what a real device would check: it starts, it talks)."""
    bundle = slots.payload(slots.current_slot())
    try:
        completed = subprocess.run([sys.executable, str(bundle), "--self-test"], timeout=10, check=False)
    except subprocess.TimeoutExpired:
        return False
    return completed.returncode == 0


class Device:
    """The device application: builds the orchestrator, and rebuilds it after each restart."""

    def __init__(self, root: Path, broker_url: str) -> None:
        self.root = root
        self.broker_url = broker_url
        self.restarted = threading.Event()
        self.finished = threading.Event()
        self.status = ""
        self.orchestrator: AwsOrchestrator | None = None

    def start(self) -> None:
        slots = DirectorySlots(self.root / "app", validator=ScriptBundleValidator(), attempts=2)
        slots.boot()  # what the launcher does at every start: counts a trial start, reverts if used up
        print(f"device: running {slots.state().running_version} from slot {slots.current_slot()}")
        settings = AwsSettings(
            thing_name=THING,
            mqtt=MqttSettings(broker_url=self.broker_url, client_id=THING),
            state_dir=self.root / "state",
            allow_http=True,  # the local file server speaks plain HTTP; a real fleet uses https
            require_signature=False,  # this example checks the SHA-256 of the document; sign in production
            engine=EngineConfig(self_test_timeout=15.0, report_retry_delays=(0.5,)),
        )
        self.restarted.clear()
        self.orchestrator = AwsOrchestrator(
            settings,
            verifier=PlanVerifier(),
            boot_control=slots,
            restart=self.restarted.set,
            self_test=lambda _context: run_self_test(slots),
        )
        self.orchestrator.engine.add_listener(self._on_event)
        self.orchestrator.start()

    def _on_event(self, event: EngineEvent) -> None:
        if event.kind is EngineEventKind.PHASE:
            print(f"device: {event.phase} {event.message}".rstrip())
        elif event.kind is EngineEventKind.FINISHED:
            self.status = str(event.status)
            print(f"device: update finished: {self.status}")
            self.finished.set()

    def restart(self) -> None:
        """The restart the engine asked for: stop, then start again (a launcher would re-exec)."""
        assert self.orchestrator is not None
        self.orchestrator.stop()
        print("device: restarting")
        self.start()

    def run_until_finished(self, timeout: float = 60.0) -> str:
        self.finished.clear()
        waited = 0.0
        while not self.finished.wait(0.1):
            waited += 0.1
            if self.restarted.is_set():
                self.restart()
            if waited > timeout:
                raise OtaError("the update did not finish in time")
        if self.restarted.wait(1.0):  # a failed trial asks for a restart into the old slot
            self.restart()
        return self.status

    def stop(self) -> None:
        if self.orchestrator is not None:
            self.orchestrator.stop()


def publish(standin: AwsIotStandIn, files: RangeFileServer, job_id: str, bundle: bytes, version: str) -> None:
    url = files.add_file(f"{job_id}.bin", bundle)
    document = {
        "ota_http": {
            "schema_version": 1,
            "version": version,
            "files": [
                {"name": "app.bin", "url": url, "size": len(bundle), "sha256": hashlib.sha256(bundle).hexdigest()}
            ],
        }
    }
    _reply, out = standin.service.create_job(job_id, {"document": json.dumps(document), "targets": [thing_arn(THING)]})
    standin.publish(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=None, help="keep the device's files here")
    arguments = parser.parse_args()
    root = arguments.root or Path(tempfile.mkdtemp(prefix="ota-linux-slots-"))
    DirectorySlots.initialise(root / "app", make_bundle("1.0.0"), validator=ScriptBundleValidator())
    with (
        MosquittoBroker(root / "broker") as broker,
        AwsIotStandIn(broker.url, root / "cloud") as standin,
        RangeFileServer() as files,
    ):
        standin.service.create_thing(THING)
        device = Device(root, broker.url)
        device.start()
        try:
            publish(standin, files, "app-1-0-1", make_bundle("1.0.1"), "1.0.1")
            first = device.run_until_finished()
            publish(standin, files, "app-1-0-2", make_bundle("1.0.2", healthy=False), "1.0.2")
            second = device.run_until_finished()
        finally:
            device.stop()
        running = DirectorySlots(root / "app", validator=ScriptBundleValidator()).state().running_version
    print(f"1.0.1: {first}; 1.0.2: {second} (self-test failed, rolled back); running {running}")
    return 0 if (first, second, str(running)) == ("SUCCEEDED", "FAILED", "1.0.1") else 1


if __name__ == "__main__":
    sys.exit(main())

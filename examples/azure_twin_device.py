"""An Azure IoT Hub device that takes firmware updates from its twin (MXChip DevKit schema).

The device is simulated: an MCU flash with two slots and an MCUboot-style bootloader, kept in a file in
STATE_DIR, so every "reboot" really goes through the bootloader. Everything else is what a real device
runs: the twin over MQTT, the HTTP download with resume, the CRC-16 and signature checks, the trial
boot, the self-test and the reports.

Against a real IoT Hub (symmetric key or X.509):

    python examples/azure_twin_device.py STATE_DIR \
        --connection-string "HostName=myhub.azure-devices.net;DeviceId=dev1;SharedAccessKey=..." \
        --ca-file /etc/ssl/certs/ca-certificates.crt --trust release.pub.pem --factory-image app-1.0.0.signed.bin
    python examples/azure_twin_device.py STATE_DIR --hub myhub.azure-devices.net --device-id dev1 \
        --cert dev1.pem --key dev1.key --ca-file /etc/ssl/certs/ca-certificates.crt --trust release.pub.pem \
        --factory-image app-1.0.0.signed.bin

Against the local stand-in (``ota broker``, ``ota cloud azure serve --broker mqtt://127.0.0.1:1883``,
``ota cloud azure device-add dev1 ...``):

    python examples/azure_twin_device.py STATE_DIR --hub modular-ota.azure-devices.net --device-id dev1 \
        --key-base64 NMgJDvdKTxjLi+xBxxkDDEwDJxEvOE5u8BiT0mVgPeg= --gateway 127.0.0.1 --port 1883 --no-tls \
        --topic-prefix dev1/ --allow-http --trust release.pub.pem --factory-image app-1.0.0.signed.bin

Then point the twin at a new image, e.g. ``ota cloud azure mxchip-set --version 1.0.1 --uri URL
--check-value HEX --size N``. Without ``--trust`` images only need their MCUboot hash (development only).
``--once`` exits after the first update has ended (used by the tests).
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from pathlib import Path

from ota_boot import BootLayout, Bootloader, McuBootControl, SimFlash
from ota_core.engine import EngineEvent, EngineEventKind, SelfTestContext
from ota_core.errors import OtaError
from ota_jobs.azure import DEVKIT_VOCABULARY, TUTORIAL_VOCABULARY, IotHubSettings, parse_connection_string
from ota_orchestrators.azure_twin import AzureTwinDevice, AzureTwinSettings
from ota_verify import KeyRing, McubootVerifier, McubootVersion, PlanVerifier, SignOptions, load_public_key, sign_image

LAYOUT = BootLayout.simple(sector_size=4096, image_sectors=64, write_alignment=4)   # 256 KiB per image


def hub_settings(arguments: argparse.Namespace) -> IotHubSettings:
    """The IoT Hub connection from a connection string or from the separate options."""
    common: dict[str, object] = {"ca_file": arguments.ca_file, "topic_prefix": arguments.topic_prefix,
                                 "use_tls": not arguments.no_tls}
    if arguments.gateway:
        common["gateway_host"] = arguments.gateway
    if arguments.port:
        common["port"] = arguments.port
    if arguments.connection_string:
        return parse_connection_string(arguments.connection_string, **common)
    if not (arguments.hub and arguments.device_id):
        raise SystemExit("give --connection-string, or --hub and --device-id")
    return IotHubSettings(hostname=arguments.hub, device_id=arguments.device_id,
                          shared_access_key=arguments.key_base64, cert_file=arguments.cert,
                          key_file=arguments.key, **common)  # type: ignore[arg-type]


def image_validator(arguments: argparse.Namespace) -> McubootVerifier:
    """Signed images only when a release key is trusted; hash-only images otherwise (development)."""
    if arguments.trust:
        return McubootVerifier(KeyRing([load_public_key(Path(arguments.trust).read_bytes())]))
    logging.warning("no --trust key: accepting unsigned images (development only)")
    return McubootVerifier(KeyRing(), require_signature=False)


def prepare_flash(path: Path, arguments: argparse.Namespace) -> None:
    """Create the simulated flash with the factory image in the primary slot, once."""
    if path.exists():
        return
    if arguments.factory_image:
        image = Path(arguments.factory_image).read_bytes()
    else:
        image = sign_image(b"factory firmware 1.0.0 " * 1000, None,
                           SignOptions(version=McubootVersion(1, 0, 0), pad_header=True))
    path.parent.mkdir(parents=True, exist_ok=True)
    flash = SimFlash.create(path, LAYOUT.flash)
    flash.write(LAYOUT.primary_offset, image + b"\xff" * (-len(image) % 4))


def main() -> int:
    """Run the device until Ctrl-C (or, with --once, until the first update has ended)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("state_dir", type=Path)
    parser.add_argument("--connection-string")
    parser.add_argument("--hub")
    parser.add_argument("--device-id")
    parser.add_argument("--key-base64", help="the device's symmetric key")
    parser.add_argument("--cert", help="X.509 client certificate (PEM)")
    parser.add_argument("--key", help="X.509 client key (PEM)")
    parser.add_argument("--ca-file")
    parser.add_argument("--gateway", help="connect here instead of the hub (an edge gateway or a local broker)")
    parser.add_argument("--port", type=int)
    parser.add_argument("--no-tls", action="store_true")
    parser.add_argument("--topic-prefix", default="")
    parser.add_argument("--allow-http", action="store_true", help="accept http:// package URIs (stand-in)")
    parser.add_argument("--tutorial", action="store_true", help="lower-case tutorial statuses")
    parser.add_argument("--trust", help="release public key (PEM) for MCUboot signatures")
    parser.add_argument("--factory-image", help="signed MCUboot image 1.0.0 for a fresh flash")
    parser.add_argument("--fail-self-test", action="store_true")
    parser.add_argument("--once", action="store_true")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    flash_path = arguments.state_dir / "flash.bin"
    prepare_flash(flash_path, arguments)
    settings = AzureTwinSettings(
        hub=hub_settings(arguments), state_dir=str(arguments.state_dir / "ota"), allow_http=arguments.allow_http,
        vocabulary=TUTORIAL_VOCABULARY if arguments.tutorial else DEVKIT_VOCABULARY)
    check = image_validator(arguments)
    finished = threading.Event()

    def self_test(_context: SelfTestContext) -> bool:
        # A real device checks what matters to it here: peripherals, the cloud connection, its app.
        return not arguments.fail_self_test

    def on_event(event: EngineEvent) -> None:
        if event.kind is EngineEventKind.FINISHED:
            print(f"update {event.job_id} finished: {event.status}", flush=True)
            finished.set()
        elif event.kind in (EngineEventKind.PHASE, EngineEventKind.WAITING, EngineEventKind.CANCELLED):
            print(f"{event.kind}: {event.phase or ''} {event.message}".rstrip(), flush=True)

    ended_before_restart = False
    try:
        while True:
            flash = SimFlash.open(flash_path)
            booted = Bootloader(flash, LAYOUT, check).boot()       # the bootloader runs at every power-on
            print(f"booted {booted.image.version}", flush=True)
            restart = threading.Event()
            device = AzureTwinDevice(settings, boot_control=McuBootControl(flash, LAYOUT, check),
                                     verifier=PlanVerifier(mcuboot=check), restart=restart.set, self_test=self_test)
            device.engine.add_listener(on_event)
            device.start()
            try:
                if arguments.once and ended_before_restart:
                    return 0         # a rollback reported first, then restarted into the old image
                while not restart.wait(0.5):
                    if arguments.once and finished.is_set():
                        return 0
            finally:
                device.stop()
            ended_before_restart = finished.is_set()
            print("restarting", flush=True)
    except OtaError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

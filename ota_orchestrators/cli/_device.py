"""``ota device --config FILE``: run a device agent from a TOML file against a real or local cloud.

The agent is the simulated device (simulated flash slots, MCUboot-style bootloader, MCUboot image
checks) running a reference orchestrator; this command supervises it: it prints its events and starts it
again whenever the engine asks for a restart. Example file::

    flow = "aws"
    device_dir = "device-1"                 # flash.bin and state/ live here
    public_key = "signing-key.pub.pem"      # the key that signs firmware images
    factory_image = "firmware-1.0.0.bin"    # written to the primary slot on the first start
    self_test = "pass"                      # pass | fail | hang

    [flow_settings]
    broker_url = "mqtts://abc123-ats.iot.eu-west-1.amazonaws.com:8883"
    thing_name = "device-1"
    ca_file = "AmazonRootCA1.pem"
    cert_file = "device-1.cert.pem"
    key_file = "device-1.private.key"

Relative paths are relative to the file.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

from ota_core.errors import ConfigurationError
from ota_orchestrators.simulated_device import EXIT_RESTART, load_device_config

__all__ = ["register", "toml_to_device_json"]

_PATH_KEYS = ("device_dir", "public_key", "factory_image")
_FLOW_PATH_KEYS = ("ca_file", "cert_file", "key_file")
_MAX_RESTARTS = 1000


def register(subparsers: Any) -> None:
    """Add ``ota device``."""
    parser = subparsers.add_parser("device", help="run a device agent from a TOML configuration file")
    parser.add_argument("--config", type=Path, required=True, help="TOML configuration (see the docs)")
    parser.add_argument("--once", action="store_true", help="do not start the device again after a restart")
    parser.set_defaults(handler=_run)


def toml_to_device_json(path: Path) -> dict[str, Any]:
    """Read the TOML file into the simulated device's JSON configuration (paths made absolute)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigurationError(f"cannot read {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigurationError(f"{path} is not valid TOML: {error}") from None
    base = path.resolve().parent
    for key in _PATH_KEYS:
        if isinstance(data.get(key), str):
            data[key] = str(base / data[key])
    flow = data.get("flow_settings")
    if isinstance(flow, dict):
        for key in _FLOW_PATH_KEYS:
            if isinstance(flow.get(key), str):
                flow[key] = str(base / flow[key])
    return data


def _run(arguments: argparse.Namespace) -> int:
    config_path: Path = arguments.config
    data = toml_to_device_json(config_path)
    json_file = config_path.resolve().with_suffix(".device.json")
    json_file.write_text(json.dumps(data, indent=2), encoding="utf-8")
    try:
        load_device_config(json_file)  # one clear line for a broken file, before anything starts
    except ConfigurationError as error:
        raise ConfigurationError(str(error.message).replace(str(json_file), str(config_path))) from None
    command = [sys.executable, "-m", "ota_orchestrators.simulated_device", str(json_file)]
    if arguments.debug:
        command += ["--log-level", "DEBUG"]
    for _start in range(_MAX_RESTARTS):
        process = subprocess.Popen(command)
        try:
            code = process.wait()
        except KeyboardInterrupt:
            process.send_signal(signal.SIGTERM)
            process.wait(10.0)
            return 130
        if code != EXIT_RESTART or arguments.once:
            return 0 if code in (0, EXIT_RESTART) else code
        print(json.dumps({"event": "supervisor", "message": "restarting the device"}), flush=True)
    raise ConfigurationError(f"the device restarted {_MAX_RESTARTS} times; giving up")

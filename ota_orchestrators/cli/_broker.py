"""``ota broker``: run a private mosquitto on loopback for local clouds and devices."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ota_cloud.broker import MosquittoBroker, TlsListener
from ota_cloud.pki import LocalPki
from ota_orchestrators.cli._common import wait_for_interrupt


def register(subparsers: Any) -> None:
    """Add the ``broker`` subcommand."""
    parser = subparsers.add_parser("broker", help="run a private mosquitto broker on 127.0.0.1")
    parser.add_argument("--port", type=int, default=None, help="plain MQTT port (default: a free one)")
    parser.add_argument("--dir", type=Path, default=None, help="folder for its config, log and certificates")
    parser.add_argument("--tls", action="store_true", help="also open a mutual-TLS listener with a local PKI")
    parser.set_defaults(handler=_run)


def _run(arguments: argparse.Namespace) -> int:
    tls = None
    pki = None
    if arguments.tls:
        folder = arguments.dir or Path.cwd() / "ota-broker"
        pki = LocalPki.create(folder / "pki")
        tls = TlsListener(ca_file=pki.ca_file, cert_file=pki.server.cert_file, key_file=pki.server.key_file)
    broker = MosquittoBroker(arguments.dir, port=arguments.port, tls=tls)
    with broker:
        print(f"broker listening on {broker.url}", flush=True)
        if pki is not None:
            print(f"mutual TLS on {broker.tls_url}; CA {pki.ca_file}; client certificate {pki.client.cert_file}")
        print("press Ctrl-C to stop", flush=True)
        wait_for_interrupt()
    return 0

"""A mosquitto broker run as a managed child process on a free loopback port.

Used by the tests, the local clouds and ``ota demo``. mosquitto cannot pick its own port, so a free one is
chosen here; readiness is proven by a real MQTT CONNECT/CONNACK exchange, because mosquitto accepts TCP
connections before it has finished loading its TLS key (and may still exit afterwards).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import attrs

from ota_core.errors import ConfigurationError, TransportError

__all__ = ["BrokerStartError", "MosquittoBroker", "MosquittoNotInstalledError", "TlsListener", "free_port"]

_log = logging.getLogger(__name__)

INSTALL_HINT = "install it with: sudo apt-get install mosquitto"


class MosquittoNotInstalledError(ConfigurationError):
    """The mosquitto executable is not on this machine."""

    code = "BROKER_NOT_INSTALLED"


class BrokerStartError(TransportError):
    """mosquitto exited or did not become ready in time."""

    code = "BROKER_START_FAILED"
    retryable = False


@attrs.frozen
class TlsListener:
    """A TLS listener: server certificate and key, and the CA that client certificates must chain to."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    require_client_certificate: bool = True


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on ``host`` (another process may still take it: a tiny race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def _port_is_free(host: str, port: int) -> bool:
    """Whether nothing listens on host:port right now (checked by binding it briefly)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


def _connect_packet(client_id: str) -> bytes:
    """An MQTT 3.1.1 CONNECT packet with a clean session, no credentials and a 10 s keepalive."""
    identifier = client_id.encode()
    variable = b"\x00\x04MQTT\x04\x02\x00\x0a"
    payload = len(identifier).to_bytes(2, "big") + identifier
    remaining = len(variable) + len(payload)
    return b"\x10" + bytes([remaining]) + variable + payload


def _mqtt_ping(host: str, port: int, timeout: float) -> bool:
    """True when a broker on host:port answers CONNECT with a CONNACK (accepting or not: it is up)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as connection:
            connection.sendall(_connect_packet("modular-ota-readiness-probe"))
            answer = b""
            while len(answer) < 4:
                chunk = connection.recv(4 - len(answer))
                if not chunk:
                    return False
                answer += chunk
            connection.sendall(b"\xe0\x00")  # DISCONNECT
            return answer[0] == 0x20
    except OSError:
        return False


class MosquittoBroker:
    """A private mosquitto on 127.0.0.1: a plain listener, and optionally a TLS listener.

    The ports are chosen once and kept across ``restart`` so that clients reconnect to the same address.
    """

    def __init__(
        self,
        work_dir: str | Path | None = None,
        *,
        port: int | None = None,
        tls: TlsListener | None = None,
        tls_port: int | None = None,
        executable: str = "mosquitto",
        extra_config: str = "",
        allow_anonymous: bool = True,
    ) -> None:
        found = shutil.which(executable)
        if found is None:
            raise MosquittoNotInstalledError(f"mosquitto was not found on PATH; {INSTALL_HINT}")
        self._executable = found
        self._owned_dir: tempfile.TemporaryDirectory[str] | None = None
        if work_dir is None:
            self._owned_dir = tempfile.TemporaryDirectory(prefix="modular-ota-broker-")
            work_dir = self._owned_dir.name
        self._work_dir = Path(work_dir)
        self._work_dir.mkdir(parents=True, exist_ok=True)
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self._tls = tls
        self.tls_port = (tls_port or free_port()) if tls else None
        self._extra_config = extra_config
        self._allow_anonymous = "true" if allow_anonymous else "false"
        self._process: subprocess.Popen[bytes] | None = None
        self.config_file = self._work_dir / "mosquitto.conf"
        self.log_file = self._work_dir / "mosquitto.log"

    @property
    def url(self) -> str:
        """The plain listener, as a broker URL."""
        return f"mqtt://{self.host}:{self.port}"

    @property
    def tls_url(self) -> str:
        """The TLS listener as a broker URL (host ``localhost``, which the server certificate names)."""
        if self.tls_port is None:
            raise ConfigurationError("this broker has no TLS listener")
        return f"mqtts://localhost:{self.tls_port}"

    @property
    def is_running(self) -> bool:
        """Whether the mosquitto process is alive."""
        return self._process is not None and self._process.poll() is None

    def _write_config(self) -> None:
        lines = [
            "per_listener_settings true",
            "persistence false",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "set_tcp_nodelay true",
            "max_queued_messages 100000",
            f"listener {self.port} {self.host}",
            f"allow_anonymous {self._allow_anonymous}",
        ]
        if os.geteuid() == 0:
            # As root mosquitto drops to user 'mosquitto' before reading the TLS key, and then cannot.
            lines.insert(0, "user root")
        if self._tls is not None:
            lines += [
                f"listener {self.tls_port} {self.host}",
                "allow_anonymous true",
                f"cafile {self._tls.ca_file}",
                f"certfile {self._tls.cert_file}",
                f"keyfile {self._tls.key_file}",
            ]
            if self._tls.require_client_certificate:
                lines += ["require_certificate true", "use_identity_as_username true"]
        if self._extra_config:
            lines.append(self._extra_config)
        self.config_file.write_text("\n".join(lines) + "\n")

    def start(self, timeout: float = 10.0) -> None:
        """Start mosquitto and return once it accepts MQTT connections; raise ``BrokerStartError`` if not."""
        if self.is_running:
            return
        for port in (self.port, self.tls_port):
            if port is not None and not _port_is_free(self.host, port):
                # A readiness probe would otherwise be answered by whatever already listens there.
                raise BrokerStartError(f"port {port} on {self.host} is already in use")
        self._write_config()
        log = self.log_file.open("ab")
        try:
            self._process = subprocess.Popen(
                [self._executable, "-c", str(self.config_file)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self._work_dir,
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BrokerStartError(f"mosquitto exited with code {self._process.returncode}: {self._log_tail()}")
            if _mqtt_ping(self.host, self.port, timeout=1.0):
                time.sleep(0.01)
                if self._process.poll() is None:
                    _log.info("mosquitto ready on %s", self.url)
                    return
            time.sleep(0.02)
        self.stop()
        raise BrokerStartError(f"mosquitto was not ready within {timeout} s: {self._log_tail()}")

    def stop(self, timeout: float = 5.0) -> None:
        """Stop mosquitto (SIGTERM, then SIGKILL after ``timeout``)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    def kill(self) -> None:
        """Kill mosquitto abruptly (SIGKILL), as a crash or a power cut of the server would."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(5.0)

    def restart(self, timeout: float = 10.0) -> None:
        """Stop and start again on the same ports."""
        self.stop()
        self.start(timeout)

    def close(self) -> None:
        """Stop the broker and remove its private directory, if it made one."""
        self.stop()
        if self._owned_dir is not None:
            with contextlib.suppress(OSError):
                self._owned_dir.cleanup()
            self._owned_dir = None

    def _log_tail(self) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-5:]) or "(empty log)"

    def __enter__(self) -> MosquittoBroker:
        self.start()
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _value: BaseException | None, _traceback: TracebackType | None
    ) -> None:
        self.close()

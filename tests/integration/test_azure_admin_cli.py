"""The admin HTTP API and the ``ota cloud azure`` command against a running stand-in."""

from __future__ import annotations

import base64
import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from ota_cloud.azure import AzureStandIn
from ota_cloud.broker import MosquittoBroker, free_port
from ota_orchestrators.cli import main
from tests.azure_fixtures import DeviceFactory, azure_device, azure_standin

pytestmark = pytest.mark.broker
__all__ = ["azure_device", "azure_standin"]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, object]:
    code = main(["-q", *args])
    out = capsys.readouterr().out
    try:
        return code, json.loads(out) if out.strip() else None
    except ValueError:
        return code, out


def test_cli_drives_the_admin_api(
    azure_standin: AzureStandIn, azure_device: DeviceFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert azure_standin.admin is not None
    admin = ["--admin", azure_standin.admin.url]
    code, out = run(capsys, "cloud", "azure", "device-add", "cli-dev", "--key", "QUJD", *admin)
    assert code == 0 and out == {"deviceId": "cli-dev", "topicPrefix": "cli-dev/"}
    code, out = run(capsys, "cloud", "azure", "desired", "cli-dev", '{"a": 1}', *admin)
    assert out == {"$version": 2}
    code, out = run(capsys, "cloud", "azure", "twin", "cli-dev", *admin)
    assert isinstance(out, dict) and out["desired"] == {"a": 1, "$version": 2}
    code, out = run(
        capsys,
        "cloud",
        "azure",
        "mxchip-set",
        "cli-dev",
        "--fw-version",
        "2.0",
        "--uri",
        "https://h/f.bin",
        "--size",
        "10",
        "--check-value",
        "31c3",
        *admin,
    )
    assert out == {"cli-dev": 3}
    code, out = run(capsys, "cloud", "azure", "mxchip-metrics", *admin)
    assert out == {"Current": 0, "Downloading": 0, "Verifying": 0, "Applying": 0, "Error": 0}

    payload = b"image" * 100
    manifest = {
        "manifestVersion": "4.0",
        "updateId": {"provider": "Acme", "name": "Box", "version": "2.0"},
        "compatibility": [{"manufacturer": "Acme", "model": "Box"}],
        "instructions": {"steps": [{"handler": "microsoft/script:1", "files": ["box.bin"]}]},
        "files": [
            {
                "filename": "box.bin",
                "sizeInBytes": len(payload),
                "hashes": {"sha256": base64.b64encode(hashlib.sha256(payload).digest()).decode()},
            }
        ],
    }
    (tmp_path / "box.importmanifest.json").write_text(json.dumps(manifest))
    (tmp_path / "box.bin").write_bytes(payload)
    code, out = run(
        capsys,
        "cloud",
        "azure",
        "adu-import",
        str(tmp_path / "box.importmanifest.json"),
        str(tmp_path / "box.bin"),
        *admin,
    )
    assert out == {"provider": "Acme", "name": "Box", "version": "2.0"}
    code, out = run(
        capsys,
        "cloud",
        "azure",
        "adu-deploy",
        "d1",
        "cli-dev",
        "--provider",
        "Acme",
        "--name",
        "Box",
        "--update-version",
        "2.0",
        *admin,
    )
    assert isinstance(out, dict) and out["counts"] == {"Pending": 1}
    service = azure_standin.hub.get_twin("cli-dev")["desired"]["deviceUpdate"]["service"]
    assert service["workflow"] == {"action": 3, "id": "d1"}
    assert json.loads(service["updateManifest"])["files"]
    url = next(iter(service["fileUrls"].values()))
    assert requests.get(url, timeout=10).content == payload
    code, out = run(capsys, "cloud", "azure", "adu-retry", "d1", *admin)
    assert isinstance(out, dict) and "retryTimestamp" in out
    code, out = run(capsys, "cloud", "azure", "adu-cancel", "d1", *admin)
    assert isinstance(out, dict) and out["cancelled"] is True and out["counts"] == {"Canceled": 1}
    code, out = run(capsys, "cloud", "azure", "adu-status", "d1", *admin)
    assert isinstance(out, dict) and out["deploymentId"] == "d1"
    code, out = run(capsys, "cloud", "azure", "adu-root-key", *admin)
    assert code == 0 and isinstance(out, str) and out.startswith("-----BEGIN PUBLIC KEY-----")

    # a device that answers methods
    _, client = azure_device("meth")
    client.on_method("ping", lambda p: (201, {"pong": p}))
    client.start()
    client.get_twin(timeout=10)
    code, out = run(capsys, "cloud", "azure", "method", "meth", "ping", "--payload", "[1]", *admin)
    assert out == {"status": 201, "payload": {"pong": [1]}}

    # errors come back as one line and exit status 1
    assert main(["-q", "cloud", "azure", "twin", "nobody", *admin]) == 1
    assert main(["-q", "cloud", "azure", "method", "cli-dev", "x", "--timeout", "0.3", *admin]) == 1
    assert main(["-q", "cloud", "azure", "desired", "cli-dev", "{bad", *admin]) == 1
    assert main(["-q", "cloud", "azure", "twin", "x", "--admin", "http://127.0.0.1:1"]) == 1
    assert main(["-q", "cloud", "azure", "adu-import", str(tmp_path / "missing.json"), "x", *admin]) == 1
    capsys.readouterr()
    base = azure_standin.admin.url
    assert requests.get(base + "/nothing", timeout=5).status_code == 404
    assert requests.post(base + "/devices", data=b"[1]", timeout=5).status_code == 400
    assert requests.post(base + "/devices", data=b"{bad", timeout=5).status_code == 400
    assert requests.post(base + "/devices", json={}, timeout=5).status_code == 400
    assert (
        requests.post(
            base + "/devices/cli-dev/faults", json={"operation": "get", "statuses": [429]}, timeout=5
        ).status_code
        == 200
    )
    assert requests.get(base + "/adu/updates", timeout=5).json()["updates"][0]["name"] == "Box"


def test_serve_command(mosquitto: MosquittoBroker, tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from ota_orchestrators.cli import main; sys.exit(main(sys.argv[1:]))",
            "-q",
            "cloud",
            "azure",
            "serve",
            "--broker",
            mosquitto.url,
            "--state-dir",
            str(tmp_path / "s"),
            "--admin-port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                assert requests.get(f"http://127.0.0.1:{port}/devices", timeout=2).json() == {"devices": []}
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        else:
            pytest.fail("the stand-in did not start")
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert b"admin API" in out

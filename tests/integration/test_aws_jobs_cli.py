"""``ota cloud aws``: the stand-in served from the command line and driven by the client subcommands."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ota_cloud.broker import MosquittoBroker
from ota_orchestrators.cli import main

pytestmark = pytest.mark.broker


def test_serve_and_drive_from_the_command_line(
    mosquitto: MosquittoBroker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ota_orchestrators",
            "cloud",
            "aws",
            "serve",
            "--broker",
            mosquitto.url,
            "--state",
            str(tmp_path / "state"),
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("AWS IoT stand-in: control plane http://127.0.0.1:"), first
        endpoint = first.rsplit(" ", 1)[1].strip()
        document = tmp_path / "doc.json"
        document.write_text(json.dumps({"afr_ota": {"protocols": ["MQTT"]}}), encoding="utf-8")

        def run(*args: str) -> list[dict[str, object]]:
            capsys.readouterr()
            assert main(["cloud", "aws", *args, "--endpoint", endpoint]) == 0
            return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]

        assert run("create-thing", "dev-1")[0]["thingName"] == "dev-1"
        assert (
            run("create-job", "job-1", "--thing", "dev-1", "--document", f"@{document}", "--timeout-minutes", "5")[0][
                "jobId"
            ]
            == "job-1"
        )
        assert (
            run(
                "create-job",
                "job-2",
                "--thing",
                "dev-1",
                "--document",
                '{"x":1}',
                "--presigned-role",
                "arn:aws:iam::123456789012:role/r",
            )[0]["jobId"]
            == "job-2"
        )
        assert [j["jobId"] for j in run("list-jobs")] == ["job-1", "job-2"]
        assert run("describe-execution", "job-1", "dev-1")[0]["status"] == "QUEUED"
        assert run("cancel-job", "job-1", "--force")[0]["status"] == "CANCELED"
        assert [j["jobId"] for j in run("list-jobs", "--status", "CANCELED")] == ["job-1"]
        capsys.readouterr()
        assert main(["cloud", "aws", "describe-execution", "ghost", "dev-1", "--endpoint", endpoint]) == 1
        assert "ResourceNotFoundException" in capsys.readouterr().err
        assert (
            main(
                [
                    "cloud",
                    "aws",
                    "create-job",
                    "j",
                    "--thing",
                    "d",
                    "--document",
                    "@/nonexistent/x",
                    "--endpoint",
                    endpoint,
                ]
            )
            == 1
        )
        assert main(["cloud", "aws", "list-jobs", "--endpoint", "http://127.0.0.1:9"]) == 1
        assert main(["cloud", "aws"]) == 2
        process.send_signal(signal.SIGINT)
        _, errors = process.communicate(timeout=15)
        assert process.returncode == 0, errors
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

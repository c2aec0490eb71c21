"""The AWS orchestrator's FreeRTOS statusDetails, and the simulated device's configuration, faults and view."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from ota_core.engine import ReportContext, ReportPoint
from ota_core.errors import ConfigurationError, DownloadError, OtaError, VerificationError
from ota_core.models import FileTarget, JobEvent, JobEventKind, JobStatus, StatusReport, UpdatePlan
from ota_core.versions import Version
from ota_orchestrators.aws import app_version_hex, freertos_status_details
from ota_orchestrators.cli._device import toml_to_device_json
from ota_orchestrators.demo import TerminalView
from ota_orchestrators.simulated_device import (
    DeviceConfig,
    Emitter,
    FaultPlan,
    ReportingJobSource,
    get_flow,
    load_device_config,
    register_flow,
)

V100 = Version.parse("1.0.0")
V101 = Version.parse("1.0.1")
PLAN = UpdatePlan("job", "aws-afr-ota", (FileTarget("firmware.bin", 10000),))


def _details(point: ReportPoint, **fields: object) -> dict[str, str] | None:
    return freertos_status_details(ReportContext(point, "job", **fields))  # type: ignore[arg-type]


def test_receive_counts_blocks_of_four_kibibytes() -> None:
    assert _details(ReportPoint.ACCEPTED, plan=PLAN) == {"receive": "0/3"}
    assert _details(ReportPoint.PROGRESS, bytes_done=5000, bytes_total=10000) == {"receive": "2/3"}
    assert _details(ReportPoint.PROGRESS, bytes_done=10000, bytes_total=10000) == {"receive": "3/3"}
    assert freertos_status_details(
        ReportContext(ReportPoint.PROGRESS, "job", bytes_done=10, bytes_total=100), block_size=10
    ) == {"receive": "1/10"}


def test_self_test_steps_carry_updated_by() -> None:
    assert _details(ReportPoint.VERIFYING) is None
    assert _details(ReportPoint.READY, running_version=V100) == {"self_test": "ready", "updatedBy": "0x1000000"}
    assert _details(ReportPoint.SELF_TEST, previous_version=V100) == {"self_test": "active", "updatedBy": "0x1000000"}


def test_success_uses_freertos_strings() -> None:
    assert _details(ReportPoint.SUCCEEDED, running_version=V101) == {
        "reason": "accepted  v1.0.1",
        "updatedBy": "  v1.0.1",
    }
    assert _details(ReportPoint.SUCCEEDED) == {"reason": "accepted", "updatedBy": "unknown"}


def test_failures_say_rejected_or_aborted() -> None:
    failed = _details(
        ReportPoint.FAILED, error=VerificationError("bad\nsignature"), rolled_back=True, previous_version=V100
    )
    assert failed == {"reason": "rejected: VERIFICATION_FAILED", "detail": "bad signature", "updatedBy": "0x1000000"}
    aborted = _details(ReportPoint.FAILED, error=DownloadError("link lost"))
    assert aborted is not None and aborted["reason"] == "aborted: DOWNLOAD_FAILED"
    assert "updatedBy" not in aborted
    assert _details(ReportPoint.REJECTED, error=OtaError("")) == {"reason": "rejected: OTA_ERROR"}
    assert _details(ReportPoint.REJECTED) == {"reason": "rejected"}


def test_app_version_hex() -> None:
    assert app_version_hex(V101) == "0x1000001"
    assert app_version_hex(None) == "0x0"
    assert app_version_hex(Version.parse("300.0.0")) == "300.0.0"


def test_fault_plan_matches_states_and_progress(tmp_path: Path) -> None:
    assert FaultPlan.matches("state:downloading", "state:downloading")
    assert not FaultPlan.matches("state:downloading", "state:received")
    assert not FaultPlan.matches(None, "state:received")
    assert FaultPlan.matches("progress>=100", "progress:0:150")
    assert not FaultPlan.matches("progress>=100", "progress:0:50")
    assert not FaultPlan.matches("progress>=100", "state:received")
    once = FaultPlan(kill_at="state:received", once_file=tmp_path / "fired")
    assert once.fire(once.kill_at, "state:received")
    assert not once.fire(once.kill_at, "state:received")
    assert FaultPlan(kill_at="state:received").fire("state:received", "state:received")


def _write(tmp_path: Path, content: str) -> Path:
    path = tmp_path / "device.json"
    path.write_text(content, encoding="utf-8")
    return path


def test_device_config_round_trip(tmp_path: Path) -> None:
    config = DeviceConfig(flow="aws", device_dir=tmp_path / "d", public_key=tmp_path / "k.pem", self_test="fail")
    config.write(tmp_path / "device.json")
    loaded = load_device_config(tmp_path / "device.json")
    assert loaded == config
    assert loaded.flash_path == tmp_path / "d" / "flash.bin"
    assert loaded.state_dir == tmp_path / "d" / "state"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "is not JSON"),
        ("[]", "must be a JSON object"),
        ('{"flow": "aws"}', "lacks 'device_dir'"),
        ('{"flow": "aws", "device_dir": "d", "public_key": "k", "self_test": "maybe"}', "self_test must be"),
        ('{"flow": "aws", "device_dir": "d", "public_key": "k", "self_test_timeout": "soon"}', "is invalid"),
        ('{"flow": "aws", "device_dir": "d", "public_key": "k", "flash": {"bogus": 1}}', "is invalid"),
    ],
)
def test_broken_device_configs_give_one_clear_error(tmp_path: Path, content: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_device_config(_write(tmp_path, content))


def test_missing_device_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_device_config(tmp_path / "nothing.json")


def test_flow_registry() -> None:
    assert get_flow("aws") is not None
    with pytest.raises(ConfigurationError, match="unknown flow 'nope'"):
        get_flow("nope")
    marker: Callable[..., object] = lambda _context: None  # noqa: E731
    register_flow("test-flow", marker)  # type: ignore[arg-type]
    assert get_flow("test-flow") is marker


def test_emitter_writes_json_lines() -> None:
    stream = io.StringIO()
    Emitter(stream)("boot", version="1.0.0")
    event = json.loads(stream.getvalue())
    assert event["event"] == "boot" and event["version"] == "1.0.0"


class _Source:
    def __init__(self) -> None:
        self.reports: list[StatusReport] = []
        self.callback: Callable[[JobEvent], None] | None = None
        self.asked = 0
        self.stopped = False

    def start(self, on_event: Callable[[JobEvent], None]) -> None:
        self.callback = on_event

    def request_next(self) -> None:
        self.asked += 1

    def report(self, report: StatusReport) -> None:
        self.reports.append(report)

    def stop(self) -> None:
        self.stopped = True


def test_reporting_job_source_prints_events_and_reports() -> None:
    stream = io.StringIO()
    inner = _Source()
    source = ReportingJobSource(inner, Emitter(stream))
    seen: list[JobEvent] = []
    source.start(seen.append)
    assert inner.callback is not None
    inner.callback(JobEvent(JobEventKind.NEW, "job"))
    source.request_next()
    source.report(StatusReport("job", JobStatus.IN_PROGRESS, {"receive": "0/1"}))
    source.stop()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["job", "report"]
    assert lines[1]["details"] == {"receive": "0/1"}
    assert seen and inner.asked == 1 and inner.stopped and inner.reports


def test_terminal_view_without_a_terminal_prints_quarters() -> None:
    stream = io.StringIO()
    view = TerminalView(stream)
    view.line("hello")
    for done in range(0, 101, 5):
        view.progress(done, 100, 1048576.0)
    view.progress(1, 0)
    lines = stream.getvalue().splitlines()
    assert lines[0].endswith("hello")
    assert sum("download [" in line for line in lines) == 5


def test_device_toml_makes_paths_absolute(tmp_path: Path) -> None:
    path = tmp_path / "device.toml"
    path.write_text(
        'flow = "aws"\ndevice_dir = "dev"\npublic_key = "key.pem"\n'
        '[flow_settings]\nbroker_url = "mqtt://127.0.0.1:1883"\nthing_name = "t"\nca_file = "ca.pem"\n',
        encoding="utf-8",
    )
    data = toml_to_device_json(path)
    assert data["device_dir"] == str(tmp_path / "dev")
    assert data["flow_settings"]["ca_file"] == str(tmp_path / "ca.pem")
    path.write_text("flow = ", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        toml_to_device_json(path)
    with pytest.raises(ConfigurationError, match="cannot read"):
        toml_to_device_json(tmp_path / "missing.toml")


class _Jobs:
    """Answers describe() with a stored document (or an error, or nothing)."""

    def __init__(self, document: Mapping[str, object] | None, error: OtaError | None = None) -> None:
        self.document = document
        self.error = error

    def describe(self, job_id: str) -> object:
        from ota_jobs.aws import ExecutionReply, JobExecution

        if self.error is not None:
            raise self.error
        if self.document is None:
            return ExecutionReply(None)
        return ExecutionReply(JobExecution(job_id, JobStatus.IN_PROGRESS, self.document))


def _http_document(url: str) -> dict[str, object]:
    return {
        "ota_http": {
            "schema_version": 1,
            "files": [{"name": "firmware.bin", "url": url, "size": 10, "sha256": "00" * 32}],
        }
    }


def test_url_refresher_reads_the_fresh_url_from_the_job_document() -> None:
    from ota_core.models import FileLocation, LocationKind
    from ota_core.protocols import DownloadRequest
    from ota_jobs import HttpDocumentParserConfig, default_parser_chain
    from ota_orchestrators.aws import _UrlRefresher

    chain = default_parser_chain(http_document=HttpDocumentParserConfig(require_signature=False))
    target = FileTarget("firmware.bin", 10)
    request = DownloadRequest("job", target, FileLocation(LocationKind.HTTP, "https://old"), object(), "key")  # type: ignore[arg-type]

    def refresh(jobs: _Jobs, other_name: str = "firmware.bin") -> str | None:
        wanted = DownloadRequest("job", FileTarget(other_name, 10), request.location, object(), "key")  # type: ignore[arg-type]
        return _UrlRefresher(jobs, [chain])(wanted)  # type: ignore[arg-type]

    assert refresh(_Jobs(_http_document("https://new/firmware.bin"))) == "https://new/firmware.bin"
    assert refresh(_Jobs(_http_document("https://new/firmware.bin")), "other.bin") is None
    assert refresh(_Jobs(None)) is None
    assert refresh(_Jobs(None, DownloadError("offline"))) is None
    assert refresh(_Jobs({"unknown": 1})) is None
    assert refresh(_Jobs({"ota_http": {"schema_version": 2}})) is None
    stream_only = {
        "afr_ota": {
            "protocols": ["MQTT"],
            "streamname": "s",
            "files": [{"filepath": "firmware.bin", "filesize": 10, "fileid": 0, "certfile": None}],
        }
    }
    assert refresh(_Jobs(stream_only)) is None

"""A plan without a version (AWS ``afr_ota``) whose trial image the bootloader abandoned before the confirm.

The engine cannot tell the new image by the plan's version; the image that ran when the job arrived running
again after the restart means the rollback happened, and the update must end FAILED, never SUCCEEDED.
"""

from __future__ import annotations

import functools
from pathlib import Path

from ota_core import JobStatus, Version
from ota_core.engine import EngineConfig, EngineState
from tests.engine_fixtures import job_document, make_image
from tests.engine_rig import Rig
from tests.unit.test_engine_killed_matrix import Case
from tests.unit.test_engine_power_cut import PowerSwitch, _stopped_or_done


def _publish_without_version(rig: Rig, job_id: str) -> None:
    data = make_image("1.0.1", 32 * 1024)
    path = rig.tmp / f"{job_id}.bin"
    path.write_bytes(data)
    document = job_document(path, data, "1.0.1")
    del document["version"]
    rig.source.add_job(job_id, document, notify=False)


def _run(tmp_path: Path, kill_point: str) -> Rig:
    switch = PowerSwitch(Case(kill_point, "pass", (JobStatus.FAILED, "1.0.0", [])))
    config = EngineConfig(report_retry_delays=(0.0,), poll_interval=0.2, fault_hook=switch.hook)
    rig = Rig(tmp_path, config=config, self_test=lambda _context: True, chunk_size=4096)
    _publish_without_version(rig, "job-1")
    rig.start()
    for _ in range(8):
        engine = rig.engine
        assert engine is not None
        rig.wait_for(functools.partial(_stopped_or_done, rig, switch, engine))
        if switch.frozen.is_set():
            switch.cut(engine)
            rig.engine = None
            rig.boot.boot()
            rig.start()
        elif engine.awaiting_restart:
            rig.reboot()
        else:
            break
    rig.stop()
    return rig


def test_rollback_before_the_confirm_is_failed_for_a_versionless_plan(tmp_path: Path) -> None:
    rig = _run(tmp_path, f"state:{EngineState.CONFIRMING.value}")
    finals = [report for report in rig.source.reports if report.status.is_terminal]
    assert [report.status for report in finals] == [JobStatus.FAILED]
    assert finals[0].details["code"] == "INSTALL_ROLLED_BACK"
    assert rig.boot.state().running_version == Version.parse("1.0.0")


def test_a_versionless_plan_still_succeeds_without_a_cut(tmp_path: Path) -> None:
    rig = _run(tmp_path, "none")
    finals = [report.status for report in rig.source.reports if report.status.is_terminal]
    assert finals == [JobStatus.SUCCEEDED]
    assert rig.boot.state().running_version == Version.parse("1.0.1")

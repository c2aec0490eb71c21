"""Hypothesis: the twin orchestrator's parser and job source only ever raise the project's typed errors."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ota_core.errors import OtaError
from ota_core.models import JobEvent, JobEventKind
from ota_core.mqtt import MqttConnection, MqttSettings
from ota_core.state_store import FileStateStore
from ota_jobs.azure import MxchipFirmwareParser, MxchipReporter, TwinClient
from ota_orchestrators.azure_twin import FirmwareTwinJobSource, FirmwareTwinParser, firmware_job_id

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**60), max_value=2**60)
           | st.floats(allow_nan=False) | st.text(max_size=30))
firmware = st.fixed_dictionaries(
    {},
    optional={
        "fwVersion": scalars | st.from_regex(r"v?[0-9]{1,3}(\.[0-9]{1,3}){0,3}", fullmatch=True),
        "fwPackageURI": scalars | st.sampled_from(["https://h/fw.bin", "http://h/x", "ftp://h", "https://"]),
        "fwPackageCheckValue": scalars | st.from_regex(r"(0x)?[0-9a-fA-F]{0,6}z?", fullmatch=True),
        "fwSize": scalars,
    },
)
documents = st.one_of(st.dictionaries(st.text(max_size=8), scalars, max_size=3),
                      st.builds(lambda f: {"firmware": f}, firmware | scalars))


@settings(max_examples=150, deadline=None)
@given(documents, st.sampled_from(["0", "1.0.0", "9.9", "junk"]))
def test_parser_raises_only_typed_errors(document: dict[str, Any], base: str) -> None:
    with contextlib.suppress(OtaError):
        FirmwareTwinParser(allow_http=True).parse(
            JobEvent(JobEventKind.NEW, "j", document, {"base_version": base}))


@settings(max_examples=150, deadline=None)
@given(documents)
def test_job_source_interprets_or_raises_typed_errors(document: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        connection = MqttConnection(MqttSettings(broker_url="mqtt://127.0.0.1:1", client_id="fuzz"))
        source = FirmwareTwinJobSource(TwinClient(connection), MxchipReporter("1.0.0"),
                                       MxchipFirmwareParser("1.0.0"), state_store=FileStateStore(Path(directory)))
        with contextlib.suppress(OtaError):
            event = source.interpret(document, 1)
            if event is not None and event.kind is JobEventKind.NEW:
                assert event.job_id == firmware_job_id(document["firmware"])

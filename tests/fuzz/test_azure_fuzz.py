"""Hypothesis: the twin, MXChip and Device Update decoders only ever raise the project's typed errors."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ota_core.errors import OtaError
from ota_core.models import JobEvent, JobEventKind
from ota_jobs.azure import (
    AduParser,
    AduWorkflowTracker,
    MxchipFirmwareParser,
    RetryPolicy,
    TwinCore,
    parse_check_value,
    parse_service_request,
    parse_update_manifest,
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=25,
)
topics = st.sampled_from(
    [
        "$iothub/twin/res/200/?$rid=1",
        "$iothub/twin/res/204/?$rid=2&$version=3",
        "$iothub/twin/res/429/?$rid=1",
        "$iothub/twin/PATCH/properties/desired/?$version=5",
        "$iothub/methods/POST/m/?$rid=9",
        "$iothub/twin/res/",
    ]
) | st.text(max_size=60).map(lambda t: "$iothub/" + t)


def _maybe(value: Any) -> bytes:
    return json.dumps(value).encode()


@settings(max_examples=200, deadline=None)
@given(topic=topics, payload=st.binary(max_size=200) | json_values.map(_maybe), now=st.floats(0, 1e6))
def test_twin_core_receive(topic: str, payload: bytes, now: float) -> None:
    core = TwinCore(retry=RetryPolicy(max_attempts=2))
    core.request_twin(0.0)
    core.patch_reported({"a": 1}, 0.0)
    try:
        core.receive(topic, payload, now)
        core.poll(now + 100)
    except OtaError:
        pass


@settings(max_examples=200, deadline=None)
@given(patch=st.dictionaries(st.text(max_size=10), json_values, max_size=5))
def test_twin_core_reported_patches(patch: dict[str, Any]) -> None:
    with contextlib.suppress(OtaError):
        TwinCore().patch_reported(patch, 0.0)


firmware = st.fixed_dictionaries(
    {},
    optional={
        "fwVersion": st.text(max_size=10) | json_values,
        "fwPackageURI": st.sampled_from(["https://h/f.bin", "http://h/f", "https://", "x"])
        | st.text(max_size=20)
        | json_values,
        "fwPackageCheckValue": st.text(max_size=10) | json_values,
        "fwSize": st.integers(-5, 10**7) | json_values,
    },
)


@settings(max_examples=200, deadline=None)
@given(
    doc=st.one_of(
        firmware.map(lambda f: {"firmware": f}), firmware.map(lambda f: {"desired": {"firmware": f}}), json_values
    )
)
def test_mxchip_parser(doc: Any) -> None:
    with contextlib.suppress(OtaError):
        MxchipFirmwareParser("1.0.0").parse(JobEvent(JobEventKind.NEW, document=doc if isinstance(doc, dict) else {}))


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=80))
def test_check_value(text: str) -> None:
    with contextlib.suppress(OtaError):
        assert 0 <= parse_check_value(text) <= 0xFFFF


files = st.dictionaries(
    st.text(max_size=6),
    st.fixed_dictionaries(
        {},
        optional={
            "fileName": st.text(max_size=10) | json_values,
            "sizeInBytes": st.integers(-1, 10**6) | json_values,
            "hashes": st.just({"sha256": "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="}) | json_values,
        },
    ),
    max_size=3,
)
manifests = st.fixed_dictionaries(
    {},
    optional={
        "manifestVersion": st.sampled_from(["4", "5", "5.0", "3"]) | json_values,
        "updateId": st.just({"provider": "C", "name": "N", "version": "1.0"}) | json_values,
        "compatibility": st.just([{"deviceManufacturer": "c"}]) | json_values,
        "instructions": st.fixed_dictionaries({"steps": st.lists(json_values, max_size=3)}) | json_values,
        "files": files | json_values,
        "detachedManifestFileId": st.text(max_size=6) | json_values,
    },
)


@settings(max_examples=200, deadline=None)
@given(manifest=manifests | json_values, raw=st.binary(max_size=100))
def test_update_manifest(manifest: Any, raw: bytes) -> None:
    for text in (json.dumps(manifest), raw):
        with contextlib.suppress(OtaError):
            parse_update_manifest(text)


services = st.fixed_dictionaries(
    {},
    optional={
        "workflow": st.fixed_dictionaries(
            {},
            optional={
                "action": st.sampled_from([3, 255, 0, "3"]) | json_values,
                "id": st.text(max_size=8) | json_values,
                "retryTimestamp": st.text(max_size=8) | json_values,
            },
        ),
        "updateManifest": manifests.map(json.dumps) | json_values,
        "updateManifestSignature": st.text(max_size=10),
        "fileUrls": st.dictionaries(
            st.text(max_size=6), st.sampled_from(["http://h/x", "ftp://x", None]) | json_values, max_size=3
        )
        | json_values,
    },
)


@settings(max_examples=200, deadline=None)
@given(service=services | json_values)
def test_adu_service_and_parser(service: Any) -> None:
    tracker = AduWorkflowTracker()
    try:
        request = parse_service_request(service)
        tracker.decide(request.workflow)
    except OtaError:
        pass
    with contextlib.suppress(OtaError):
        AduParser().parse(JobEvent(JobEventKind.NEW, document={"deviceUpdate": {"service": service}}))

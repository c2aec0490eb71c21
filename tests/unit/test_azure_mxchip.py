"""MXChip DevKit firmware schema: check values, versions, parser and reporter vocabularies."""

from __future__ import annotations

import datetime

import pytest

from ota_core.models import JobEvent, JobEventKind
from ota_jobs.azure import (
    DEVKIT_VOCABULARY,
    TUTORIAL_VOCABULARY,
    FirmwareStatus,
    FirmwareSubstatus,
    InsecureUriError,
    MxchipDocumentError,
    MxchipFirmwareParser,
    MxchipReporter,
    compare_fw_versions,
    crc16_xmodem,
    extract_firmware,
    format_check_value,
    format_fw_time,
    parse_check_value,
)

T0 = datetime.datetime(2018, 8, 3, 10, 16, 34, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    ("data", "crc", "text"),
    [
        (b"", 0x0000, "0"),
        (b"123456789", 0x31C3, "31c3"),
        (b"\x00", 0x0000, "0"),
        (b"\xff\xff\xff\xff", 0x99CF, "99cf"),
        (bytes(range(256)), 0x7E55, "7e55"),
        (b"The quick brown fox jumps over the lazy dog", 0xF0C8, "f0c8"),
    ],
)
def test_crc_vectors(data: bytes, crc: int, text: str) -> None:
    assert crc16_xmodem(data) == crc
    assert crc16_xmodem(data[5:], crc16_xmodem(data[:5])) == crc
    assert format_check_value(crc) == text
    assert parse_check_value(text) == crc


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("31c3", 0x31C3),
        ("31C3", 0x31C3),
        ("0x31c3", 0x31C3),
        ("031c3", 0x31C3),
        ("31c3zz", 0x31C3),
        ("  +a1b", 0xA1B),
        ("zz", 0),
        ("0x", 0),
        ("0xg", 0),
        ("", 0),
    ],
)
def test_check_value_strtoul(text: str, value: int) -> None:
    assert parse_check_value(text) == value


@pytest.mark.parametrize("bad", ["123456abcde", "1" * 65, 5])
def test_check_value_bad(bad: object) -> None:
    with pytest.raises(MxchipDocumentError):
        parse_check_value(bad)  # type: ignore[arg-type]
    with pytest.raises(MxchipDocumentError):
        format_check_value(0x10000)


@pytest.mark.parametrize(
    ("a", "b", "result"),
    [
        ("1.0.1", "1.0.0", 1),
        ("1.0.0", "1.0.1", -1),
        ("1.0", "1.0.0", 0),
        ("1.10.0", "1.9.9", 1),
        ("v1.2", "1.2", 0),
        ("1.0.1-beta", "1.0.1", 0),
        ("2", "1.99.99", 1),
        ("1.0.0.1", "1.0.0", 1),
        ("", "", 0),
        ("abc", "0", 0),
    ],
)
def test_version_compare_vectors(a: str, b: str, result: int) -> None:
    assert compare_fw_versions(a, b) == result


def fw(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "fwVersion": "1.0.1",
        "fwPackageURI": "https://h/fw.bin",
        "fwPackageCheckValue": "31c3",
        "fwSize": 9,
    }
    base.update(over)
    return base


def event(doc: dict[str, object]) -> JobEvent:
    return JobEvent(JobEventKind.NEW, document=doc)


def test_parser_builds_plan_from_patch_and_full_twin() -> None:
    parser = MxchipFirmwareParser("1.0.0")
    docs: list[dict[str, object]] = [{"firmware": fw()}, {"desired": {"firmware": fw()}}]
    for doc in docs:
        plan = parser.parse(event(doc))
        assert plan is not None and plan.origin == "azure-mxchip"
        (target,) = plan.files
        assert target.size == 9 and target.name == "fw.bin" and target.integrity.crc16_xmodem == 0x31C3
        assert target.locations[0].uri == "https://h/fw.bin" and plan.attributes["fw_version"] == "1.0.1"
        assert plan.job_id == "firmware-1.0.1"


def test_parser_nothing_to_do() -> None:
    parser = MxchipFirmwareParser("1.0.1")
    assert parser.parse(event({"other": 1})) is None
    assert parser.parse(event({"firmware": None})) is None
    assert parser.parse(event({"firmware": fw()})) is None
    assert parser.parse(event({"firmware": fw(fwVersion="1.0.0")})) is None


def test_parser_http_policy_and_check_value_optional() -> None:
    with pytest.raises(InsecureUriError) as err:
        MxchipFirmwareParser("1.0.0").parse(event({"firmware": fw(fwPackageURI="http://h/fw.bin")}))
    assert err.value.code == "AZURE_MXCHIP_URI_NOT_HTTPS"
    plan = MxchipFirmwareParser("1.0.0", allow_http=True).parse(
        event({"firmware": fw(fwPackageURI="http://h/fw.bin", fwPackageCheckValue=None, fwSize=9.0)})
    )
    assert plan is not None and plan.files[0].integrity.crc16_xmodem is None


@pytest.mark.parametrize(
    "firmware",
    [
        fw(fwVersion=None),
        fw(fwPackageURI=None),
        fw(fwVersion=3),
        fw(fwPackageURI=""),
        fw(fwSize="9"),
        fw(fwSize=-1),
        fw(fwSize=True),
        fw(fwPackageURI="https:///nohost"),
        fw(fwPackageURI="ftp://h/x"),
        fw(fwPackageCheckValue="123456abcde"),
        fw(fwPackageURI="https://[bad"),
        fw(fwSize=None),
    ],
)
def test_parser_bad_documents(firmware: dict[str, object]) -> None:
    with pytest.raises(MxchipDocumentError):
        MxchipFirmwareParser("1.0.0").parse(event({"firmware": firmware}))


def test_parser_size_limits() -> None:
    with pytest.raises(MxchipDocumentError):
        MxchipFirmwareParser("1.0.0", max_size=8).parse(event({"firmware": fw()}))
    plan = MxchipFirmwareParser("1.0.0", require_size=False).parse(event({"firmware": fw(fwSize=None)}))
    assert plan is not None and plan.files[0].size == 0
    with pytest.raises(MxchipDocumentError):
        extract_firmware({"firmware": [1]})
    with pytest.raises(MxchipDocumentError):
        extract_firmware([])  # type: ignore[arg-type]


def test_devkit_reports() -> None:
    r = MxchipReporter("1.0.0")
    assert r.current() == {
        "firmware": {
            "type": "IoTDevKit",
            "currentFwVersion": "1.0.0",
            "pendingFwVersion": "",
            "fwUpdateStatus": "Current",
            "fwUpdateSubstatus": "",
        }
    }
    d = r.downloading("1.0.1", "https://h/fw.bin", T0)["firmware"]
    assert d["fwUpdateStatus"] == "Downloading" and d["fwUpdateSubstatus"] == "https://h/fw.bin"
    assert d["lastFwUpdateStartTime"] == "2018-08-03T10:16:34.0000000Z" and d["lastFwUpdateEndTime"] == ""
    e = r.error("1.0.1", FirmwareSubstatus.VERIFY_FAILED)["firmware"]
    assert (e["fwUpdateStatus"], e["fwUpdateSubstatus"], e["lastFwUpdateStartTime"]) == ("Error", "VerifyFailed", "")
    a = r.applying("1.0.1", T0, T0 + datetime.timedelta(seconds=66))["firmware"]
    assert a["fwUpdateStatus"] == "Applying" and a["lastFwUpdateEndTime"] == "2018-08-03T10:17:40.0000000Z"
    assert r.verifying("1.0.1", T0)["firmware"]["fwUpdateStatus"] == "Verifying"
    assert r.rebooting("1.0.1", T0)["firmware"]["fwUpdateStatus"] == "Applying"
    assert r.rolled_back("1.0.1", "1.0.0")["firmware"]["fwUpdateStatus"] == "Error"


def test_tutorial_vocabulary() -> None:
    r = MxchipReporter("1.0.0", TUTORIAL_VOCABULARY)
    assert "type" not in r.current()["firmware"]
    assert r.rebooting("2", T0)["firmware"]["fwUpdateStatus"] == "rebooting"
    rb = r.rolled_back("2", "1.0.0")["firmware"]
    assert rb["fwUpdateStatus"] == "rolledback" and rb["fwUpdateSubstatus"] == "Rolled back to: 1.0.0"
    assert TUTORIAL_VOCABULARY.status_of("CURRENT") is FirmwareStatus.CURRENT
    assert DEVKIT_VOCABULARY.status_of("current") is FirmwareStatus.CURRENT
    assert DEVKIT_VOCABULARY.status_of("bogus") is None
    assert format_fw_time(T0) == "2018-08-03T10:16:34.0000000Z"

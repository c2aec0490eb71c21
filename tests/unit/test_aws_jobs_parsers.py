"""The afr_ota parser, the generic HTTP document parser and the parser chain, with reference vectors."""

from __future__ import annotations

import base64
import copy
import hashlib
from typing import Any

import pytest

from ota_core.errors import ConfigurationError, JobDocumentError
from ota_core.models import JobEvent, JobEventKind, JobStatus, LocationKind, UpdatePlan
from ota_jobs.parsers import (
    AfrOtaParser,
    AfrOtaParserConfig,
    HttpDocumentParser,
    HttpDocumentParserConfig,
    NoParserAcceptedError,
    ParserChain,
    ParserFailedError,
    UnsafeFilePathError,
    default_parser_chain,
    rejection_report,
    safe_relative_path,
)

SIG = "MEYCIQCVWi3ki1d9fqa1vrRS3dyDE7qJv4Dl1guB9qBzvTz7AgIhAIdTm0MeZa2aHpHZnKQERLFpI69ii3GUhycQBOVqqP3N"
VALID_MQTT: dict[str, Any] = {
    "afr_ota": {
        "protocols": ["MQTT"],
        "streamname": "AFR_OTA-streamname",
        "files": [
            {
                "filepath": "/device",
                "filesize": 123456789,
                "fileid": 0,
                "certfile": "certfile.cert",
                "sig-sha256-ecdsa": SIG,
            }
        ],
    }
}
VALID_HTTP: dict[str, Any] = {
    "afr_ota": {
        "protocols": ["HTTP"],
        "files": [
            {
                "filepath": "/device",
                "filesize": 343135,
                "fileid": 0,
                "certfile": "/strangepath/certificate.cert",
                "update_data_url": "presignedS3Url.s3.amazon.com",
                "auth_scheme": "aws.s3.presigned",
                "sig-sha256-ecdsa": SIG,
            }
        ],
    }
}
RUSTOT_UNSIGNED: dict[str, Any] = {
    "afr_ota": {
        "protocols": ["MQTT"],
        "streamname": "AFR_OTA-d11032e9-38d5-4dca-8c7c-1e6f24533ede",
        "files": [
            {
                "filepath": "3.8.4",
                "filesize": 537600,
                "fileid": 0,
                "certfile": None,
                "fileType": 0,
                "update_data_url": None,
                "auth_scheme": None,
                "sig--": None,
            }
        ],
    }
}


def event(document: dict[str, Any], job_id: str = "job-1") -> JobEvent:
    return JobEvent(kind=JobEventKind.NEW, job_id=job_id, document=document)


def parse(document: dict[str, Any], config: AfrOtaParserConfig | None = None) -> UpdatePlan:
    config = config or AfrOtaParserConfig(max_file_size=2**32 - 1)
    plan = AfrOtaParser(config).parse(event(document))
    assert plan is not None
    return plan


def test_valid_mqtt_document() -> None:
    plan = parse(VALID_MQTT)
    assert plan.origin == "aws-afr-ota"
    assert plan.job_id == "job-1"
    (target,) = plan.files
    assert target.size == 123456789
    assert target.name == "/device"
    assert target.file_type is None
    (location,) = target.locations
    assert location.kind is LocationKind.MQTT_STREAM
    assert location.uri == "AFR_OTA-streamname"
    assert location.file_id == 0
    (signature,) = target.integrity.signatures
    assert signature.hash_algorithm == "sha256"
    assert signature.signature_algorithm == "ecdsa"
    assert signature.value == base64.b64decode(SIG)
    assert signature.certificate_ref == "certfile.cert"
    assert plan.attributes["stream_name"] == "AFR_OTA-streamname"
    assert plan.attributes["signature_keys"] == ["sig-sha256-ecdsa"]


def test_valid_http_document() -> None:
    plan = parse(VALID_HTTP)
    (location,) = plan.files[0].locations
    assert location.kind is LocationKind.HTTP
    assert location.uri == "presignedS3Url.s3.amazon.com"
    assert location.auth_scheme == "aws.s3.presigned"
    assert plan.attributes["selected_protocol"] == "HTTP"


def test_unsigned_document_with_nulls() -> None:
    plan = parse(RUSTOT_UNSIGNED)
    assert plan.files[0].integrity.signatures == ()
    assert plan.files[0].file_type == 0
    assert plan.files[0].size == 537600


def test_multi_file_document() -> None:
    doc = copy.deepcopy(VALID_MQTT)
    doc["afr_ota"]["files"].append(
        {
            "filepath": "/path2",
            "filesize": 101010,
            "fileid": 13,
            "certfile": "certfile2.cert",
            "sig-sha256-ecdsa": "c2lnbmF0dXJl",
        }
    )
    plan = parse(doc)
    assert [f.locations[0].file_id for f in plan.files] == [0, 13]
    assert plan.files[1].size == 101010


@pytest.mark.parametrize(
    ("preference", "expected"),
    [(("MQTT", "HTTP"), [LocationKind.MQTT_STREAM, LocationKind.HTTP]), (("HTTP",), [LocationKind.HTTP])],
)
def test_protocol_preference(preference: tuple[str, ...], expected: list[LocationKind]) -> None:
    doc = copy.deepcopy(VALID_HTTP)
    doc["afr_ota"]["protocols"] = ["MQTT", "HTTP"]
    doc["afr_ota"]["streamname"] = "AFR_OTA-streamname"
    doc["afr_ota"]["files"][0]["fileType"] = 66
    plan = parse(doc, AfrOtaParserConfig(preferred_protocols=preference, max_file_size=2**32 - 1))
    assert [loc.kind for loc in plan.files[0].locations] == expected
    assert plan.files[0].file_type == 66


def test_numeric_strings() -> None:
    doc = copy.deepcopy(VALID_MQTT)
    doc["afr_ota"]["files"][0].update({"filesize": "1024", "fileid": "3", "fileType": "7"})
    plan = parse(doc)
    assert plan.files[0].size == 1024
    assert plan.files[0].locations[0].file_id == 3
    with pytest.raises(JobDocumentError):
        parse(doc, AfrOtaParserConfig(allow_numeric_strings=False))


def test_all_signature_variants_and_key_selection() -> None:
    doc = copy.deepcopy(VALID_MQTT)
    file = doc["afr_ota"]["files"][0]
    del file["sig-sha256-ecdsa"]
    for key in ("sig-sha1-rsa", "sig-sha256-rsa", "sig-sha1-ecdsa", "sig-sha256-ecdsa"):
        file[key] = "c2ln"
    plan = parse(doc)
    assert {(s.hash_algorithm, s.signature_algorithm) for s in plan.files[0].integrity.signatures} == {
        ("sha1", "rsa"),
        ("sha256", "rsa"),
        ("sha1", "ecdsa"),
        ("sha256", "ecdsa"),
    }
    only = parse(doc, AfrOtaParserConfig(signature_keys=frozenset({"sig-sha256-rsa"}), max_file_size=2**32 - 1))
    assert [s.signature_algorithm for s in only.files[0].integrity.signatures] == ["rsa"]


def test_not_mine() -> None:
    parser = AfrOtaParser()
    assert parser.parse(event({"custom_job": "test"})) is None
    assert parser.parse(event({})) is None


def _mutate(path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(VALID_MQTT)
    target: Any = doc["afr_ota"]
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if key.isdigit() else target[key]
    if value is _DELETE:
        del target[keys[-1]]
    else:
        target[keys[-1]] = value
    return doc


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("files.0.filesize", -123456789),
        ("files.0.filesize", ""),
        ("files.0.filesize", 99999999999999),
        ("files.0.filesize", 0),
        ("files.0.filesize", "NaN"),
        ("files.0.filesize", 19223372036854775808),
        ("files.0.filesize", 1024.0),
        ("files.0.filesize", True),
        ("files.0.filesize", None),
        ("files.0.fileid", 256),
        ("files.0.fileid", "NaN"),
        ("files.0.fileType", "badParameter"),
        ("files.0.fileType", 256),
        ("protocols", []),
        ("protocols", ["XYZ"]),
        ("protocols", ["MQTT", "MQTT"]),
        ("protocols", ["MQTT", "HTTP", "MQTT"]),
        ("protocols", "MQTT"),
        ("protocols", _DELETE),
        ("files.0.filesize", _DELETE),
        ("files.0.fileid", _DELETE),
        ("files.0.filepath", _DELETE),
        ("files.0.filepath", 5),
        ("files.0.certfile", 5),
        ("files.0.sig-sha256-ecdsa", "Zg==="),
        ("files.0.sig-sha256-ecdsa", ""),
        ("files.0.sig-sha256-ecdsa", 5),
        ("files.0.sig-md5-ecdsa", "c2ln"),
        ("files.0.sig--", "c2ln"),
        ("streamname", ""),
        ("streamname", _DELETE),
        ("streamname", "has space"),
        ("files", []),
        ("files", {}),
        ("files", [5]),
        ("files.0.filepath", "../../etc/passwd"),
        ("files.0.filepath", "/a/../b"),
        ("files.0.filepath", "bad\x00name"),
        ("files.0.filepath", ""),
    ],
)
def test_invalid_afr_ota_documents(path: str, value: Any) -> None:
    with pytest.raises(JobDocumentError):
        parse(_mutate(path, value))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("update_data_url", ""),
        ("update_data_url", _DELETE),
        ("update_data_url", "${aws:iot:s3-presigned-url:https://s3.region.amazonaws.com/b/k}"),
        ("auth_scheme", _DELETE),
        ("auth_scheme", 5),
    ],
)
def test_invalid_http_fields(key: str, value: Any) -> None:
    doc = copy.deepcopy(VALID_HTTP)
    if value is _DELETE:
        del doc["afr_ota"]["files"][0][key]
    else:
        doc["afr_ota"]["files"][0][key] = value
    with pytest.raises(JobDocumentError):
        parse(doc)


def test_protocol_not_accepted_by_device() -> None:
    with pytest.raises(JobDocumentError):
        parse(VALID_HTTP, AfrOtaParserConfig(preferred_protocols=("MQTT",)))


def test_limits() -> None:
    with pytest.raises(JobDocumentError):
        parse(VALID_MQTT, AfrOtaParserConfig(max_file_size=1000))
    doc = copy.deepcopy(VALID_MQTT)
    base = doc["afr_ota"]["files"][0]
    doc["afr_ota"]["files"] = [dict(base, fileid=i) for i in range(11)]
    with pytest.raises(JobDocumentError, match="at most 10"):
        parse(doc)
    doc["afr_ota"]["files"] = [dict(base), dict(base)]
    with pytest.raises(JobDocumentError, match="same fileid"):
        parse(doc)
    big = copy.deepcopy(VALID_MQTT)
    big["afr_ota"]["padding"] = "x" * 33000
    with pytest.raises(JobDocumentError, match="32 KB"):
        parse(big)
    with pytest.raises(JobDocumentError):
        parse({"afr_ota": "string"})
    for bad in ((), ("FTP",), ("MQTT", "MQTT")):
        with pytest.raises(ConfigurationError):
            AfrOtaParserConfig(preferred_protocols=bad)


def test_filepath_as_path() -> None:
    config = AfrOtaParserConfig(filepath_is_path=True, max_file_size=2**32 - 1)
    with pytest.raises(UnsafeFilePathError):
        parse(VALID_MQTT, config)
    doc = _mutate("files.0.filepath", "images/app.bin")
    assert parse(doc, config).files[0].name == "images/app.bin"
    assert parse(_mutate("files.0.filepath", None)).files[0].name == "file-0"


def test_safe_relative_path() -> None:
    assert str(safe_relative_path("a/b")) == "a/b"
    assert str(safe_relative_path("/a/b", allow_absolute=True)) == "a/b"
    for bad in ("/a", "..", "a/../b", "./a", "a\\b", "", "a\nb", "/"):
        with pytest.raises(UnsafeFilePathError):
            safe_relative_path(bad)
    with pytest.raises(UnsafeFilePathError):
        safe_relative_path("/", allow_absolute=True)


# --- generic HTTP document -----------------------------------------------------------------------

DATA = b"firmware image"
HTTP_DOC: dict[str, Any] = {
    "ota_http": {
        "schema_version": 1,
        "version": "1.4.0",
        "files": [
            {
                "name": "firmware.bin",
                "url": "https://bucket.s3.amazonaws.com/firmware.bin?X-Amz-Signature=abc",
                "size": len(DATA),
                "sha256": hashlib.sha256(DATA).hexdigest(),
                "signature": {
                    "hash": "sha256",
                    "algorithm": "ecdsa",
                    "value": SIG,
                    "certificate": "signer.pem",
                },
                "fileType": 1,
            }
        ],
    }
}


def test_http_document() -> None:
    plan = HttpDocumentParser().parse(event(HTTP_DOC))
    assert plan is not None
    assert plan.origin == "http-document"
    assert str(plan.version) == "1.4.0"
    (target,) = plan.files
    assert target.size == len(DATA)
    assert target.integrity.digests["sha256"] == hashlib.sha256(DATA).digest()
    assert target.integrity.signatures[0].certificate_ref == "signer.pem"
    assert target.locations[0].kind is LocationKind.HTTP
    assert target.file_type == 1
    assert HttpDocumentParser().parse(event(VALID_MQTT)) is None


def _http_mutate(key: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(HTTP_DOC)
    file = doc["ota_http"]["files"][0]
    if value is _DELETE:
        del file[key]
    else:
        file[key] = value
    return doc


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("url", "${aws:iot:s3-presigned-url:https://s3.amazonaws.com/bucket/key}"),
        ("url", "http://plain.example/x"),
        ("url", "ftp://x/y"),
        ("url", "https:///nohost"),
        ("url", ""),
        ("url", "http://[::1"),
        ("name", "../escape"),
        ("name", "dir/file"),
        ("name", ""),
        ("size", 0),
        ("size", "12"),
        ("sha256", "abc"),
        ("sha256", _DELETE),
        ("signature", _DELETE),
        ("signature", "x"),
        ("signature", {"hash": "md5", "algorithm": "ecdsa", "value": SIG}),
        ("signature", {"hash": "sha256", "algorithm": "ecdsa", "value": ""}),
        ("signature", {"hash": "sha256", "algorithm": "ecdsa", "value": "!!"}),
        ("signature", {"hash": "sha256", "algorithm": "ecdsa", "value": "===="}),
        ("signature", {"hash": "sha256", "algorithm": "ecdsa", "value": SIG, "certificate": 1}),
        ("fileType", "1"),
    ],
)
def test_invalid_http_documents(key: str, value: Any) -> None:
    with pytest.raises(JobDocumentError):
        HttpDocumentParser().parse(event(_http_mutate(key, value)))


@pytest.mark.parametrize(
    "body",
    [
        "x",
        {"schema_version": 2, "files": []},
        {"schema_version": 1, "files": []},
        {"schema_version": 1, "files": [5]},
        {"schema_version": 1, "version": 5, "files": HTTP_DOC["ota_http"]["files"]},
        {"schema_version": 1, "version": "one", "files": HTTP_DOC["ota_http"]["files"]},
        {"schema_version": 1, "files": HTTP_DOC["ota_http"]["files"] * 2},
        {"schema_version": 1, "files": HTTP_DOC["ota_http"]["files"], "pad": "x" * 33000},
    ],
)
def test_invalid_http_bodies(body: Any) -> None:
    with pytest.raises(JobDocumentError):
        HttpDocumentParser().parse(event({"ota_http": body}))


def test_http_options() -> None:
    relaxed = HttpDocumentParser(HttpDocumentParserConfig(require_signature=False, allow_http=True))
    doc = _http_mutate("signature", _DELETE)
    doc["ota_http"]["files"][0]["url"] = "http://127.0.0.1:8080/f"
    plan = relaxed.parse(event(doc))
    assert plan is not None
    assert plan.files[0].integrity.signatures == ()


# --- chain ---------------------------------------------------------------------------------------


class CustomParser:
    name = "custom"

    def parse(self, event: JobEvent) -> UpdatePlan | None:
        if "custom_job" not in event.document:
            return None
        return UpdatePlan(job_id=event.job_id or "", origin="custom", files=())


class BrokenParser:
    name = "broken"

    def parse(self, event: JobEvent) -> UpdatePlan | None:
        raise KeyError("boom")


class WrongResultParser:
    name = "wrong"

    def parse(self, event: JobEvent) -> UpdatePlan | None:
        return "plan"  # type: ignore[return-value]


def test_chain_order_and_registration() -> None:
    chain = default_parser_chain(AfrOtaParserConfig(max_file_size=2**32 - 1))
    assert [p.name for p in chain.parsers] == ["afr_ota", "http-document"]
    assert chain.parse(event(VALID_MQTT)).origin == "aws-afr-ota"
    assert chain.parse(event(HTTP_DOC)).origin == "http-document"
    with pytest.raises(NoParserAcceptedError) as caught:
        chain.parse(event({"custom_job": "test"}))
    report = rejection_report("job-1", caught.value)
    assert report.status is JobStatus.REJECTED
    assert report.details["code"] == "JOB_DOCUMENT_UNSUPPORTED"
    chain.register(CustomParser(), first=True)
    assert chain.parsers[0].name == "custom"
    assert chain.parse(event({"custom_job": "test"})).origin == "custom"
    with pytest.raises(ConfigurationError):
        chain.register(CustomParser())
    with pytest.raises(ConfigurationError):
        chain.register(object())  # type: ignore[arg-type]
    chain.unregister("custom")
    assert [p.name for p in chain.parsers] == ["afr_ota", "http-document"]


def test_chain_stops_at_own_but_invalid_document() -> None:
    chain = ParserChain([AfrOtaParser(AfrOtaParserConfig(max_file_size=2**32 - 1)), CustomParser()])
    doc = copy.deepcopy(VALID_MQTT)
    doc["custom_job"] = "x"
    doc["afr_ota"]["protocols"] = ["XYZ"]
    with pytest.raises(JobDocumentError) as caught:
        chain.parse(event(doc))
    assert not isinstance(caught.value, NoParserAcceptedError)
    report = rejection_report("job-1", caught.value)
    assert report.details["code"] == "JOB_DOCUMENT_INVALID"


def test_chain_wraps_broken_parsers() -> None:
    with pytest.raises(ParserFailedError):
        ParserChain([BrokenParser()]).parse(event({}))
    with pytest.raises(ParserFailedError):
        ParserChain([WrongResultParser()]).parse(event({}))


def test_rejection_report_strips_control_characters() -> None:
    report = rejection_report("j", JobDocumentError("line one\nline two\t" + "x" * 2000))
    assert "\n" not in report.details["reason"]
    assert len(report.details["reason"]) <= 1024

"""The parser of the ``afr_ota`` job document that AWS IoT ``CreateOTAUpdate`` produces.

Accepted shape (see docs/aws-iot-jobs.md): ``{"afr_ota": {"protocols": [...], "streamname": ..., "files":
[{"filepath", "filesize", "fileid", "certfile", "fileType", "update_data_url", "auth_scheme",
"sig-<hash>-<alg>"}]}}``. JSON ``null`` is accepted wherever real documents carry it, numbers may be
strings of digits (as the FreeRTOS parser accepts; configurable), any ``sig-<hash>-<alg>`` key with hash
sha1/sha256 and algorithm ecdsa/rsa is read. A document without ``afr_ota`` is "not mine"; an
``afr_ota`` document that breaks a rule raises ``JobDocumentError`` and no plan is made from it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import attrs

from ota_core.errors import ConfigurationError, JobDocumentError
from ota_core.models import FileLocation, FileTarget, Integrity, JobEvent, LocationKind, Signature, UpdatePlan
from ota_jobs.parsers._common import (
    MAX_DOCUMENT_CHARS,
    decode_base64,
    document_size,
    is_unresolved_placeholder,
    read_uint,
    safe_relative_path,
)

__all__ = ["AFR_OTA_ORIGIN", "AfrOtaParser", "AfrOtaParserConfig"]

AFR_OTA_ORIGIN = "aws-afr-ota"
_PROTOCOLS = ("MQTT", "HTTP")
_SIGNATURE_KEY = re.compile(r"sig-([a-z0-9]*)-([a-z0-9]*)")
_HASHES = frozenset({"sha1", "sha256"})
_ALGORITHMS = frozenset({"ecdsa", "rsa"})
_UINT32_MAX = 2**32 - 1
_MAX_SIGNATURE_BYTES = 1024


def _check_preference(_instance: object, _attribute: object, value: tuple[str, ...]) -> None:
    if not value or any(item not in _PROTOCOLS for item in value) or len(set(value)) != len(value):
        raise ConfigurationError("preferred_protocols is a non-empty ordered subset of ('MQTT', 'HTTP')")


@attrs.frozen
class AfrOtaParserConfig:
    """Rules of the ``afr_ota`` parser.

    ``preferred_protocols``: the data protocols this device accepts, best first; when a document offers
    several, locations are listed in this order. ``max_file_size``: the largest file accepted (bytes).
    ``max_files``: the most files one document may carry (FreeRTOS' modular parser handles 10).
    ``filepath_is_path``: set when ``filepath`` is used as a file-system path on the device; absolute
    paths are then refused as well as ``..`` (which is always refused).
    ``signature_keys``: if set, only these ``sig-*`` keys are read (others are ignored).
    """

    preferred_protocols: tuple[str, ...] = attrs.field(default=("MQTT", "HTTP"), validator=_check_preference)
    max_file_size: int = attrs.field(default=64 * 1024 * 1024, validator=attrs.validators.gt(0))
    max_files: int = attrs.field(default=10, validator=attrs.validators.in_(range(1, 256)))
    allow_numeric_strings: bool = True
    filepath_is_path: bool = False
    signature_keys: frozenset[str] | None = None


class AfrOtaParser:
    """Turns an ``afr_ota`` job document into an ``UpdatePlan`` (origin ``aws-afr-ota``)."""

    name = "afr_ota"

    def __init__(self, config: AfrOtaParserConfig | None = None) -> None:
        self.config = config or AfrOtaParserConfig()

    def parse(self, event: JobEvent) -> UpdatePlan | None:
        """The plan for ``event``'s document, ``None`` if it is not an ``afr_ota`` document."""
        document = event.document
        if not isinstance(document, Mapping) or "afr_ota" not in document:
            return None
        job_id = event.job_id or ""
        size = document_size(document)
        if size > MAX_DOCUMENT_CHARS:
            raise JobDocumentError("the job document is larger than 32 KB", details={"size": size})
        body = document["afr_ota"]
        if not isinstance(body, Mapping):
            raise JobDocumentError("afr_ota must be a JSON object")
        offered = self._protocols(body)
        usable = [protocol for protocol in self.config.preferred_protocols if protocol in offered]
        if not usable:
            raise JobDocumentError(
                "the job offers no data protocol this device accepts",
                details={"offered": list(offered), "accepted": list(self.config.preferred_protocols)},
            )
        stream_name = self._stream_name(body) if "MQTT" in usable else None
        files = self._files(body, usable, stream_name)
        attributes: dict[str, Any] = {
            "protocols": list(offered),
            "selected_protocol": usable[0],
            "signature_keys": sorted({key for f in files for key in f[1]}),
        }
        if stream_name is not None:
            attributes["stream_name"] = stream_name
        return UpdatePlan(job_id=job_id, origin=AFR_OTA_ORIGIN, files=tuple(f[0] for f in files), attributes=attributes)

    # --- pieces ----------------------------------------------------------------------------------

    @staticmethod
    def _protocols(body: Mapping[str, Any]) -> tuple[str, ...]:
        protocols = body.get("protocols")
        if not isinstance(protocols, list) or not 1 <= len(protocols) <= len(_PROTOCOLS):
            raise JobDocumentError("protocols must be a list of one or two protocol names")
        for protocol in protocols:
            if protocol not in _PROTOCOLS:
                raise JobDocumentError("unknown data protocol", details={"protocol": repr(protocol)[:50]})
        if len(set(protocols)) != len(protocols):
            raise JobDocumentError("protocols lists a protocol twice")
        return tuple(protocols)

    @staticmethod
    def _stream_name(body: Mapping[str, Any]) -> str:
        name = body.get("streamname")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,128}", name):
            raise JobDocumentError(
                "MQTT needs a streamname of 1..128 characters of A-Z a-z 0-9 _ -",
                details={"streamname": repr(name)[:200]},
            )
        return name

    def _files(
        self, body: Mapping[str, Any], usable: list[str], stream_name: str | None
    ) -> list[tuple[FileTarget, list[str]]]:
        files = body.get("files")
        if not isinstance(files, list) or not files:
            raise JobDocumentError("files must be a non-empty list")
        if len(files) > self.config.max_files:
            raise JobDocumentError(
                f"a job document may carry at most {self.config.max_files} files",
                details={"files": len(files)},
            )
        result = [self._file(index, item, usable, stream_name) for index, item in enumerate(files)]
        file_ids = [file_id for _, _, file_id in result]
        if len(set(file_ids)) != len(file_ids):
            raise JobDocumentError("two files share the same fileid")
        return [(target, keys) for target, keys, _ in result]

    def _file(
        self, index: int, item: object, usable: list[str], stream_name: str | None
    ) -> tuple[FileTarget, list[str], int]:
        if not isinstance(item, Mapping):
            raise JobDocumentError("each entry of files must be a JSON object", details={"index": index})
        numeric = self.config.allow_numeric_strings
        if "filesize" not in item or "fileid" not in item:
            raise JobDocumentError("a file needs filesize and fileid", details={"index": index})
        size = read_uint(
            item["filesize"],
            "filesize",
            minimum=1,
            maximum=min(self.config.max_file_size, _UINT32_MAX),
            allow_numeric_string=numeric,
        )
        file_id = read_uint(item["fileid"], "fileid", maximum=255, allow_numeric_string=numeric)
        file_type = None
        if item.get("fileType") is not None:
            file_type = read_uint(item["fileType"], "fileType", maximum=255, allow_numeric_string=numeric)
        name = self._file_name(item, index, file_id)
        certfile = item.get("certfile")
        if certfile is not None and not isinstance(certfile, str):
            raise JobDocumentError("certfile must be a string or null", details={"index": index})
        signatures, keys = self._signatures(item, certfile)
        locations: list[FileLocation] = []
        for protocol in usable:
            if protocol == "MQTT":
                assert stream_name is not None
                locations.append(FileLocation(LocationKind.MQTT_STREAM, stream_name, file_id=file_id))
            else:
                locations.append(self._http_location(item, index))
        target = FileTarget(
            name=name,
            size=size,
            locations=tuple(locations),
            integrity=Integrity(signatures=signatures),
            file_type=file_type,
        )
        return target, keys, file_id

    def _file_name(self, item: Mapping[str, Any], index: int, file_id: int) -> str:
        if "filepath" not in item:
            raise JobDocumentError("a file needs filepath", details={"index": index})
        path = item["filepath"]
        if path is None:
            return f"file-{file_id}"
        if not isinstance(path, str):
            raise JobDocumentError("filepath must be a string", details={"index": index})
        safe_relative_path(path, allow_absolute=not self.config.filepath_is_path)
        return path

    def _signatures(self, item: Mapping[str, Any], certfile: str | None) -> tuple[tuple[Signature, ...], list[str]]:
        signatures: list[Signature] = []
        keys: list[str] = []
        allowed = self.config.signature_keys
        for key, value in item.items():
            if not isinstance(key, str) or not key.startswith("sig-"):
                continue
            if allowed is not None and key not in allowed:
                continue
            if value is None:
                continue  # an unsigned job carries "sig--": null
            match = _SIGNATURE_KEY.fullmatch(key)
            if match is None or match.group(1) not in _HASHES or match.group(2) not in _ALGORITHMS:
                raise JobDocumentError("unsupported signature key", details={"key": key[:64]})
            if not isinstance(value, str) or not value:
                raise JobDocumentError("a signature must be a non-empty base64 string", details={"key": key})
            raw = decode_base64(value, key)
            if not raw or len(raw) > _MAX_SIGNATURE_BYTES:
                raise JobDocumentError("a signature has an implausible length", details={"key": key, "bytes": len(raw)})
            signatures.append(
                Signature(
                    value=raw,
                    hash_algorithm=match.group(1),
                    signature_algorithm=match.group(2),
                    certificate_ref=certfile,
                )
            )
            keys.append(key)
        return tuple(signatures), keys

    @staticmethod
    def _http_location(item: Mapping[str, Any], index: int) -> FileLocation:
        url = item.get("update_data_url")
        if not isinstance(url, str) or not url:
            raise JobDocumentError("HTTP needs a non-empty update_data_url", details={"index": index})
        if is_unresolved_placeholder(url):
            raise JobDocumentError(
                "update_data_url still holds an unresolved presigned-URL placeholder",
                details={"index": index},
            )
        if "auth_scheme" not in item:
            raise JobDocumentError("HTTP needs auth_scheme", details={"index": index})
        scheme = item["auth_scheme"]
        if scheme is not None and not isinstance(scheme, str):
            raise JobDocumentError("auth_scheme must be a string or null", details={"index": index})
        return FileLocation(LocationKind.HTTP, url, auth_scheme=scheme)

"""The parser of modular-ota's generic HTTP job document, for jobs created by hand.

Schema (documented in docs/aws-iot-jobs.md)::

    {"ota_http": {
        "schema_version": 1,
        "version": "1.4.0",                      # optional: version of what is installed
        "files": [{
            "name": "firmware.bin",              # a plain name, never a path
            "url": "${aws:iot:s3-presigned-url:https://s3.../bucket/key}",
            "size": 524288,
            "sha256": "<64 hex digits>",
            "signature": {"hash": "sha256", "algorithm": "ecdsa", "value": "<base64>",
                          "certificate": "code-signer.pem"},   # certificate optional
            "fileType": 0                        # optional, 0..255
        }]
    }}

AWS IoT Jobs replaces the placeholder with a presigned URL when the device fetches the document; a URL
that still holds a placeholder is refused. Only ``https`` URLs are accepted unless ``allow_http``.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

import attrs

from ota_core.errors import JobDocumentError, OtaError
from ota_core.models import FileLocation, FileTarget, Integrity, JobEvent, LocationKind, Signature, UpdatePlan
from ota_core.versions import Version
from ota_jobs.parsers._common import (
    MAX_DOCUMENT_CHARS,
    decode_base64,
    document_size,
    is_unresolved_placeholder,
    read_uint,
)

__all__ = ["HTTP_DOCUMENT_KEY", "HTTP_DOCUMENT_ORIGIN", "HttpDocumentParser", "HttpDocumentParserConfig"]

HTTP_DOCUMENT_KEY = "ota_http"
HTTP_DOCUMENT_ORIGIN = "http-document"
_SCHEMA_VERSION = 1
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_HASHES = frozenset({"sha256", "sha384", "sha512"})
_ALGORITHMS = frozenset({"ecdsa", "rsa", "rsa-pss", "ed25519"})
_MAX_FILES = 16
_MAX_URL = 4096


@attrs.frozen
class HttpDocumentParserConfig:
    """Rules of the generic HTTP document parser."""

    max_file_size: int = attrs.field(default=1024 * 1024 * 1024, validator=attrs.validators.gt(0))
    require_signature: bool = True
    allow_http: bool = False


class HttpDocumentParser:
    """Turns an ``ota_http`` document into an ``UpdatePlan`` (origin ``http-document``)."""

    name = "http-document"

    def __init__(self, config: HttpDocumentParserConfig | None = None) -> None:
        self.config = config or HttpDocumentParserConfig()

    def parse(self, event: JobEvent) -> UpdatePlan | None:
        """The plan for ``event``'s document, ``None`` if the document has no ``ota_http`` key."""
        document = event.document
        if not isinstance(document, Mapping) or HTTP_DOCUMENT_KEY not in document:
            return None
        size = document_size(document)
        if size > MAX_DOCUMENT_CHARS:
            raise JobDocumentError("the job document is larger than 32 KB", details={"size": size})
        body = document[HTTP_DOCUMENT_KEY]
        if not isinstance(body, Mapping):
            raise JobDocumentError(f"{HTTP_DOCUMENT_KEY} must be a JSON object")
        if body.get("schema_version") != _SCHEMA_VERSION:
            raise JobDocumentError(
                "unsupported schema_version",
                details={"schema_version": repr(body.get("schema_version"))[:20]},
            )
        version = self._version(body.get("version"))
        files = body.get("files")
        if not isinstance(files, list) or not 1 <= len(files) <= _MAX_FILES:
            raise JobDocumentError(f"files must be a list of 1..{_MAX_FILES} entries")
        targets = tuple(self._file(index, item) for index, item in enumerate(files))
        if len({target.name for target in targets}) != len(targets):
            raise JobDocumentError("two files share the same name")
        return UpdatePlan(
            job_id=event.job_id or "",
            origin=HTTP_DOCUMENT_ORIGIN,
            files=targets,
            version=version,
            attributes={"schema_version": _SCHEMA_VERSION},
        )

    @staticmethod
    def _version(value: object) -> Version | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise JobDocumentError("version must be a string")
        try:
            return Version.parse(value)
        except (OtaError, ValueError):
            raise JobDocumentError("version is not a semantic version", details={"version": value[:50]}) from None

    def _file(self, index: int, item: object) -> FileTarget:
        if not isinstance(item, Mapping):
            raise JobDocumentError("each entry of files must be a JSON object", details={"index": index})
        name = item.get("name")
        if not isinstance(name, str) or _NAME.fullmatch(name) is None or ".." in name:
            raise JobDocumentError("name must be a plain file name (no path)", details={"index": index})
        size = read_uint(
            item.get("size"), "size", minimum=1, maximum=self.config.max_file_size, allow_numeric_string=False
        )
        digest = item.get("sha256")
        if not isinstance(digest, str) or _SHA256.fullmatch(digest) is None:
            raise JobDocumentError("sha256 must be 64 hexadecimal digits", details={"index": index})
        file_type = None
        if item.get("fileType") is not None:
            file_type = read_uint(item["fileType"], "fileType", maximum=255, allow_numeric_string=False)
        signatures = self._signature(item.get("signature"), index)
        location = FileLocation(LocationKind.HTTP, self._url(item.get("url"), index))
        return FileTarget(
            name=name,
            size=size,
            locations=(location,),
            integrity=Integrity(digests={"sha256": bytes.fromhex(digest)}, signatures=signatures),
            file_type=file_type,
        )

    def _url(self, value: object, index: int) -> str:
        if not isinstance(value, str) or not value or len(value) > _MAX_URL:
            raise JobDocumentError("url must be a non-empty string", details={"index": index})
        if is_unresolved_placeholder(value):
            raise JobDocumentError("url still holds an unresolved presigned-URL placeholder", details={"index": index})
        try:
            parts = urllib.parse.urlsplit(value)
        except ValueError:
            raise JobDocumentError("url is not a valid URL", details={"index": index}) from None
        allowed = ("https", "http") if self.config.allow_http else ("https",)
        if parts.scheme not in allowed or not parts.hostname:
            raise JobDocumentError(
                f"url must be an absolute {' or '.join(allowed)} URL",
                details={"index": index, "scheme": parts.scheme[:10]},
            )
        return value

    def _signature(self, value: object, index: int) -> tuple[Signature, ...]:
        if value is None:
            if self.config.require_signature:
                raise JobDocumentError("a signature is required", details={"index": index})
            return ()
        if not isinstance(value, Mapping):
            raise JobDocumentError("signature must be a JSON object", details={"index": index})
        hash_name, algorithm, raw = value.get("hash"), value.get("algorithm"), value.get("value")
        if hash_name not in _HASHES or algorithm not in _ALGORITHMS:
            raise JobDocumentError("unsupported signature hash or algorithm", details={"index": index})
        if not isinstance(raw, str) or not raw:
            raise JobDocumentError("signature value must be a base64 string", details={"index": index})
        certificate: Any = value.get("certificate")
        if certificate is not None and not isinstance(certificate, str):
            raise JobDocumentError("signature certificate must be a string", details={"index": index})
        signature = decode_base64(raw, "signature.value")
        if not signature:
            raise JobDocumentError("signature value is empty", details={"index": index})
        return (
            Signature(
                value=signature,
                hash_algorithm=str(hash_name),
                signature_algorithm=str(algorithm),
                certificate_ref=certificate,
            ),
        )

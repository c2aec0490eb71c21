"""The MXChip IoT DevKit firmware twin schema: desired ``firmware`` in, reported ``firmware`` out.

Desired: ``{"firmware": {"fwVersion", "fwPackageURI", "fwPackageCheckValue", "fwSize"}}``. The check value
is a CRC-16/XMODEM of the package written as hex (the producer writes unpadded lower-case; the device
reads it like C ``strtoul(s, NULL, 16)``, so case, a ``0x`` prefix, leading zeros and trailing junk are
tolerated). The URI must be https unless explicitly allowed. Only a strictly newer version is installed,
compared the way the DevKit compares versions (numeric dot-separated parts).

Reported: ``{"firmware": {type, currentFwVersion, pendingFwVersion, fwUpdateStatus, fwUpdateSubstatus,
lastFwUpdateStartTime, lastFwUpdateEndTime}}`` with a configurable status vocabulary (the DevKit's
``Current``... or the Azure tutorial's lower-case variant with ``rebooting`` and ``rolledback``).
"""

from __future__ import annotations

import enum
import logging
import re
import string
import urllib.parse
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import attrs

from ota_core.models import FileLocation, FileTarget, Integrity, JobEvent, LocationKind, UpdatePlan
from ota_jobs.azure._errors import MxchipDocumentError

__all__ = [
    "DEVKIT_VOCABULARY",
    "TUTORIAL_VOCABULARY",
    "FirmwareStatus",
    "FirmwareSubstatus",
    "FirmwareVocabulary",
    "MxchipFirmware",
    "MxchipFirmwareParser",
    "MxchipReporter",
    "compare_fw_versions",
    "crc16_xmodem",
    "extract_firmware",
    "format_check_value",
    "format_fw_time",
    "parse_check_value",
]

_log = logging.getLogger(__name__)

MXCHIP_MAX_IMAGE = 0xF4000
"""The AZ3166 application and OTA partitions hold 999 424 bytes."""

_MAX_TEXT = 4096
_HEX = re.compile(r"[0-9a-fA-F]*")


def crc16_xmodem(data: bytes, crc: int = 0) -> int:
    """CRC-16/XMODEM (poly 0x1021, init 0, no reflection); pass the previous value to continue a stream.

    Kept minimal on purpose: ota_verify owns the fast streaming implementation used while downloading.
    """
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def format_check_value(crc: int) -> str:
    """The producer's format: unpadded lower-case hex (``0x0a1b`` is written ``"a1b"``)."""
    if not 0 <= crc <= 0xFFFF:
        raise MxchipDocumentError(f"a CRC-16 is 0..0xffff, got {crc!r}")
    return format(crc, "x")


def parse_check_value(text: str) -> int:
    """Read a check value as the device does (``strtoul(s, NULL, 16)``), bounded to 16 bits.

    Leading white space, ``+``, a ``0x`` prefix, any case and leading zeros are accepted; parsing stops at
    the first non-hex character; no digits at all reads as 0. A value above 0xffff cannot match a CRC-16
    and raises ``MxchipDocumentError``.
    """
    if not isinstance(text, str) or len(text) > 64:
        raise MxchipDocumentError("fwPackageCheckValue must be a short string")
    rest = text.lstrip(" \t\n\r\f\v").removeprefix("+")
    if rest[:2] in ("0x", "0X") and rest[2:3] and rest[2:3] in string.hexdigits:
        rest = rest[2:]
    match = _HEX.match(rest)
    digits = match.group(0) if match else ""
    value = int(digits, 16) if digits else 0
    if value > 0xFFFF:
        raise MxchipDocumentError(f"fwPackageCheckValue {text[:20]!r} is larger than a CRC-16")
    return value


def _version_parts(text: str) -> list[int]:
    rest = text.lstrip()
    while rest and not rest[0].isdigit() and rest[0] != ".":
        rest = rest[1:]
    parts: list[int] = []
    for piece in rest.split("."):
        match = re.match(r"\d{1,9}", piece)
        parts.append(int(match.group(0)) if match else 0)
        if match is None or match.end() != len(piece):
            break
    while parts and parts[-1] == 0:
        parts.pop()
    return parts


def compare_fw_versions(a: str, b: str) -> int:
    """Compare firmware versions like the DevKit: numeric dot-separated parts, missing parts are 0.

    ``"1.10.0" > "1.9.9"``, ``"1.0" == "1.0.0"``, ``"v1.2" == "1.2"``, ``"1.0.1-beta" == "1.0.1"``.
    Returns -1, 0 or 1.
    """
    left, right = _version_parts(a), _version_parts(b)
    width = max(len(left), len(right))
    left += [0] * (width - len(left))
    right += [0] * (width - len(right))
    return (left > right) - (left < right)


def format_fw_time(moment: datetime) -> str:
    """The DevKit's time stamp format: ``2018-08-03T10:16:34.0000000Z`` (UTC)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


@attrs.frozen
class MxchipFirmware:
    """The desired ``firmware`` property, checked."""

    version: str
    uri: str
    check_value: int | None
    check_value_text: str | None
    size: int | None


def extract_firmware(document: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """Find ``firmware`` in a full twin (``desired.firmware``), a desired section or a bare patch."""
    if not isinstance(document, Mapping):
        raise MxchipDocumentError("the document must be a JSON object")
    desired = document.get("desired")
    if isinstance(desired, Mapping) and "firmware" in desired:
        document = desired
    if "firmware" not in document:
        return None
    firmware = document["firmware"]
    if firmware is None:
        return None
    if not isinstance(firmware, Mapping):
        raise MxchipDocumentError("desired firmware must be a JSON object")
    return firmware


def _text(firmware: Mapping[str, Any], key: str, *, required: bool) -> str | None:
    value = firmware.get(key)
    if value is None:
        if required:
            raise MxchipDocumentError(f"desired firmware has no {key}")
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > _MAX_TEXT:
        raise MxchipDocumentError(f"desired firmware {key} must be a non-empty string")
    return value


def decode_firmware(firmware: Mapping[str, Any], *, allow_http: bool = False) -> MxchipFirmware:
    """Check the desired ``firmware`` object; raise ``MxchipDocumentError`` (``InsecureUri`` for http)."""
    version = _text(firmware, "fwVersion", required=True)
    uri = _text(firmware, "fwPackageURI", required=True)
    assert version is not None and uri is not None
    check_text = _text(firmware, "fwPackageCheckValue", required=False)
    size = firmware.get("fwSize")
    if size is not None:
        if isinstance(size, float) and size.is_integer():
            size = int(size)
        if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= 2**40:
            raise MxchipDocumentError("desired firmware fwSize must be a positive integer")
    try:
        parsed = urllib.parse.urlsplit(uri.strip())
    except ValueError as exc:
        raise MxchipDocumentError("fwPackageURI is not a URL") from exc
    scheme = parsed.scheme.lower()
    if scheme != "https" and not (allow_http and scheme == "http"):
        raise InsecureUriError(f"fwPackageURI must be https, got scheme {scheme!r}")
    if not parsed.hostname:
        raise MxchipDocumentError("fwPackageURI has no host")
    check = parse_check_value(check_text) if check_text is not None else None
    return MxchipFirmware(version.strip(), uri.strip(), check, check_text, size)


class InsecureUriError(MxchipDocumentError):
    """The package URI is not https (the DevKit reports ``Error``/``URINotHTTPS``)."""

    code = "AZURE_MXCHIP_URI_NOT_HTTPS"


class MxchipFirmwareParser:
    """Job parser for the MXChip ``firmware`` desired property.

    Returns ``None`` when the document has no ``firmware`` or when the desired version is not strictly
    newer than ``current_version`` (nothing to do); raises ``MxchipDocumentError`` for a broken one.
    ``require_size`` follows the DevKit, where a missing ``fwSize`` always fails the size check.
    """

    name = "azure-mxchip"

    def __init__(self, current_version: str, *, allow_http: bool = False, require_size: bool = True,
                 max_size: int | None = None) -> None:
        self.current_version = current_version
        self._allow_http = allow_http
        self._require_size = require_size
        self._max_size = max_size

    def decode(self, document: Mapping[str, Any]) -> MxchipFirmware | None:
        """The checked desired firmware of ``document``, or ``None`` if it has none."""
        firmware = extract_firmware(document)
        return None if firmware is None else decode_firmware(firmware, allow_http=self._allow_http)

    def parse(self, event: JobEvent) -> UpdatePlan | None:
        """Turn the desired properties in ``event.document`` into a single-file plan."""
        firmware = self.decode(event.document)
        if firmware is None:
            return None
        if compare_fw_versions(firmware.version, self.current_version) <= 0:
            _log.info("desired firmware %s is not newer than %s: nothing to do", firmware.version,
                      self.current_version)
            return None
        if firmware.size is None and self._require_size:
            raise MxchipDocumentError("desired firmware has no fwSize",
                                      details={"substatus": FirmwareSubstatus.FILE_SIZE_NOT_MATCH.value})
        if firmware.size is not None and self._max_size is not None and firmware.size > self._max_size:
            raise MxchipDocumentError(f"fwSize {firmware.size} exceeds the image limit {self._max_size}")
        target = FileTarget(
            name=firmware.uri.rsplit("/", 1)[-1] or "firmware.bin",
            size=firmware.size or 0,
            locations=(FileLocation(LocationKind.HTTP, firmware.uri),),
            integrity=Integrity(crc16_xmodem=firmware.check_value),
        )
        return UpdatePlan(
            job_id=event.job_id or f"firmware-{firmware.version}",
            origin=self.name,
            files=(target,),
            attributes={
                "fw_version": firmware.version,
                "fw_package_uri": firmware.uri,
                "fw_check_value": firmware.check_value_text,
                "current_version": self.current_version,
            },
        )


class FirmwareStatus(enum.Enum):
    """The logical update statuses; a vocabulary maps them to the strings a back end expects."""

    CURRENT = "current"
    DOWNLOADING = "downloading"
    VERIFYING = "verifying"
    APPLYING = "applying"
    REBOOTING = "rebooting"
    ERROR = "error"
    ROLLED_BACK = "rolledback"


class FirmwareSubstatus(enum.StrEnum):
    """The DevKit's error substatuses."""

    URI_NOT_HTTPS = "URINotHTTPS"
    DOWNLOAD_FAILED = "DownloadFailed"
    DEVICE_ERROR = "DeviceError"
    FILE_SIZE_NOT_MATCH = "FileSizeNotMatch"
    VERIFY_FAILED = "VerifyFailed"
    APPLY_FAILED = "ApplyFirmwareFailed"


@attrs.frozen
class FirmwareVocabulary:
    """Status strings per logical status; a status missing from ``names`` falls back to ``fallbacks``."""

    names: Mapping[FirmwareStatus, str]
    device_type: str | None = None
    fallbacks: Mapping[FirmwareStatus, FirmwareStatus] = attrs.field(factory=dict)

    def name_of(self, status: FirmwareStatus) -> str:
        """The string to report for ``status``."""
        seen = 0
        while status not in self.names and seen < 8:
            status = self.fallbacks.get(status, FirmwareStatus.ERROR)
            seen += 1
        return self.names[status]

    def status_of(self, text: str) -> FirmwareStatus | None:
        """The logical status of a reported string, matched case-insensitively."""
        lowered = text.lower()
        for status, name in self.names.items():
            if name.lower() == lowered:
                return status
        return None


DEVKIT_VOCABULARY = FirmwareVocabulary(
    names={
        FirmwareStatus.CURRENT: "Current",
        FirmwareStatus.DOWNLOADING: "Downloading",
        FirmwareStatus.VERIFYING: "Verifying",
        FirmwareStatus.APPLYING: "Applying",
        FirmwareStatus.ERROR: "Error",
    },
    device_type="IoTDevKit",
    fallbacks={
        FirmwareStatus.REBOOTING: FirmwareStatus.APPLYING,
        FirmwareStatus.ROLLED_BACK: FirmwareStatus.ERROR,
    },
)
"""The MXChip DevKit sketch's five statuses (rebooting reads as Applying, a rollback as Error)."""

TUTORIAL_VOCABULARY = FirmwareVocabulary(names={status: status.value for status in FirmwareStatus})
"""The Azure firmware-update tutorial's lower-case statuses, including rebooting and rolledback."""


class MxchipReporter:
    """Builds reported ``firmware`` patches in the DevKit's shape, in the chosen vocabulary."""

    def __init__(self, current_version: str, vocabulary: FirmwareVocabulary = DEVKIT_VOCABULARY) -> None:
        self.current_version = current_version
        self.vocabulary = vocabulary

    def _patch(self, status: FirmwareStatus, pending: str, substatus: str,
               start: str | None, end: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if self.vocabulary.device_type:
            body["type"] = self.vocabulary.device_type
        body["currentFwVersion"] = self.current_version
        body["pendingFwVersion"] = pending
        body["fwUpdateStatus"] = self.vocabulary.name_of(status)
        body["fwUpdateSubstatus"] = substatus
        if start is not None:
            body["lastFwUpdateStartTime"] = start
        if end is not None:
            body["lastFwUpdateEndTime"] = end
        return {"firmware": body}

    def current(self, substatus: str = "") -> dict[str, Any]:
        """At boot or after success: the running version, nothing pending."""
        return self._patch(FirmwareStatus.CURRENT, "", substatus, None, None)

    def downloading(self, pending: str, uri: str, started: datetime) -> dict[str, Any]:
        """Download started; the DevKit puts the package URI in the substatus."""
        return self._patch(FirmwareStatus.DOWNLOADING, pending, uri, format_fw_time(started), "")

    def verifying(self, pending: str, started: datetime) -> dict[str, Any]:
        """Checking the downloaded package (the DevKit defines it but never reports it)."""
        return self._patch(FirmwareStatus.VERIFYING, pending, "", format_fw_time(started), "")

    def applying(self, pending: str, started: datetime, ended: datetime) -> dict[str, Any]:
        """Image switched; the device restarts next."""
        return self._patch(FirmwareStatus.APPLYING, pending, "", format_fw_time(started),
                           format_fw_time(ended))

    def rebooting(self, pending: str, started: datetime) -> dict[str, Any]:
        """Restarting into the new image (``Applying`` in the DevKit vocabulary)."""
        return self._patch(FirmwareStatus.REBOOTING, pending, "", format_fw_time(started), "")

    def error(self, pending: str, substatus: str | FirmwareSubstatus) -> dict[str, Any]:
        """The update failed; ``substatus`` says why (the DevKit blanks both times)."""
        return self._patch(FirmwareStatus.ERROR, pending, str(substatus), "", "")

    def rolled_back(self, pending: str, restored: str) -> dict[str, Any]:
        """The new image failed its trial and the previous one runs again."""
        return self._patch(FirmwareStatus.ROLLED_BACK, pending, f"Rolled back to: {restored}", "", "")

"""Shared data models: what an update is, where its files are, and how it is going.

All models are frozen attrs classes, so a plan handed from the parser to the downloader cannot be
changed on the way.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import attrs

from ota_core.versions import Version

__all__ = [
    "FileLocation",
    "FileTarget",
    "Integrity",
    "JobEvent",
    "JobEventKind",
    "JobStatus",
    "LocationKind",
    "Phase",
    "ProgressEvent",
    "Signature",
    "StatusReport",
    "UpdatePlan",
]


def _freeze_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """Copy a mapping so that later changes by the caller do not leak into a frozen model."""
    return dict(value or {})


class LocationKind(enum.StrEnum):
    """How a file can be fetched."""

    MQTT_STREAM = "mqtt-stream"
    HTTP = "http"
    LOCAL = "local"


@attrs.frozen
class FileLocation:
    """One place a file can be fetched from.

    ``uri`` is an https URL for HTTP, the stream name for an MQTT stream, a path for a local file;
    ``file_id`` is the file's id inside an MQTT stream (0..255).
    """

    kind: LocationKind
    uri: str
    file_id: int | None = None
    auth_scheme: str | None = None


@attrs.frozen
class Signature:
    """A detached signature over a file: algorithm names as the job document spells them."""

    value: bytes
    hash_algorithm: str
    signature_algorithm: str
    certificate_ref: str | None = None


@attrs.frozen
class Integrity:
    """What a downloaded file must match: digests by algorithm name, signatures, a CRC."""

    digests: Mapping[str, bytes] = attrs.field(factory=dict, converter=_freeze_mapping)
    signatures: tuple[Signature, ...] = ()
    crc16_xmodem: int | None = None


@attrs.frozen
class FileTarget:
    """One file of an update: its name, exact size, where to get it and how to check it."""

    name: str
    size: int = attrs.field(validator=attrs.validators.ge(0))
    locations: tuple[FileLocation, ...] = ()
    integrity: Integrity = attrs.Factory(Integrity)
    file_type: int | None = None


@attrs.frozen
class UpdatePlan:
    """What the parser decided an update is: the job, its files and where it came from.

    ``origin`` names the parser or protocol that produced the plan (``"aws-afr-ota"``, ``"azure-mxchip"``,
    ``"azure-adu"`` ...); ``attributes`` keeps protocol facts a later phase needs (stream name, workflow id).
    """

    job_id: str
    origin: str
    files: tuple[FileTarget, ...]
    version: Version | None = None
    attributes: Mapping[str, Any] = attrs.field(factory=dict, converter=_freeze_mapping)

    @property
    def total_size(self) -> int:
        """The number of bytes of all files together."""
        return sum(target.size for target in self.files)


class JobStatus(enum.StrEnum):
    """The status values of a job execution, as AWS IoT Jobs names them."""

    QUEUED = "QUEUED"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    REJECTED = "REJECTED"
    CANCELED = "CANCELED"
    REMOVED = "REMOVED"
    TIMED_OUT = "TIMED_OUT"

    @property
    def is_terminal(self) -> bool:
        """True for statuses after which an execution can no longer change."""
        return self not in (JobStatus.QUEUED, JobStatus.IN_PROGRESS)


class Phase(enum.StrEnum):
    """The phases of one update, in the order the engine runs them."""

    NOTIFY = "notify"
    PARSE = "parse"
    POLICY = "policy"
    DOWNLOAD = "download"
    VERIFY = "verify"
    INSTALL = "install"
    ACTIVATE = "activate"
    RESTART = "restart"
    SELF_TEST = "self-test"
    CONFIRM = "confirm"
    REVERT = "revert"
    REPORT = "report"


class JobEventKind(enum.StrEnum):
    """What a job source tells the engine."""

    NEW = "new"
    CHANGED = "changed"
    CANCELLED = "cancelled"
    NOTHING_PENDING = "nothing-pending"


@attrs.frozen
class JobEvent:
    """A job source's news: a job arrived, changed, was cancelled, or nothing is pending."""

    kind: JobEventKind
    job_id: str | None = None
    document: Mapping[str, Any] = attrs.field(factory=dict, converter=_freeze_mapping)
    attributes: Mapping[str, Any] = attrs.field(factory=dict, converter=_freeze_mapping)


@attrs.frozen
class StatusReport:
    """A status the device sends to the cloud for one job."""

    job_id: str
    status: JobStatus
    details: Mapping[str, str] = attrs.field(factory=dict, converter=_freeze_mapping)


@attrs.frozen
class ProgressEvent:
    """Telemetry for one step of an update: phase, bytes so far, rate and an estimate of what is left."""

    job_id: str
    phase: Phase
    bytes_done: int = 0
    bytes_total: int = 0
    rate_bytes_per_second: float = 0.0
    eta_seconds: float | None = None
    message: str = ""

    @property
    def fraction(self) -> float:
        """How much of the phase is done, from 0.0 to 1.0."""
        if self.bytes_total <= 0:
            return 0.0
        return min(1.0, self.bytes_done / self.bytes_total)

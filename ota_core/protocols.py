"""The component interfaces that the phases of an update meet through.

A device application composes an update from objects that satisfy these protocols; any of them can be
replaced by the user's own. They are deliberately small.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import attrs

from ota_core.models import FileLocation, FileTarget, JobEvent, ProgressEvent, StatusReport, UpdatePlan
from ota_core.versions import Version

__all__ = [
    "BlockSink",
    "BootControl",
    "DownloadRequest",
    "Downloader",
    "ImageInfo",
    "ImageState",
    "ImageValidator",
    "IncrementalVerifier",
    "JobParser",
    "JobSource",
    "SlotReader",
    "StateStore",
    "StoredDocument",
    "Verifier",
]


# --- Notify --------------------------------------------------------------------------------------


@runtime_checkable
class JobSource(Protocol):
    """Tells the engine about new, changed and cancelled jobs, and carries status reports back."""

    def start(self, on_event: Callable[[JobEvent], None]) -> None:
        """Begin listening; ``on_event`` is called from the source's thread and must not block."""
        ...

    def request_next(self) -> None:
        """Ask the cloud for the next pending job (the answer arrives through ``on_event``)."""
        ...

    def report(self, report: StatusReport) -> None:
        """Send a status report and wait for the cloud to accept it; raise ``TransportError`` if not."""
        ...

    def stop(self) -> None:
        """Stop listening and release the connection's subscriptions."""
        ...


# --- Parse ---------------------------------------------------------------------------------------


@runtime_checkable
class JobParser(Protocol):
    """Turns a job document into an update plan.

    Returns ``None`` for a document that is not this parser's (the next parser is tried) and raises
    ``JobDocumentError`` for a document that is its own but invalid.
    """

    name: str

    def parse(self, event: JobEvent) -> UpdatePlan | None: ...


# --- Download ------------------------------------------------------------------------------------


@runtime_checkable
class BlockSink(Protocol):
    """Where downloaded bytes go: a slot writer or a file, written at absolute offsets."""

    def write_at(self, offset: int, data: bytes) -> None: ...

    def flush(self) -> None:
        """Make everything written so far durable."""
        ...


@attrs.frozen
class DownloadRequest:
    """One file to fetch from one location into a sink.

    ``progress_key`` names the state-store document that holds resume progress for this file;
    ``verifier`` (if given) is fed every byte in file order, including bytes fetched before a restart
    (the engine hands a fresh verifier to every attempt); ``on_progress`` receives telemetry.
    """

    job_id: str
    target: FileTarget
    location: FileLocation
    sink: BlockSink
    progress_key: str
    verifier: IncrementalVerifier | None = None
    on_progress: Callable[[ProgressEvent], None] | None = None


@runtime_checkable
class Downloader(Protocol):
    """Fetches one file target into a sink, resuming from persisted progress."""

    def supports(self, location: FileLocation) -> bool: ...

    def download(self, request: DownloadRequest) -> None:
        """Fetch the whole file or raise ``DownloadError``; progress survives a power cut."""
        ...


# --- Verify --------------------------------------------------------------------------------------


@runtime_checkable
class IncrementalVerifier(Protocol):
    """Checks one file as its bytes go by, in order."""

    def update(self, data: bytes) -> None: ...

    def finish(self) -> None:
        """Raise ``VerificationError`` unless every check passed; never passes by default."""
        ...


@runtime_checkable
class Verifier(Protocol):
    """Verification of a plan before download and of each file while it downloads."""

    def check_plan(self, plan: UpdatePlan) -> None:
        """Refuse a plan before any byte is fetched (signed manifest, anti-rollback, expiry)."""
        ...

    def begin(self, plan: UpdatePlan, target: FileTarget) -> IncrementalVerifier: ...


@runtime_checkable
class SlotReader(Protocol):
    """Read access to the image stored in a slot."""

    @property
    def size(self) -> int: ...

    def read(self, offset: int, length: int) -> bytes: ...


@attrs.frozen
class ImageInfo:
    """What an image validator learned about a valid image."""

    version: Version
    digest: bytes
    security_counter: int | None = None


@runtime_checkable
class ImageValidator(Protocol):
    """Checks the image in a slot at boot (hash, signature); raises ``VerificationError`` if invalid."""

    def validate(self, slot: SlotReader) -> ImageInfo: ...


# --- Install + hand-off --------------------------------------------------------------------------


@attrs.frozen
class ImageState:
    """Where the device stands: the running image, whether it runs on trial, what is pending."""

    running_version: Version | None
    in_trial: bool
    pending_version: Version | None = None
    boot_attempts_left: int | None = None
    slot: str = ""


@runtime_checkable
class BootControl(Protocol):
    """Writes the inactive slot, activates it for a trial boot, then confirms or reverts."""

    def open_inactive_slot(self, size: int) -> BlockSink:
        """Prepare the inactive slot for an image of ``size`` bytes and return a writer into it.

        The engine calls it again after a restart in the middle of a download: for the same ``size`` it must
        keep the bytes already written, because the download resumes into them.
        """
        ...

    def activate(
        self, *, permanent: bool = False, expected_sha256: bytes | None = None, image_size: int | None = None
    ) -> None:
        """Mark the inactive slot to boot next, on trial unless ``permanent``.

        With ``expected_sha256`` the first ``image_size`` bytes of the slot (the size given to
        ``open_inactive_slot`` by default) are read back and hashed first, so that what is activated is
        what was verified; a mismatch raises ``InstallError`` and nothing is activated.
        """
        ...

    def state(self) -> ImageState: ...

    def confirm(self) -> None:
        """Make the running trial image permanent; idempotent."""
        ...

    def revert(self) -> None:
        """Abandon the trial image and boot the previous one next."""
        ...


# --- Persistence ---------------------------------------------------------------------------------


@attrs.frozen
class StoredDocument:
    """A document read back from the state store, with the schema version it was written with."""

    name: str
    schema_version: int
    data: Mapping[str, Any]


@runtime_checkable
class StateStore(Protocol):
    """Crash-safe persistence of small named JSON documents."""

    def load(self, name: str) -> StoredDocument | None:
        """The last completely written version of ``name``, or ``None`` if it was never written."""
        ...

    def save(self, name: str, data: Mapping[str, Any], *, schema_version: int = 1) -> None:
        """Replace ``name`` atomically: after a power cut the old or the new version is read back."""
        ...

    def delete(self, name: str) -> None: ...

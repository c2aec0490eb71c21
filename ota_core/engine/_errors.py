"""Errors the engine raises or reports, each with its own stable code."""

from __future__ import annotations

from ota_core.errors import DownloadError, InstallError, JobDocumentError, OtaError, PolicyError

__all__ = [
    "DownloadInterruptedError",
    "EngineInternalError",
    "NoDownloaderError",
    "NoParserError",
    "RolledBackError",
    "SelfTestFailedError",
    "SelfTestTimeoutError",
    "UpdateLoopError",
    "VersionRejectedError",
]


class NoParserError(JobDocumentError):
    """No parser in the chain recognised the job document."""

    code = "JOB_DOCUMENT_UNSUPPORTED"


class VersionRejectedError(PolicyError):
    """The update would install the running version again, or an older one, and the engine forbids it."""

    code = "POLICY_VERSION_REJECTED"


class NoDownloaderError(DownloadError):
    """No downloader supports any location of a file."""

    code = "DOWNLOAD_NO_TRANSPORT"
    retryable = False


class DownloadInterruptedError(DownloadError):
    """The engine stopped a download because the job was cancelled or replaced, or the engine stops."""

    code = "DOWNLOAD_INTERRUPTED"
    retryable = False


class SelfTestFailedError(InstallError):
    """The application's self-test of the new image failed or raised."""

    code = "SELF_TEST_FAILED"


class SelfTestTimeoutError(SelfTestFailedError):
    """The self-test did not finish before its deadline."""

    code = "SELF_TEST_TIMEOUT"


class RolledBackError(InstallError):
    """The device is not running the new image after the restart (the bootloader went back)."""

    code = "INSTALL_ROLLED_BACK"


class UpdateLoopError(InstallError):
    """The loop breaker aborted an update that kept restarting or kept changing state."""

    code = "UPDATE_LOOP_ABORTED"


class EngineInternalError(OtaError):
    """A component raised something that is not an ``OtaError``: a bug, reported as a failure."""

    code = "ENGINE_INTERNAL_ERROR"

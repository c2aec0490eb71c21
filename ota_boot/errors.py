"""Typed errors of the install and hand-off phase.

Every error is an ``InstallError`` (or a ``ConfigurationError`` for bad settings) with its own stable
``code``, so a status report says exactly what was found: an image too large for its slot, a write past
the end, a corrupted trailer or environment, an unknown swap state.
"""

from __future__ import annotations

from ota_core.errors import ConfigurationError, InstallError

__all__ = [
    "BootConfigurationError",
    "EnvironmentCorruptedError",
    "FlashError",
    "FlashNotErasedError",
    "FlashUnalignedError",
    "FlashWriteFailedError",
    "ImageTooLargeError",
    "NoBootableImageError",
    "PowerCut",
    "ReadBackMismatchError",
    "SlotBusyError",
    "TrailerCorruptedError",
    "UnknownSwapStateError",
    "WriteOutOfBoundsError",
]


class PowerCut(BaseException):
    """Raised by the simulated flash when the power is cut.

    It derives from ``BaseException`` on purpose: no ``except Exception`` in the code under test may
    swallow it, just as no code runs on a device after its power is gone.
    """


class BootConfigurationError(ConfigurationError):
    """A flash layout, slot layout or boot scheme setting that cannot work."""

    code = "BOOT_CONFIGURATION_INVALID"


class FlashError(InstallError):
    """A flash operation was refused or failed."""

    code = "INSTALL_FLASH_FAILED"


class FlashUnalignedError(FlashError):
    """A write whose offset or length is not a multiple of the flash write alignment."""

    code = "INSTALL_FLASH_UNALIGNED"


class FlashNotErasedError(FlashError):
    """A write to a location that is not erased (NOR flash cannot rewrite without an erase)."""

    code = "INSTALL_FLASH_NOT_ERASED"


class FlashWriteFailedError(FlashError):
    """The flash reported a failed write or erase (a bad region)."""

    code = "INSTALL_FLASH_WRITE_FAILED"
    retryable = True


class WriteOutOfBoundsError(InstallError):
    """A write or read past the end of a slot or device."""

    code = "INSTALL_WRITE_OUT_OF_BOUNDS"


class ImageTooLargeError(InstallError):
    """An image larger than the slot that should receive it."""

    code = "INSTALL_IMAGE_TOO_LARGE"


class SlotBusyError(InstallError):
    """The inactive slot cannot be written now (a trial is running or an update is pending)."""

    code = "INSTALL_SLOT_BUSY"
    retryable = True


class ReadBackMismatchError(InstallError):
    """What was read back from the slot at hand-off is not what was verified."""

    code = "INSTALL_READBACK_MISMATCH"


class TrailerCorruptedError(InstallError):
    """An MCUboot trailer that cannot be decoded (bad magic, bad flag value, short buffer)."""

    code = "INSTALL_TRAILER_CORRUPTED"


class UnknownSwapStateError(InstallError):
    """A trailer records a swap type or status this bootloader does not know."""

    code = "INSTALL_SWAP_STATE_UNKNOWN"


class EnvironmentCorruptedError(InstallError):
    """A bootloader environment (U-Boot, GRUB) whose copies are all unreadable or malformed."""

    code = "INSTALL_ENVIRONMENT_CORRUPTED"


class NoBootableImageError(InstallError):
    """Neither slot holds a valid image: the device would not start."""

    code = "INSTALL_NO_BOOTABLE_IMAGE"

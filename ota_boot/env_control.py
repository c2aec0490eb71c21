"""Boot control for Linux A/B devices whose bootloader reads an environment (U-Boot or GRUB).

The application writes the inactive slot (a partition, block device or file), checks what it wrote,
then changes bootloader variables in one atomic environment save. ``env_boot`` models the
bootloader's script at a start, so that tests can restart the device at any point.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Mapping
from typing import Protocol

from ota_boot.errors import (
    EnvironmentCorruptedError,
    NoBootableImageError,
    ReadBackMismatchError,
    SlotBusyError,
)
from ota_boot.file_slots import FileSlot, FileSlotReader
from ota_boot.schemes import BootScheme
from ota_boot.slot_writer import FileSlotWriter, sha256_of_reader
from ota_core.errors import ConfigurationError, VerificationError
from ota_core.protocols import ImageState, ImageValidator
from ota_core.versions import Version

__all__ = ["EnvBootControl", "EnvStore", "env_boot"]

_log = logging.getLogger(__name__)


class EnvStore(Protocol):
    """A bootloader environment: ``UBootEnvStore`` or ``GrubEnvFile``."""

    def load(self) -> dict[str, str]: ...

    def save(self, variables: Mapping[str, str]) -> None: ...


def _valid(validator: ImageValidator | None, slot: FileSlot) -> Version | bool | None:
    if validator is None:
        return True
    try:
        return validator.validate(FileSlotReader(slot.path, slot.capacity)).version
    except VerificationError:
        return False


def env_boot(
    store: EnvStore,
    scheme: BootScheme,
    slots: Mapping[str, FileSlot],
    *,
    validator: ImageValidator | None = None,
    default_env: Callable[[], dict[str, str]] | None = None,
) -> str:
    """One start of the bootloader: choose a slot by the scheme, save the counters, check the image.

    A corrupted environment falls back to ``default_env`` (U-Boot's built-in default environment).
    A slot whose image does not validate is skipped for the other slot.
    """
    try:
        variables = store.load()
    except EnvironmentCorruptedError:
        if default_env is None:
            raise
        _log.warning("environment unreadable: using the default environment")
        variables = default_env()
        store.save(variables)
    slot, after = scheme.select(variables)
    if after != variables:
        store.save(after)
    if _valid(validator, slots[slot]) is not False:
        return slot
    other = scheme.other(slot)
    if _valid(validator, slots[other]) is not False:
        _log.warning("slot %s holds no valid image; booting %s", slot, other)
        store.save(scheme.activate(after, other, attempts=1, permanent=True))
        return other
    raise NoBootableImageError("no slot holds a valid image", details={"slots": sorted(slots)})


class EnvBootControl:
    """Implements ``BootControl`` over an environment store, a scheme and two file slots."""

    def __init__(
        self,
        store: EnvStore,
        scheme: BootScheme,
        slots: Mapping[str, FileSlot],
        *,
        booted_slot: str,
        validator: ImageValidator | None = None,
        attempts: int = 3,
    ) -> None:
        if set(slots) != set(scheme.slots) or booted_slot not in slots:
            raise ConfigurationError("slots must match the scheme's slots and include the booted slot")
        self._store = store
        self._scheme = scheme
        self._slots = dict(slots)
        self.booted_slot = booted_slot
        self.inactive_slot = scheme.other(booted_slot)
        self._validator = validator
        self._attempts = attempts
        self._image_size: int | None = None
        self._writer: FileSlotWriter | None = None

    def open_inactive_slot(self, size: int) -> FileSlotWriter:
        """Make sure the bootloader will not start the inactive slot, then return a writer into it."""
        variables = self._store.load()
        state = self._scheme.state(variables)
        if state.slot == self.booted_slot and state.in_trial:
            raise SlotBusyError("the running slot is on trial: confirm or revert it first")
        if state.slot == self.inactive_slot:
            # An earlier activation that never booted: deactivate before overwriting (as RAUC does).
            self._store.save(
                self._scheme.confirm(
                    self._scheme.activate(variables, self.booted_slot, attempts=self._attempts, permanent=True)
                )
            )
        target = self._slots[self.inactive_slot]
        self._writer = FileSlotWriter.for_image(target.path, target.capacity, size)
        self._image_size = size
        return self._writer

    def activate(
        self, *, permanent: bool = False, expected_sha256: bytes | None = None, image_size: int | None = None
    ) -> None:
        """Check the slot (read-back hash, validator), then switch the bootloader to it."""
        if self._writer is not None:
            self._writer.close()
        target = self._slots[self.inactive_slot]
        size = image_size if image_size is not None else self._image_size
        if expected_sha256 is not None:
            if size is None:
                raise ReadBackMismatchError("image size unknown: pass image_size to check the read-back hash")
            actual = sha256_of_reader(FileSlotReader(target.path, target.capacity), size)
            if not hmac.compare_digest(actual, expected_sha256):
                raise ReadBackMismatchError(
                    f"slot {self.inactive_slot} does not hold the verified image",
                    details={"expected": expected_sha256.hex(), "actual": actual.hex()},
                )
        if self._validator is not None:
            self._validator.validate(FileSlotReader(target.path, target.capacity))
        variables = self._store.load()
        self._store.save(
            self._scheme.activate(variables, self.inactive_slot, attempts=self._attempts, permanent=permanent)
        )
        _log.info("slot %s activated (%s)", self.inactive_slot, "permanent" if permanent else "trial")

    def state(self) -> ImageState:
        """Running slot and version, trial flag, attempts left, pending version."""
        state = self._scheme.state(self._store.load())
        running = _valid(self._validator, self._slots[self.booted_slot])
        pending = None
        if state.slot != self.booted_slot:
            found = _valid(self._validator, self._slots[state.slot])
            pending = found if isinstance(found, Version) else None
        trial = state.in_trial and state.slot == self.booted_slot
        return ImageState(
            running_version=running if isinstance(running, Version) else None,
            in_trial=trial,
            pending_version=pending,
            boot_attempts_left=state.attempts_left if trial else None,
            slot=self.booted_slot,
        )

    def confirm(self) -> None:
        """End the trial of the running slot; does nothing when there is none."""
        variables = self._store.load()
        state = self._scheme.state(variables)
        if state.slot == self.booted_slot and state.in_trial:
            self._store.save(self._scheme.confirm(variables))
            _log.info("slot %s confirmed", self.booted_slot)

    def revert(self) -> None:
        """Leave a running trial for the other slot at the next start, or cancel a pending activation."""
        variables = self._store.load()
        state = self._scheme.state(variables)
        if state.slot == self.booted_slot and state.in_trial:
            self._store.save(self._scheme.revert(variables))
        elif state.slot != self.booted_slot:
            self._store.save(
                self._scheme.confirm(
                    self._scheme.activate(variables, self.booted_slot, attempts=self._attempts, permanent=True)
                )
            )

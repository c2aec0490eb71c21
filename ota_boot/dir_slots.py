"""Directory slots: A/B installation of an application bundle on any Linux filesystem.

Layout under a root directory::

    slots/A/image.bin      the bundle of slot A
    slots/B/image.bin
    current -> slots/A     the slot the launcher starts; replaced atomically (symlink + rename)
    state/                 crash-safe documents; ``boot-trial`` exists only during a trial

The launcher calls ``DirectorySlots.boot()`` at every start before running the application: during
a trial it counts the start, and once the attempts are used up it switches back to the previous
slot. Outside a trial nothing is counted, so brown-outs cost nothing.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ota_boot.errors import NoBootableImageError, ReadBackMismatchError, SlotBusyError
from ota_boot.file_slots import FileSlotReader
from ota_boot.slot_writer import FileSlotWriter, sha256_of_reader
from ota_core.errors import ConfigurationError, VerificationError
from ota_core.protocols import ImageState, ImageValidator
from ota_core.state_store import FileStateStore
from ota_core.versions import Version

__all__ = ["DirectorySlots"]

_log = logging.getLogger(__name__)
_TRIAL = "boot-trial"
_PAYLOAD = "image.bin"


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class DirectorySlots:
    """Implements ``BootControl`` with two directories and a ``current`` symlink."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        capacity: int = 1 << 30,
        attempts: int = 3,
        validator: ImageValidator | None = None,
        booted_slot: str | None = None,
        step_hook: Callable[[str], None] | None = None,
        slots: tuple[str, str] = ("A", "B"),
    ) -> None:
        if attempts < 1:
            raise ConfigurationError("attempts must be at least 1")
        self.root = Path(root)
        self.capacity = capacity
        self.attempts = attempts
        self._validator = validator
        self._hook = step_hook
        self._slots = slots
        self._store = FileStateStore(self.root / "state", fault_hook=step_hook)
        self._image_size: int | None = None
        self._writer: FileSlotWriter | None = None
        self.booted_slot = booted_slot or self.current_slot()

    # --- layout ----------------------------------------------------------------------------------

    @classmethod
    def initialise(cls, root: str | os.PathLike[str], factory_image: bytes, **options: object) -> DirectorySlots:
        """Create the layout with ``factory_image`` in slot A, confirmed (a first boot is no trial)."""
        base = Path(root)
        for slot in ("A", "B"):
            (base / "slots" / slot).mkdir(parents=True, exist_ok=True)
        payload = base / "slots" / "A" / _PAYLOAD
        payload.write_bytes(factory_image)
        link = base / "current"
        if not link.is_symlink():
            os.symlink(os.path.join("slots", "A"), link)
        return cls(base, **options)  # type: ignore[arg-type]

    def slot_dir(self, slot: str) -> Path:
        """The directory of a slot."""
        if slot not in self._slots:
            raise ConfigurationError(f"unknown slot {slot!r}")
        return self.root / "slots" / slot

    def payload(self, slot: str) -> Path:
        """The bundle file of a slot."""
        return self.slot_dir(slot) / _PAYLOAD

    def current_slot(self) -> str:
        """The slot ``current`` points to."""
        try:
            target = os.readlink(self.root / "current")
        except OSError as error:
            raise NoBootableImageError(f"no current slot link: {error}") from error
        slot = Path(target).name
        if slot not in self._slots:
            raise NoBootableImageError(f"current slot link points to {target!r}")
        return slot

    def other(self, slot: str) -> str:
        """The slot that is not ``slot``."""
        return self._slots[1] if slot == self._slots[0] else self._slots[0]

    # --- BootControl -----------------------------------------------------------------------------

    def open_inactive_slot(self, size: int) -> FileSlotWriter:
        """Empty the inactive directory and return a writer for the bundle file."""
        trial = self._trial()
        if trial is not None and trial.get("slot") == self.booted_slot:
            raise SlotBusyError("the running slot is on trial: confirm or revert it first")
        inactive = self.other(self.booted_slot)
        if self.current_slot() == inactive:  # activated earlier but never started: take it back first
            self._switch(self.booted_slot)
            self._store.delete(_TRIAL)
        directory = self.slot_dir(inactive)
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        _fsync_directory(directory.parent)
        self._step("slot-cleared")
        self._writer = FileSlotWriter.for_image(self.payload(inactive), self.capacity, size)
        self._image_size = size
        return self._writer

    def activate(
        self, *, permanent: bool = False, expected_sha256: bytes | None = None, image_size: int | None = None
    ) -> None:
        """Check the inactive slot, record the trial, then switch ``current`` to it."""
        if self._writer is not None:
            self._writer.close()
        inactive = self.other(self.booted_slot)
        reader = FileSlotReader(self.payload(inactive), self.capacity)
        size = image_size if image_size is not None else self._image_size
        if expected_sha256 is not None:
            if size is None:
                raise ReadBackMismatchError("image size unknown: pass image_size to check the read-back hash")
            actual = sha256_of_reader(reader, size)
            if not hmac.compare_digest(actual, expected_sha256):
                raise ReadBackMismatchError(
                    f"slot {inactive} does not hold the verified image",
                    details={"expected": expected_sha256.hex(), "actual": actual.hex()},
                )
        if self._validator is not None:
            self._validator.validate(reader)
        _fsync_directory(self.slot_dir(inactive))
        if permanent:
            self._store.delete(_TRIAL)
        else:
            self._store.save(
                _TRIAL, {"slot": inactive, "previous": self.booted_slot, "starts": 0, "limit": self.attempts}
            )
        self._step("trial-recorded")
        self._switch(inactive)

    def state(self) -> ImageState:
        """Running slot and version, trial flag and attempts left, pending version."""
        trial = self._trial()
        in_trial = trial is not None and trial.get("slot") == self.booted_slot == self.current_slot()
        current = self.current_slot()
        pending = self._version(current) if current != self.booted_slot else None
        left = None
        if in_trial and trial is not None:
            left = int(trial.get("limit", self.attempts)) - int(trial.get("starts", 0))
        return ImageState(
            running_version=self._version(self.booted_slot),
            in_trial=in_trial,
            pending_version=pending,
            boot_attempts_left=left,
            slot=self.booted_slot,
        )

    def confirm(self) -> None:
        """End the trial of the running slot; idempotent."""
        trial = self._trial()
        if trial is not None and trial.get("slot") == self.booted_slot:
            self._store.delete(_TRIAL)
            self._step("trial-cleared")

    def revert(self) -> None:
        """Switch back to the previous slot (or cancel a pending activation); idempotent.

        The trial record stays, marked reverted, until the next start drops it, so that a second
        call in the same run does nothing.
        """
        trial = self._trial()
        if trial is not None and trial.get("slot") == self.booted_slot:
            if trial.get("reverted"):
                return
            self._switch(str(trial.get("previous", self.other(self.booted_slot))))
            self._store.save(_TRIAL, {**trial, "reverted": True})
            self._step("trial-reverted")
            return
        if self.current_slot() != self.booted_slot:
            self._switch(self.booted_slot)
            self._store.delete(_TRIAL)

    # --- launcher side ---------------------------------------------------------------------------

    def boot(self) -> str:
        """One start: count a trial start, revert when attempts are used up, skip an invalid slot."""
        current = self.current_slot()
        trial = self._trial()
        if trial is not None and trial.get("slot") != current:
            self._store.delete(_TRIAL)  # a trial whose switch never happened, or already reverted
            trial = None
        if trial is not None:
            starts = int(trial.get("starts", 0)) + 1
            if starts > int(trial.get("limit", self.attempts)):
                _log.warning("slot %s used up its %s trial starts: reverting", current, trial.get("limit"))
                current = str(trial.get("previous", self.other(current)))
                self._switch(current)
                self._store.delete(_TRIAL)
            else:
                self._store.save(_TRIAL, {**trial, "starts": starts})
                self._step("start-counted")
        if self._validator is not None and self._version(current) is None:
            other = self.other(current)
            if self._version(other) is None:
                raise NoBootableImageError("neither slot holds a valid bundle")
            _log.warning("slot %s holds no valid bundle; starting %s", current, other)
            self._switch(other)
            self._store.delete(_TRIAL)
            current = other
        self.booted_slot = current
        return current

    # --- internals -------------------------------------------------------------------------------

    def _trial(self) -> dict[str, Any] | None:
        document = self._store.load(_TRIAL)
        return dict(document.data) if document is not None else None

    def _version(self, slot: str) -> Version | None:
        if self._validator is None:
            return Version(0, 0, 0) if self.payload(slot).exists() else None
        try:
            return self._validator.validate(FileSlotReader(self.payload(slot), self.capacity)).version
        except VerificationError:
            return None

    def _switch(self, slot: str) -> None:
        temporary = self.root / "current.new"
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        os.symlink(os.path.join("slots", slot), temporary)
        self._step("link-created")
        os.replace(temporary, self.root / "current")
        _fsync_directory(self.root)
        self._step("switched")

    def _step(self, name: str) -> None:
        if self._hook is not None:
            self._hook(name)

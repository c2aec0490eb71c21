"""Slots stored in files or block devices, and read access to them for image validation."""

from __future__ import annotations

import os
from pathlib import Path

import attrs

from ota_core.errors import InstallError

__all__ = ["FileSlot", "FileSlotReader"]


@attrs.frozen
class FileSlot:
    """A slot that is a file, a partition or a block device of ``capacity`` bytes."""

    path: Path = attrs.field(converter=Path)
    capacity: int = 0


class FileSlotReader:
    """Reads a slot file; implements ``SlotReader``. A missing file reads as empty."""

    def __init__(self, path: str | os.PathLike[str], size: int) -> None:
        self._path = Path(path)
        self._size = size

    @property
    def size(self) -> int:
        """The slot capacity."""
        return self._size

    def read(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes at ``offset`` (fewer at the end of the file)."""
        if offset < 0 or length < 0 or offset >= self._size:
            return b""
        length = min(length, self._size - offset)
        try:
            with open(self._path, "rb") as handle:
                handle.seek(offset)
                return handle.read(length)
        except FileNotFoundError:
            return b""
        except OSError as error:
            raise InstallError(f"cannot read slot {self._path.name}: {error}") from error

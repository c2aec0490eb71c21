"""Slot writers: where the downloader's blocks go, and the read-back hash taken at hand-off.

``FlashSlotWriter`` writes into a region of a NOR flash: the region is erased before the first write,
blocks may arrive at any aligned or unaligned offset and in any order, partial write units are held
until complete, and a block that arrives twice with the same bytes is accepted (retransmissions).
``FileSlotWriter`` writes into a file or block device at absolute offsets. Both refuse writes past the
end of the slot with ``WriteOutOfBoundsError`` and can hash what is really stored.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Protocol

from ota_boot.errors import FlashNotErasedError, ImageTooLargeError, WriteOutOfBoundsError
from ota_core.errors import InstallError

__all__ = ["FileSlotWriter", "FlashDevice", "FlashSlotWriter", "sha256_of_reader"]

_log = logging.getLogger(__name__)
_HASH_CHUNK = 64 * 1024


class FlashDevice(Protocol):
    """What a flash writer needs from a device (``SimFlash`` or a driver for real flash)."""

    def read(self, offset: int, length: int) -> bytes: ...

    def write(self, offset: int, data: bytes) -> None: ...

    def is_erased(self, offset: int, length: int) -> bool: ...


class _Readable(Protocol):
    def read(self, offset: int, length: int) -> bytes: ...


def sha256_of_reader(reader: _Readable, length: int) -> bytes:
    """SHA-256 of the first ``length`` bytes of anything with ``read(offset, length)``."""
    digest = hashlib.sha256()
    for offset in range(0, length, _HASH_CHUNK):
        digest.update(reader.read(offset, min(_HASH_CHUNK, length - offset)))
    return digest.digest()


def _check_bounds(offset: int, length: int, capacity: int) -> None:
    if offset < 0 or offset + length > capacity:
        raise WriteOutOfBoundsError(
            f"write of {length} bytes at {offset} goes past the end of the {capacity}-byte slot",
            details={"offset": offset, "length": length, "capacity": capacity},
        )


class FlashSlotWriter:
    """Writes an image into an erased flash region; implements ``BlockSink``."""

    def __init__(self, flash: FlashDevice, base: int, capacity: int, *, alignment: int, erased_value: int) -> None:
        self._flash = flash
        self._base = base
        self._capacity = capacity
        self._alignment = alignment
        self._erased = erased_value
        self._pending: dict[int, bytearray] = {}
        self._known: dict[int, bytearray] = {}
        self.bytes_written = 0

    @property
    def capacity(self) -> int:
        """The slot's size in bytes."""
        return self._capacity

    def write_at(self, offset: int, data: bytes) -> None:
        """Store ``data`` at ``offset`` of the slot."""
        _check_bounds(offset, len(data), self._capacity)
        align = self._alignment
        position, view = offset, memoryview(bytes(data))
        head = (-position) % align
        if head and view:
            take = min(head, len(view))
            self._merge(position, bytes(view[:take]))
            position, view = position + take, view[take:]
        whole = len(view) - len(view) % align
        if whole:
            self._program(position, bytes(view[:whole]))
            position, view = position + whole, view[whole:]
        if view:
            self._merge(position, bytes(view))
        self.bytes_written += len(data)

    def read(self, offset: int, length: int) -> bytes:
        """Read back ``length`` bytes at ``offset`` as the slot will hold them (flash plus units not yet written).

        Downloaders use it to re-feed a verifier after a restart (``ota_stream.ReadableSink``).
        """
        _check_bounds(offset, length, self._capacity)
        data = bytearray(self._flash.read(self._base + offset, length))
        for unit, buffer in self._pending.items():
            for index in self._known.get(unit, ()):
                position = unit + index - offset
                if 0 <= position < length:
                    data[position] = buffer[index]
        return bytes(data)

    def flush(self) -> None:
        """Everything held in complete write units is on the flash; partial units wait for ``close``."""
        for unit in [unit for unit, known in self._known.items() if len(known) >= self._unit_need(unit)]:
            self._write_unit(unit)

    def close(self) -> None:
        """Write the partial units left, padded with the erased value (the end of the image)."""
        for unit in list(self._pending):
            self._write_unit(unit)

    def sha256(self, length: int) -> bytes:
        """SHA-256 of the first ``length`` bytes as stored in the flash."""
        _check_bounds(0, length, self._capacity)
        return sha256_of_reader(_Offset(self._flash, self._base), length)

    # --- internals -------------------------------------------------------------------------------

    def _program(self, position: int, data: bytes) -> None:
        absolute = self._base + position
        if self._flash.is_erased(absolute, len(data)):
            self._flash.write(absolute, data)
            return
        if self._flash.read(absolute, len(data)) == data:
            return  # the same block again
        # Write unit by unit: only units that are still erased may be programmed.
        for start in range(0, len(data), self._alignment):
            chunk = data[start : start + self._alignment]
            where = absolute + start
            if self._flash.is_erased(where, len(chunk)):
                self._flash.write(where, chunk)
            elif self._flash.read(where, len(chunk)) != chunk:
                raise FlashNotErasedError(
                    f"slot byte {position + start} already holds different data",
                    details={"offset": position + start},
                )

    def _merge(self, position: int, data: bytes) -> None:
        unit = position - position % self._alignment
        buffer = self._pending.setdefault(unit, bytearray([self._erased]) * self._alignment)
        known = self._known.setdefault(unit, bytearray())
        start = position - unit
        buffer[start : start + len(data)] = data
        known.extend(index for index in range(start, start + len(data)) if index not in known)
        if len(known) >= self._unit_need(unit):
            self._write_unit(unit)

    def _unit_need(self, unit: int) -> int:
        """Bytes that complete a write unit: the whole unit, or up to the end of the slot for the last one
        (so the image's last bytes reach the flash at ``flush``, before a downloader records them as saved)."""
        return min(self._alignment, self._capacity - unit)

    def _write_unit(self, unit: int) -> None:
        data = bytes(self._pending.pop(unit))
        self._known.pop(unit, None)
        self._program(unit, data)


class _Offset:
    def __init__(self, device: _Readable, base: int) -> None:
        self._device = device
        self._base = base

    def read(self, offset: int, length: int) -> bytes:
        return self._device.read(self._base + offset, length)


class FileSlotWriter:
    """Writes an image into a file or block device at absolute offsets; implements ``BlockSink``."""

    def __init__(self, path: str | os.PathLike[str], capacity: int, *, truncate: bool = True) -> None:
        self._path = Path(path)
        self._capacity = capacity
        flags = os.O_RDWR | os.O_CREAT | (os.O_TRUNC if truncate else 0)
        try:
            self._fd: int | None = os.open(self._path, flags, 0o644)
        except OSError as error:
            raise InstallError(f"cannot open slot {self._path.name}: {error}") from error
        self.bytes_written = 0

    @property
    def capacity(self) -> int:
        """The slot's size in bytes."""
        return self._capacity

    @classmethod
    def for_image(cls, path: str | os.PathLike[str], capacity: int, image_size: int) -> FileSlotWriter:
        """Open a slot for an image, refusing one larger than the slot."""
        if image_size > capacity:
            raise ImageTooLargeError(
                f"image of {image_size} bytes does not fit the {capacity}-byte slot",
                details={"image_size": image_size, "capacity": capacity},
            )
        return cls(path, capacity)

    def write_at(self, offset: int, data: bytes) -> None:
        """Store ``data`` at ``offset``."""
        _check_bounds(offset, len(data), self._capacity)
        descriptor = self._descriptor()
        view = memoryview(bytes(data))
        try:
            while view:
                written = os.pwrite(descriptor, view, offset)
                view, offset = view[written:], offset + written
        except OSError as error:
            raise InstallError(f"cannot write slot {self._path.name}: {error}") from error
        self.bytes_written += len(data)

    def flush(self) -> None:
        """fsync the slot."""
        try:
            os.fsync(self._descriptor())
        except OSError as error:
            raise InstallError(f"cannot sync slot {self._path.name}: {error}") from error

    def close(self) -> None:
        """fsync and close; idempotent."""
        if self._fd is not None:
            self.flush()
            os.close(self._fd)
            self._fd = None

    def sha256(self, length: int) -> bytes:
        """SHA-256 of the first ``length`` bytes as stored."""
        _check_bounds(0, length, self._capacity)
        descriptor = self._descriptor()
        return sha256_of_reader(_FileReader(descriptor), length)

    def _descriptor(self) -> int:
        if self._fd is None:
            raise InstallError(f"slot {self._path.name} is closed")
        return self._fd


class _FileReader:
    def __init__(self, descriptor: int) -> None:
        self._descriptor = descriptor

    def read(self, offset: int, length: int) -> bytes:
        return os.pread(self._descriptor, length, offset)

"""A strict simulated NOR flash with power cuts, torn writes and bad regions.

It models what makes NOR flash hard to update safely: erase works on whole sectors, writes must be
aligned to the write unit, a location can only be written after it was erased, and the power can go
after any operation or in the middle of one. Every operation is counted so that a test can cut the
power after operation ``i`` or tear operation ``i`` part-way, exactly as MCUboot's simulator does.

The contents can live in a file: a "reboot" is then a new process that opens the same file.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

import attrs

from ota_boot.errors import (
    BootConfigurationError,
    FlashNotErasedError,
    FlashUnalignedError,
    FlashWriteFailedError,
    PowerCut,
    WriteOutOfBoundsError,
)

__all__ = ["FlashLayout", "SimFlash"]

_log = logging.getLogger(__name__)
_LAYOUT_SUFFIX = ".layout.json"


def _positive_sizes(_instance: object, _attribute: object, value: tuple[int, ...]) -> None:
    if not value or any(not isinstance(size, int) or size <= 0 for size in value):
        raise BootConfigurationError(f"sector sizes must be positive integers, got {value!r}")


def _to_sizes(value: Iterable[int]) -> tuple[int, ...]:
    return tuple(value)


@attrs.frozen
class FlashLayout:
    """The geometry of a flash device: sector sizes in address order, write unit, erased value."""

    sector_sizes: tuple[int, ...] = attrs.field(converter=_to_sizes, validator=_positive_sizes)
    write_alignment: int = 1
    erased_value: int = 0xFF

    def __attrs_post_init__(self) -> None:
        if self.write_alignment not in (1, 2, 4, 8, 16, 32):
            raise BootConfigurationError(f"write alignment must be 1..32 (a power of two), got {self.write_alignment}")
        if self.erased_value not in (0x00, 0xFF):
            raise BootConfigurationError(f"erased value must be 0x00 or 0xFF, got {self.erased_value:#x}")
        if any(size % self.write_alignment for size in self.sector_sizes):
            raise BootConfigurationError("every sector size must be a multiple of the write alignment")

    @classmethod
    def uniform(
        cls, sector_size: int, count: int, *, write_alignment: int = 1, erased_value: int = 0xFF
    ) -> FlashLayout:
        """A device of ``count`` sectors of ``sector_size`` bytes each."""
        if count <= 0:
            raise BootConfigurationError(f"sector count must be positive, got {count}")
        return cls((sector_size,) * count, write_alignment=write_alignment, erased_value=erased_value)

    @property
    def size(self) -> int:
        """Total size in bytes."""
        return sum(self.sector_sizes)

    def sector_offsets(self) -> list[int]:
        """The start offset of every sector."""
        offsets, position = [], 0
        for size in self.sector_sizes:
            offsets.append(position)
            position += size
        return offsets

    def sector_span(self, offset: int, length: int) -> list[tuple[int, int]]:
        """The (offset, size) of every sector that ``[offset, offset + length)`` touches."""
        span = []
        for start, size in zip(self.sector_offsets(), self.sector_sizes, strict=True):
            if start < offset + length and offset < start + size:
                span.append((start, size))
        return span

    def to_json(self) -> dict[str, object]:
        """A JSON-able description, stored beside a flash file."""
        return {
            "sector_sizes": list(self.sector_sizes),
            "write_alignment": self.write_alignment,
            "erased_value": self.erased_value,
        }

    @classmethod
    def from_json(cls, data: object) -> FlashLayout:
        """The inverse of ``to_json``; raises ``BootConfigurationError`` for anything else."""
        if not isinstance(data, dict):
            raise BootConfigurationError("flash layout must be a JSON object")
        try:
            return cls(
                tuple(int(size) for size in data["sector_sizes"]),
                write_alignment=int(data["write_alignment"]),
                erased_value=int(data["erased_value"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise BootConfigurationError(f"invalid flash layout description: {error}") from error


@attrs.define
class _BadRegion:
    offset: int
    length: int
    failures_left: int | None  # None: fails forever


class SimFlash:
    """A simulated NOR flash device.

    ``ops`` counts every write and every sector erase. ``arm_power_cut(i)`` makes operation ``i``
    (1-based, counted from now) the last one: it completes, then ``PowerCut`` is raised; with
    ``tear=True`` only its first ``tear_bytes`` bytes reach the flash. After a cut the device is dead
    until ``reboot()``.
    """

    def __init__(self, layout: FlashLayout, *, path: str | os.PathLike[str] | None = None) -> None:
        self.layout = layout
        self._path = Path(path) if path is not None else None
        self._data = bytearray([layout.erased_value]) * layout.size
        self._offsets = layout.sector_offsets()
        self.ops = 0
        self._cut_at: int | None = None
        self._tear = False
        self._tear_bytes: int | None = None
        self._dead = False
        self._bad: list[_BadRegion] = []
        self.op_log: list[tuple[str, int, int]] = []
        self.record_ops = False

    # --- persistence -----------------------------------------------------------------------------

    @classmethod
    def create(cls, path: str | os.PathLike[str], layout: FlashLayout) -> SimFlash:
        """Create an erased device stored in ``path`` (plus a layout file beside it)."""
        flash = cls(layout, path=path)
        target = Path(path)
        Path(str(target) + _LAYOUT_SUFFIX).write_text(json.dumps(layout.to_json()))
        target.write_bytes(bytes(flash._data))
        return flash

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> SimFlash:
        """Open a device created by ``create``, as a freshly started process would."""
        target = Path(path)
        try:
            layout = FlashLayout.from_json(json.loads(Path(str(target) + _LAYOUT_SUFFIX).read_text()))
            contents = target.read_bytes()
        except (OSError, ValueError) as error:
            raise BootConfigurationError(f"cannot open simulated flash {target.name}: {error}") from error
        if len(contents) != layout.size:
            raise BootConfigurationError(f"flash file is {len(contents)} bytes, layout says {layout.size}")
        flash = cls(layout, path=target)
        flash._data[:] = contents
        return flash

    @classmethod
    def from_bytes(cls, layout: FlashLayout, contents: bytes) -> SimFlash:
        """An in-memory device holding ``contents`` (a snapshot of another device)."""
        if len(contents) != layout.size:
            raise BootConfigurationError(f"snapshot is {len(contents)} bytes, layout says {layout.size}")
        flash = cls(layout)
        flash._data[:] = contents
        return flash

    def reboot(self) -> SimFlash:
        """A new device object holding what survived, with the same bad regions and no pending cut."""
        if self._path is not None:
            fresh = SimFlash.open(self._path)
        else:
            fresh = SimFlash(self.layout)
            fresh._data[:] = self._data
        fresh._bad = [attrs.evolve(region) for region in self._bad]
        fresh.record_ops = self.record_ops
        return fresh

    def snapshot(self) -> bytes:
        """A copy of the whole device contents."""
        return bytes(self._data)

    # --- fault injection -------------------------------------------------------------------------

    def arm_power_cut(self, after_ops: int, *, tear: bool = False, tear_bytes: int | None = None) -> None:
        """Cut the power at the ``after_ops``-th operation from now (1-based); optionally tear it."""
        if after_ops < 1:
            raise BootConfigurationError("a power cut must come after at least one operation")
        self._cut_at = self.ops + after_ops
        self._tear = tear
        self._tear_bytes = tear_bytes

    def disarm(self) -> None:
        """Remove a pending power cut."""
        self._cut_at = None

    def add_bad_region(self, offset: int, length: int, *, failures: int | None = None) -> None:
        """Make writes and erases touching the range fail (``failures`` times, or always)."""
        self._check_range(offset, length)
        self._bad.append(_BadRegion(offset, length, failures))

    @property
    def dead(self) -> bool:
        """True after a power cut, until ``reboot()``."""
        return self._dead

    # --- NOR operations --------------------------------------------------------------------------

    def read(self, offset: int, length: int) -> bytes:
        """Read bytes; reads have no alignment rule and are not counted."""
        self._check_alive()
        self._check_range(offset, length)
        return bytes(self._data[offset : offset + length])

    def is_erased(self, offset: int, length: int) -> bool:
        """True if every byte of the range holds the erased value."""
        return self._data.count(self.layout.erased_value, offset, offset + length) == length

    def write(self, offset: int, data: bytes) -> None:
        """Program ``data`` at ``offset``: aligned, in bounds, onto erased bytes only."""
        self._check_alive()
        align = self.layout.write_alignment
        if offset % align or len(data) % align:
            raise FlashUnalignedError(
                f"write of {len(data)} bytes at {offset:#x} is not aligned to {align}",
                details={"offset": offset, "length": len(data), "alignment": align},
            )
        self._check_range(offset, len(data))
        if not data:
            return
        if not self.is_erased(offset, len(data)):
            raise FlashNotErasedError(
                f"write to non-erased location at {offset:#x} ({len(data)} bytes)",
                details={"offset": offset, "length": len(data)},
            )
        self._check_bad(offset, len(data), "write")
        self._apply(offset, bytes(data), "write")

    def erase(self, offset: int, length: int) -> None:
        """Erase whole sectors; ``offset`` and ``offset + length`` must be sector boundaries."""
        self._check_alive()
        self._check_range(offset, length)
        span = self.layout.sector_span(offset, length)
        if not span or span[0][0] != offset or span[-1][0] + span[-1][1] != offset + length:
            raise FlashUnalignedError(
                f"erase of {length} bytes at {offset:#x} does not cover whole sectors",
                details={"offset": offset, "length": length},
            )
        for start, size in span:
            self._check_bad(start, size, "erase")
            self._apply(start, bytes([self.layout.erased_value]) * size, "erase")

    # --- internals -------------------------------------------------------------------------------

    def _apply(self, offset: int, data: bytes, kind: str) -> None:
        self.ops += 1
        if self.record_ops:
            self.op_log.append((kind, offset, len(data)))
        cut = self._cut_at is not None and self.ops >= self._cut_at
        if cut and self._tear:
            keep = len(data) // 2 if self._tear_bytes is None else max(0, min(self._tear_bytes, len(data)))
            data = data[:keep]
        self._data[offset : offset + len(data)] = data
        self._persist(offset, data)
        if cut:
            self._dead = True
            self._cut_at = None
            raise PowerCut(f"power cut at flash operation {self.ops} ({kind} at {offset:#x})")

    def _persist(self, offset: int, data: bytes) -> None:
        if self._path is None or not data:
            return
        with open(self._path, "r+b") as handle:
            handle.seek(offset)
            handle.write(data)

    def _check_alive(self) -> None:
        if self._dead:
            raise PowerCut("the flash has no power (reboot first)")

    def _check_range(self, offset: int, length: int) -> None:
        if offset < 0 or length < 0 or offset + length > self.layout.size:
            raise WriteOutOfBoundsError(
                f"range {offset:#x}+{length} is outside the {self.layout.size}-byte flash",
                details={"offset": offset, "length": length, "size": self.layout.size},
            )

    def _check_bad(self, offset: int, length: int, kind: str) -> None:
        for region in self._bad:
            if region.offset < offset + length and offset < region.offset + region.length:
                if region.failures_left is not None:
                    if region.failures_left <= 0:
                        continue
                    region.failures_left -= 1
                raise FlashWriteFailedError(
                    f"flash {kind} failed at {offset:#x} (bad region)",
                    details={"offset": offset, "length": length},
                )

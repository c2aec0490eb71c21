"""The U-Boot environment image: read and write it as U-Boot, ``fw_setenv`` and ``mkenvimage`` do.

One copy is ``CRC32 (4 bytes, little-endian) | data``; in a redundant setup each copy is
``CRC32 | flag (1 byte) | data``. The data is ``name=value\\0`` entries ending with an empty entry and
padded to the environment size. The CRC covers the data only. Of two valid copies the one with the
newer flag wins (a counter that wraps from 255 to 0); a copy with a bad CRC is ignored. A save writes
the copy that is *not* current, with the next flag value, so a torn save leaves the old copy intact.
"""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path

import attrs

from ota_boot.errors import BootConfigurationError, EnvironmentCorruptedError

__all__ = ["EnvCopy", "UBootEnvStore", "decode_uboot_env", "encode_uboot_env"]

_log = logging.getLogger(__name__)


def _check_variables(variables: Mapping[str, str]) -> None:
    for name, value in variables.items():
        if not isinstance(name, str) or not name or "=" in name or "\0" in name or "\n" in name:
            raise BootConfigurationError(f"invalid environment variable name {name!r}")
        if not isinstance(value, str) or "\0" in value:
            raise BootConfigurationError(f"invalid value for environment variable {name!r}")


def encode_uboot_env(
    variables: Mapping[str, str], size: int, *, redundant: bool = False, flag: int = 1, pad: int = 0xFF
) -> bytes:
    """One environment copy of ``size`` bytes, variables sorted by name as ``fw_setenv`` writes them."""
    _check_variables(variables)
    header = 5 if redundant else 4
    body = b"".join(f"{name}={variables[name]}".encode() + b"\0" for name in sorted(variables)) + b"\0"
    if len(body) > size - header:
        raise BootConfigurationError(
            f"environment needs {len(body)} bytes, only {size - header} available",
            details={"needed": len(body), "available": size - header},
        )
    data = body + bytes([pad]) * (size - header - len(body))
    crc = zlib.crc32(data).to_bytes(4, "little")
    return crc + (bytes([flag & 0xFF]) if redundant else b"") + data


def decode_uboot_env(raw: bytes, *, redundant: bool = False) -> tuple[dict[str, str], int]:
    """Decode one copy: its variables and its flag (0 for a single copy).

    Raises ``EnvironmentCorruptedError`` on a bad CRC or malformed data.
    """
    header = 5 if redundant else 4
    if len(raw) <= header:
        raise EnvironmentCorruptedError(f"environment copy of {len(raw)} bytes is too short")
    data = bytes(raw[header:])
    stored = int.from_bytes(raw[:4], "little")
    actual = zlib.crc32(data)
    if stored != actual:
        raise EnvironmentCorruptedError(
            "environment CRC mismatch", details={"stored": f"{stored:08x}", "computed": f"{actual:08x}"}
        )
    variables: dict[str, str] = {}
    position = 0
    while position < len(data) and data[position] != 0:
        end = data.find(b"\0", position)
        if end < 0:
            raise EnvironmentCorruptedError("environment entry is not terminated")
        entry = data[position:end]
        name, separator, value = entry.partition(b"=")
        if not separator or not name:
            raise EnvironmentCorruptedError(f"environment entry without a name: {entry[:40]!r}")
        try:
            variables[name.decode()] = value.decode()
        except UnicodeDecodeError as error:
            raise EnvironmentCorruptedError(f"environment entry is not UTF-8: {entry[:40]!r}") from error
        position = end + 1
    return variables, raw[4] if redundant else 0


def _newer(first: int, second: int) -> bool:
    """True if flag ``first`` is newer than ``second`` (U-Boot's rule, with the 255 -> 0 wrap)."""
    if first == 0 and second == 0xFF:
        return True
    if first == 0xFF and second == 0:
        return False
    return first > second


@attrs.frozen
class EnvCopy:
    """Where one environment copy lives, as a line of ``fw_env.config`` says: file, offset, size."""

    path: Path = attrs.field(converter=Path)
    offset: int = 0
    size: int = 0x4000


StepHook = Callable[[str], None]


class UBootEnvStore:
    """Reads and writes a (preferably redundant) U-Boot environment stored in files or devices."""

    def __init__(self, copies: list[EnvCopy], *, pad: int = 0xFF, step_hook: StepHook | None = None) -> None:
        if len(copies) not in (1, 2):
            raise BootConfigurationError("a U-Boot environment has one or two copies")
        if len({copy.size for copy in copies}) != 1:
            raise BootConfigurationError("both environment copies must have the same size")
        self.copies = copies
        self.redundant = len(copies) == 2
        self._pad = pad
        self._hook = step_hook

    def fw_env_config(self) -> str:
        """The matching ``fw_env.config`` text for ``fw_printenv -c``/``fw_setenv -c``."""
        return "".join(f"{copy.path} {copy.offset:#x} {copy.size:#x}\n" for copy in self.copies)

    def _read(self, copy: EnvCopy) -> bytes:
        try:
            with open(copy.path, "rb") as handle:
                handle.seek(copy.offset)
                return handle.read(copy.size)
        except OSError as error:
            raise EnvironmentCorruptedError(f"cannot read environment {copy.path.name}: {error}") from error

    def _current(self) -> tuple[int, dict[str, str], int]:
        found: list[tuple[int, dict[str, str], int]] = []
        problems = []
        for index, copy in enumerate(self.copies):
            try:
                variables, flag = decode_uboot_env(self._read(copy), redundant=self.redundant)
            except EnvironmentCorruptedError as error:
                problems.append(f"copy {index + 1}: {error.message}")
                continue
            found.append((index, variables, flag))
        if not found:
            raise EnvironmentCorruptedError(
                "no valid environment copy (" + "; ".join(problems) + ")", details={"problems": problems}
            )
        if len(found) == 2 and _newer(found[1][2], found[0][2]):
            return found[1]
        if problems:
            _log.warning("U-Boot environment: %s; using the other copy", "; ".join(problems))
        return found[0]

    def load(self) -> dict[str, str]:
        """The variables of the current copy; ``EnvironmentCorruptedError`` if no copy is valid."""
        return self._current()[1]

    def save(self, variables: Mapping[str, str]) -> None:
        """Write a new environment: into the other copy (redundant) or in place (single copy)."""
        try:
            index, _old, flag = self._current()
        except EnvironmentCorruptedError:
            index, flag = (len(self.copies) - 1, 0)
        target = self.copies[(index + 1) % len(self.copies)]
        image = encode_uboot_env(
            variables, target.size, redundant=self.redundant, flag=(flag + 1) & 0xFF, pad=self._pad
        )
        self._write(target, image)

    def initialise(self, variables: Mapping[str, str]) -> None:
        """Write every copy from scratch (first installation, like ``mkenvimage``)."""
        for flag, copy in enumerate(self.copies):
            self._write(
                copy,
                encode_uboot_env(variables, copy.size, redundant=self.redundant, flag=flag, pad=self._pad),
            )

    def _write(self, copy: EnvCopy, image: bytes) -> None:
        half = 8  # CRC, flag and the first data bytes: a kill after them leaves a torn copy
        try:
            descriptor = os.open(copy.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                # Two writes so that a kill between them leaves a torn copy, as a power cut can.
                os.pwrite(descriptor, image[:half], copy.offset)
                self._step("env-half-written")
                os.pwrite(descriptor, image[half:], copy.offset + half)
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        except OSError as error:
            raise EnvironmentCorruptedError(f"cannot write environment {copy.path.name}: {error}") from error
        self._step("env-written")

    def _step(self, name: str) -> None:
        if self._hook is not None:
            self._hook(name)

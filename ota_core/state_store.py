"""Crash-safe storage of small named JSON documents in a directory.

Each save writes a temporary file, fsyncs it, keeps the current copy as ``<name>.prev`` (a hard link, so
a current copy exists at every instant), renames the temporary file over the current copy and fsyncs the
directory. Every copy carries a SHA-256 of its content: a torn or corrupted copy is detected and the
previous good copy is returned instead, with a warning. No partial document is ever returned.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import secrets
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ota_core.errors import ConfigurationError, StateCorruptedError, StateStoreError
from ota_core.protocols import StoredDocument

__all__ = ["DEFAULT_MAX_DOCUMENT_BYTES", "FileStateStore"]

_log = logging.getLogger(__name__)

DEFAULT_MAX_DOCUMENT_BYTES = 4 * 1024 * 1024
_FORMAT = "modular-ota-state/1"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_CURRENT_SUFFIX = ".json"
_PREVIOUS_SUFFIX = ".json.prev"
_TEMP_SUFFIX = ".tmp"

FaultHook = Callable[[str], None]
"""Called with the name of each step of a save; tests use it to cut power between steps."""


def _checksum(name: str, schema_version: int, body: bytes) -> str:
    digest = hashlib.sha256()
    digest.update(f"{name}\0{schema_version}\0".encode())
    digest.update(body)
    return digest.hexdigest()


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class FileStateStore:
    """A directory of crash-safe JSON documents; implements the ``StateStore`` protocol."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
        fault_hook: FaultHook | None = None,
    ) -> None:
        self._directory = Path(directory)
        try:
            self._directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StateStoreError(f"cannot create state directory {self._directory}: {error}") from error
        self._max_document_bytes = max_document_bytes
        self._fault_hook = fault_hook
        self._lock = threading.Lock()
        self._remove_stale_temporaries()

    @property
    def directory(self) -> Path:
        """The directory that holds the documents."""
        return self._directory

    # --- public API ------------------------------------------------------------------------------

    def load(self, name: str) -> StoredDocument | None:
        """Return the newest intact copy of ``name``; ``None`` if never written.

        Raises ``StateCorruptedError`` when copies exist but none is intact.
        """
        current, previous = self._paths(name)
        with self._lock:
            problems: list[str] = []
            for path in (current, previous):
                try:
                    raw = path.read_bytes()
                except FileNotFoundError:
                    continue
                except OSError as error:
                    problems.append(f"{path.name}: {error}")
                    continue
                try:
                    document = self._decode(name, raw)
                except StateStoreError as error:
                    problems.append(f"{path.name}: {error.message}")
                    continue
                if problems:
                    _log.warning(
                        "state document %r: current copy unreadable (%s); using the previous copy",
                        name,
                        "; ".join(problems),
                    )
                return document
            if problems:
                raise StateCorruptedError(
                    f"state document {name!r}: no intact copy ({'; '.join(problems)})",
                    details={"name": name},
                )
            return None

    def save(self, name: str, data: Mapping[str, Any], *, schema_version: int = 1) -> None:
        """Atomically replace ``name`` with ``data`` (a JSON-serialisable mapping)."""
        current, previous = self._paths(name)
        payload = self._encode(name, data, schema_version)
        temporary = self._directory / f".{name}.{os.getpid()}.{secrets.token_hex(4)}{_TEMP_SUFFIX}"
        with self._lock:
            try:
                self._write_durably(temporary, payload)
                self._step("temp-written")
                if current.exists():
                    # Keep the current copy as the previous one without ever leaving no current copy.
                    link = temporary.with_name(temporary.name + ".prev")
                    os.link(current, link)
                    os.replace(link, previous)
                    self._step("previous-kept")
                os.replace(temporary, current)
                self._step("renamed")
                _fsync_directory(self._directory)
                self._step("directory-synced")
            except OSError as error:
                with contextlib.suppress(OSError):
                    temporary.unlink()
                raise StateStoreError(f"cannot save state document {name!r}: {error}") from error

    def delete(self, name: str) -> None:
        """Remove ``name`` and its previous copy; deleting a missing document is not an error."""
        current, previous = self._paths(name)
        with self._lock:
            try:
                # Previous first: a cut in between leaves the current copy, never a resurrected older one.
                previous.unlink(missing_ok=True)
                current.unlink(missing_ok=True)
                _fsync_directory(self._directory)
            except OSError as error:
                raise StateStoreError(f"cannot delete state document {name!r}: {error}") from error

    def names(self) -> list[str]:
        """The names of the documents in the store, sorted."""
        found = {
            path.name[: -len(_CURRENT_SUFFIX)]
            for path in self._directory.glob(f"*{_CURRENT_SUFFIX}")
            if not path.name.startswith(".")
        }
        found |= {
            path.name[: -len(_PREVIOUS_SUFFIX)]
            for path in self._directory.glob(f"*{_PREVIOUS_SUFFIX}")
            if not path.name.startswith(".")
        }
        return sorted(found)

    # --- internals -------------------------------------------------------------------------------

    def _paths(self, name: str) -> tuple[Path, Path]:
        if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
            raise ConfigurationError(
                f"invalid state document name {name!r}: use 1-128 of A-Z a-z 0-9 . _ - , no leading dot"
            )
        return self._directory / f"{name}{_CURRENT_SUFFIX}", self._directory / f"{name}{_PREVIOUS_SUFFIX}"

    def _encode(self, name: str, data: Mapping[str, Any], schema_version: int) -> bytes:
        if not isinstance(schema_version, int) or isinstance(schema_version, bool) or schema_version < 0:
            raise ConfigurationError(f"schema_version must be a non-negative integer, got {schema_version!r}")
        if not isinstance(data, Mapping):
            raise ConfigurationError(f"a state document must be a mapping, got {type(data).__name__}")
        try:
            body = json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()
        except (TypeError, ValueError) as error:
            raise StateStoreError(f"state document {name!r} is not JSON-serialisable: {error}") from error
        envelope = {
            "format": _FORMAT,
            "name": name,
            "schema_version": schema_version,
            "sha256": _checksum(name, schema_version, body),
        }
        encoded = json.dumps(envelope, sort_keys=True).encode() + b"\n" + body + b"\n"
        if len(encoded) > self._max_document_bytes:
            raise StateStoreError(
                f"state document {name!r} is {len(encoded)} bytes, "
                f"over the limit of {self._max_document_bytes}"
            )
        return encoded

    def _decode(self, name: str, raw: bytes) -> StoredDocument:
        if len(raw) > self._max_document_bytes:
            raise StateStoreError("copy is larger than the document size limit")
        header_line, separator, rest = raw.partition(b"\n")
        if not separator or not rest.endswith(b"\n"):
            raise StateStoreError("copy is truncated")
        body = rest[:-1]
        try:
            envelope = json.loads(header_line)
        except ValueError as error:
            raise StateStoreError(f"header is not JSON ({error})") from error
        if not isinstance(envelope, dict) or envelope.get("format") != _FORMAT:
            raise StateStoreError("header is not a modular-ota state header")
        schema_version = envelope.get("schema_version")
        if not isinstance(schema_version, int) or isinstance(schema_version, bool):
            raise StateStoreError("header has no schema version")
        if envelope.get("name") != name:
            raise StateStoreError(f"copy belongs to {envelope.get('name')!r}")
        if envelope.get("sha256") != _checksum(name, schema_version, body):
            raise StateStoreError("checksum mismatch")
        try:
            data = json.loads(body)
        except ValueError as error:  # pragma: no cover - the checksum matched, so the writer wrote JSON
            raise StateStoreError(f"body is not JSON ({error})") from error
        if not isinstance(data, dict):  # pragma: no cover - _encode only writes mappings
            raise StateStoreError("body is not a mapping")
        return StoredDocument(name=name, schema_version=schema_version, data=data)

    @staticmethod
    def _write_durably(path: Path, payload: bytes) -> None:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(payload)
            while view:
                written = os.write(descriptor, view)
                view = view[written:]
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def _step(self, step: str) -> None:
        if self._fault_hook is not None:
            self._fault_hook(step)

    def _remove_stale_temporaries(self) -> None:
        # Temporaries are left only by a save cut short; they are never read.
        for path in self._directory.glob(f".*{_TEMP_SUFFIX}*"):
            with contextlib.suppress(OSError):
                path.unlink()

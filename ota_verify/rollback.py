"""Anti-rollback: the minimum version and security counter a device accepts, kept in the state store.

The floor is raised only when an update is *confirmed* (after its self-test), never when it is
installed: if the floor moved at install time, a power cut during the trial boot would leave the
device unable to revert to the image it came from. Versions are compared as semantic versions; AWS
AppVersion32 values and MCUboot versions are converted first. A security counter, when present, must
not go below the stored one either.
"""

from __future__ import annotations

import logging
from typing import Any

import attrs

from ota_core.errors import ConfigurationError, StateCorruptedError
from ota_core.protocols import StateStore
from ota_core.versions import Version
from ota_verify.errors import DowngradeError

__all__ = ["DEFAULT_ROLLBACK_DOCUMENT", "AntiRollbackPolicy", "RollbackFloor"]

_log = logging.getLogger(__name__)

DEFAULT_ROLLBACK_DOCUMENT = "ota-verify-rollback"
_SCHEMA = 1


@attrs.frozen
class RollbackFloor:
    """The lowest version and security counter the device still accepts (``None``: no floor yet)."""

    version: Version | None = None
    security_counter: int | None = None


def _as_version(value: Version | int | str) -> Version:
    if isinstance(value, Version):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Version.from_app_version32(value)
    if isinstance(value, str):
        return Version.parse(value)
    to_version = getattr(value, "to_version", None)
    if callable(to_version):
        result = to_version()
        if isinstance(result, Version):
            return result
    raise ConfigurationError(f"not a version: {value!r:.40}")


class AntiRollbackPolicy:
    """Refuses downgrades against a floor persisted in a ``StateStore``; the floor rises on confirm only.

    ``allow_downgrade`` turns the version check off explicitly (the security counter is still
    enforced: it exists to be unskippable). ``allow_same_version`` accepts a re-install of the floor
    version (refused by default, as AWS FreeRTOS does). ``max_major_jump`` (optional) refuses a version
    whose major number is more than that far above the floor, against fast-forward attacks.
    """

    def __init__(
        self,
        store: StateStore,
        *,
        document: str = DEFAULT_ROLLBACK_DOCUMENT,
        allow_downgrade: bool = False,
        allow_same_version: bool = False,
        max_major_jump: int | None = None,
    ) -> None:
        self._store = store
        self._document = document
        self._allow_downgrade = allow_downgrade
        self._allow_same = allow_same_version
        self._max_major_jump = max_major_jump

    def floor(self) -> RollbackFloor:
        """The persisted floor."""
        stored = self._store.load(self._document)
        if stored is None:
            return RollbackFloor()
        data = stored.data
        try:
            version_text = data.get("min_version")
            counter = data.get("min_security_counter")
            version = Version.parse(version_text) if version_text is not None else None
            if counter is not None and (not isinstance(counter, int) or isinstance(counter, bool) or counter < 0):
                raise ConfigurationError("bad security counter")
        except (ConfigurationError, AttributeError) as error:
            raise StateCorruptedError(f"anti-rollback document {self._document!r} is unreadable: {error}") from error
        return RollbackFloor(version, counter)

    def check(
        self,
        version: Version | int | str | Any | None,
        *,
        security_counter: int | None = None,
        for_boot: bool = False,
    ) -> None:
        """Refuse ``version`` (and ``security_counter``) if below the floor.

        ``for_boot`` is for validating an image that is already installed: the floor version itself is
        then acceptable (it is the running image).
        """
        floor = self.floor()
        if (
            security_counter is not None
            and floor.security_counter is not None
            and security_counter < floor.security_counter
        ):
            raise DowngradeError(
                f"security counter {security_counter} is below the minimum {floor.security_counter}",
                details={"security_counter": security_counter, "minimum": floor.security_counter},
            )
        if version is None or floor.version is None:
            return
        candidate = _as_version(version)
        if self._max_major_jump is not None and candidate.major - floor.version.major > self._max_major_jump:
            raise DowngradeError(
                f"version {candidate} jumps more than {self._max_major_jump} major versions past {floor.version}"
            )
        if self._allow_downgrade:
            return
        if candidate < floor.version or (candidate == floor.version and not (self._allow_same or for_boot)):
            raise DowngradeError(
                f"version {candidate} is not newer than the device's minimum {floor.version}",
                details={"version": str(candidate), "minimum": str(floor.version)},
            )

    def confirm(self, version: Version | int | str | Any, *, security_counter: int | None = None) -> None:
        """Record a confirmed update: raise the floor to it, never lower. Call after the self-test passed."""
        floor = self.floor()
        candidate = _as_version(version)
        new_version = candidate if floor.version is None or candidate > floor.version else floor.version
        new_counter = floor.security_counter
        if security_counter is not None and (new_counter is None or security_counter > new_counter):
            new_counter = security_counter
        if new_version == floor.version and new_counter == floor.security_counter:
            return
        self._store.save(
            self._document,
            {"min_version": str(new_version), "min_security_counter": new_counter},
            schema_version=_SCHEMA,
        )
        _log.info("anti-rollback floor raised to %s (security counter %s)", new_version, new_counter)

"""Firmware versions: semantic versions and the AWS FreeRTOS 32-bit AppVersion encoding."""

from __future__ import annotations

import re
from functools import total_ordering

import attrs

from ota_core.errors import ConfigurationError

__all__ = ["APP_VERSION32_MAX_BUILD", "Version"]

APP_VERSION32_MAX_BUILD = 0xFFFF
"""FreeRTOS packs the build number into the low 16 bits of AppVersion32."""

_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)
_MAX_VERSION_TEXT = 256


def _prerelease_key(prerelease: str) -> tuple[tuple[int, int | str], ...]:
    """Order pre-release identifiers as semver 2.0.0 says: numbers numerically, below text."""
    key: list[tuple[int, int | str]] = []
    for part in prerelease.split("."):
        key.append((0, int(part)) if part.isdigit() else (1, part))
    return tuple(key)


@total_ordering
@attrs.frozen(eq=False)
class Version:
    """A semantic version (major.minor.patch[-prerelease][+build]); build metadata does not order."""

    major: int = attrs.field(validator=attrs.validators.ge(0))
    minor: int = attrs.field(validator=attrs.validators.ge(0))
    patch: int = attrs.field(validator=attrs.validators.ge(0))
    prerelease: str = ""
    build: str = ""

    @classmethod
    def parse(cls, text: str) -> Version:
        """Parse a semantic version string, raising ``ConfigurationError`` for anything else."""
        if not isinstance(text, str) or len(text) > _MAX_VERSION_TEXT:
            raise ConfigurationError(f"not a version string: {text!r:.80}")
        match = _SEMVER.match(text.strip().removeprefix("v"))
        if match is None:
            raise ConfigurationError(f"not a semantic version: {text!r:.80}")
        major, minor, patch, prerelease, build = match.groups()
        return cls(int(major), int(minor), int(patch), prerelease or "", build or "")

    @classmethod
    def from_app_version32(cls, value: int) -> Version:
        """Decode FreeRTOS AppVersion32 (``major<<24 | minor<<16 | build``); build becomes the patch."""
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFFFFFFFF:
            raise ConfigurationError(f"AppVersion32 must be an unsigned 32-bit integer, got {value!r}")
        return cls((value >> 24) & 0xFF, (value >> 16) & 0xFF, value & 0xFFFF)

    def to_app_version32(self) -> int:
        """Encode as FreeRTOS AppVersion32; fields that do not fit raise ``ConfigurationError``."""
        if self.major > 0xFF or self.minor > 0xFF or self.patch > APP_VERSION32_MAX_BUILD:
            raise ConfigurationError(f"version {self} does not fit AppVersion32 (8.8.16 bits)")
        return (self.major << 24) | (self.minor << 16) | self.patch

    def _order_key(self) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]:
        # A release sorts above any of its pre-releases.
        if self.prerelease:
            return (self.major, self.minor, self.patch, 0, _prerelease_key(self.prerelease))
        return (self.major, self.minor, self.patch, 1, ())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._order_key() == other._order_key()

    def __lt__(self, other: Version) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._order_key() < other._order_key()

    def __hash__(self) -> int:
        return hash(self._order_key())

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += f"-{self.prerelease}"
        if self.build:
            text += f"+{self.build}"
        return text

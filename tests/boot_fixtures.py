"""Shared utilities for the ota_boot tests: Debian tools that must exist in CI, demo images."""

from __future__ import annotations

import os
import shutil

import pytest

from ota_boot.demo_image import build_demo_image

TOOL_PACKAGES = {
    "fw_printenv": "libubootenv-tool",
    "fw_setenv": "libubootenv-tool",
    "mkenvimage": "u-boot-tools",
    "grub-editenv": "grub-common",
}


def require_tool(name: str) -> str:
    """The tool's path; fails loudly in CI (CI=true) when missing, skips elsewhere."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is missing: apt-get install {TOOL_PACKAGES.get(name, name)}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


OLD_IMAGE = build_demo_image(b"old application " * 40, "1.0.0")
NEW_IMAGE = build_demo_image(b"new application " * 55, "2.0.0")

"""The simulated device's configuration file (JSON), read at every start of the device process."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from ota_core.errors import ConfigurationError

__all__ = ["DeviceConfig", "FlashGeometry", "load_device_config"]

SELF_TEST_MODES = ("pass", "fail", "hang")


@attrs.frozen
class FlashGeometry:
    """The simulated NOR flash: sector size, room for an image (in sectors) and the write alignment."""

    sector_size: int = 4096
    image_sectors: int = 512
    write_alignment: int = 4


@attrs.frozen
class DeviceConfig:
    """Everything the device process needs; ``flow_settings`` belongs to the flow (``aws``, ``azure`` ...).

    - ``flow``: the registered flow to run.
    - ``device_dir``: holds ``flash.bin`` (the simulated flash) and ``state/`` (the state store).
    - ``public_key``: PEM file of the key that signs images (bootloader and download checks).
    - ``factory_image``: the signed image written to the primary slot when the flash does not exist yet.
    - ``self_test``: ``pass``, ``fail`` or ``hang`` (the new image's self-test after an update).
    - ``self_test_timeout``: seconds the engine gives the self-test.
    - ``save_interval_bytes`` / ``progress_interval``: how often downloads persist and report progress.
    """

    flow: str
    device_dir: Path = attrs.field(converter=Path)
    public_key: Path = attrs.field(converter=Path)
    factory_image: Path | None = None
    flash: FlashGeometry = attrs.field(factory=FlashGeometry)
    self_test: str = "pass"
    self_test_timeout: float = 5.0
    save_interval_bytes: int = 64 * 1024
    progress_interval: float = 0.0
    flow_settings: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def flash_path(self) -> Path:
        """The file that backs the simulated flash."""
        return self.device_dir / "flash.bin"

    @property
    def state_dir(self) -> Path:
        """The directory of the device's state store."""
        return self.device_dir / "state"

    def to_json(self) -> dict[str, Any]:
        """The JSON form (what ``load_device_config`` reads)."""
        return {
            "flow": self.flow,
            "device_dir": str(self.device_dir),
            "public_key": str(self.public_key),
            "factory_image": None if self.factory_image is None else str(self.factory_image),
            "flash": attrs.asdict(self.flash),
            "self_test": self.self_test,
            "self_test_timeout": self.self_test_timeout,
            "save_interval_bytes": self.save_interval_bytes,
            "progress_interval": self.progress_interval,
            "flow_settings": dict(self.flow_settings),
        }

    def write(self, path: Path) -> None:
        """Write the configuration file."""
        path.write_text(json.dumps(self.to_json(), indent=2), encoding="utf-8")


def load_device_config(path: Path) -> DeviceConfig:
    """Read and check a device configuration file; ``ConfigurationError`` with one clear line if broken."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigurationError(f"cannot read the device configuration {path}: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise ConfigurationError(f"the device configuration {path} is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"the device configuration {path} must be a JSON object")
    try:
        flash = FlashGeometry(**data.get("flash", {}))
        factory = data.get("factory_image")
        config = DeviceConfig(
            flow=str(data["flow"]),
            device_dir=data["device_dir"],
            public_key=data["public_key"],
            factory_image=None if factory is None else Path(factory),
            flash=flash,
            self_test=str(data.get("self_test", "pass")),
            self_test_timeout=float(data.get("self_test_timeout", 5.0)),
            save_interval_bytes=int(data.get("save_interval_bytes", 64 * 1024)),
            progress_interval=float(data.get("progress_interval", 0.0)),
            flow_settings=dict(data.get("flow_settings", {})),
        )
    except KeyError as error:
        raise ConfigurationError(f"the device configuration {path} lacks {error.args[0]!r}") from None
    except (TypeError, ValueError) as error:
        raise ConfigurationError(f"the device configuration {path} is invalid: {error}") from None
    if config.self_test not in SELF_TEST_MODES:
        raise ConfigurationError(f"self_test must be one of {', '.join(SELF_TEST_MODES)}, not {config.self_test!r}")
    return config

"""The Linux backends behind one small interface, for the kill sweeps and trial tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ota_boot.demo_image import DemoImageValidator
from ota_boot.dir_slots import DirectorySlots
from ota_boot.env_control import EnvBootControl, env_boot
from ota_boot.file_slots import FileSlot
from ota_boot.grub_env import GrubEnvFile
from ota_boot.schemes import CountingScheme
from ota_boot.uboot_env import EnvCopy, UBootEnvStore
from ota_core.protocols import BootControl

CAPACITY = 64 * 1024
SCHEME = CountingScheme()


class Device:
    """One backend on disk: ``boot()`` plays the bootloader/launcher, ``control()`` the application."""

    def __init__(self, kind: str, root: Path, hook: Callable[[str], None] | None) -> None:
        self.kind = kind
        self.root = root
        self.hook = hook
        self.validator = DemoImageValidator()
        self.slots = {name: FileSlot(root / f"slot{name}.img", CAPACITY) for name in ("A", "B")}
        if kind == "uboot":
            self.store: UBootEnvStore | GrubEnvFile = UBootEnvStore(
                [EnvCopy(root / "env1.bin", 0, 0x1000), EnvCopy(root / "env2.bin", 0, 0x1000)], step_hook=hook
            )
        else:
            self.store = GrubEnvFile(root / "grubenv", step_hook=hook)

    def booted(self) -> str:
        return (self.root / "booted").read_text()

    def boot(self) -> str:
        if self.kind == "dir":
            slot = DirectorySlots(self.root, validator=self.validator, step_hook=self.hook, capacity=CAPACITY).boot()
        else:
            slot = env_boot(
                self.store,
                SCHEME,
                self.slots,
                validator=self.validator,
                default_env=lambda: SCHEME.initial("A"),
            )
        (self.root / "booted").write_text(slot)
        return slot

    def control(self, attempts: int = 3) -> BootControl:
        if self.kind == "dir":
            return DirectorySlots(
                self.root,
                validator=self.validator,
                step_hook=self.hook,
                capacity=CAPACITY,
                attempts=attempts,
                booted_slot=self.booted(),
            )
        return EnvBootControl(
            self.store,
            SCHEME,
            self.slots,
            booted_slot=self.booted(),
            validator=self.validator,
            attempts=attempts,
        )

    def image_of(self, slot: str) -> bytes:
        path = self.root / "slots" / slot / "image.bin" if self.kind == "dir" else self.slots[slot].path
        return path.read_bytes() if path.exists() else b""


def make_backend(kind: str, root: Path, hook: Callable[[str], None] | None = None) -> Device:
    """Open the device stored under ``root``."""
    return Device(kind, root, hook)


def factory(kind: str, root: Path, old: bytes) -> Device:
    """A factory device running ``old`` in slot A, confirmed."""
    root.mkdir(parents=True, exist_ok=True)
    if kind == "dir":
        DirectorySlots.initialise(root, old, validator=DemoImageValidator(), capacity=CAPACITY)
    else:
        (root / "slotA.img").write_bytes(old)
        device = Device(kind, root, None)
        if isinstance(device.store, UBootEnvStore):
            device.store.initialise(SCHEME.initial("A"))
        else:
            device.store.initialise(SCHEME.initial("A"))
    device = Device(kind, root, None)
    device.boot()
    return device

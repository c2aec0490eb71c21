"""ota_boot: Install and bootloader hand-off.

Slots, image state (test, confirm, revert), boot counting and the self-test deadline, over a simulated
NOR flash with an MCUboot-style bootloader model and over Linux A/B backends (directory slots, U-Boot
environment, GRUB environment block). Every backend implements ``ota_core.protocols.BootControl``.
"""

from ota_boot.bootloader import Bootloader, BootResult, FlashSlotReader
from ota_boot.demo_image import DemoImageValidator, build_demo_image
from ota_boot.dir_slots import DirectorySlots
from ota_boot.env_control import EnvBootControl, EnvStore, env_boot
from ota_boot.errors import (
    BootConfigurationError,
    EnvironmentCorruptedError,
    FlashError,
    FlashNotErasedError,
    FlashUnalignedError,
    FlashWriteFailedError,
    ImageTooLargeError,
    NoBootableImageError,
    PowerCut,
    ReadBackMismatchError,
    SlotBusyError,
    TrailerCorruptedError,
    UnknownSwapStateError,
    WriteOutOfBoundsError,
)
from ota_boot.file_slots import FileSlot, FileSlotReader
from ota_boot.flash import FlashLayout, SimFlash
from ota_boot.grub_env import GrubEnvFile, decode_grub_env, encode_grub_env
from ota_boot.layout import BootLayout, SwapMode
from ota_boot.mcu_control import McuBootControl
from ota_boot.schemes import BootScheme, CountingScheme, OrderScheme, SchemeState
from ota_boot.slot_writer import FileSlotWriter, FlashSlotWriter, sha256_of_reader
from ota_boot.trailer import (
    BOOT_MAGIC,
    FlagState,
    MagicState,
    SwapType,
    Trailer,
    TrailerLayout,
    decode_trailer,
    encode_trailer,
)
from ota_boot.trial import TrialOutcome, TrialSupervisor
from ota_boot.uboot_env import EnvCopy, UBootEnvStore, decode_uboot_env, encode_uboot_env

__all__ = [
    "BOOT_MAGIC",
    "BootConfigurationError",
    "BootLayout",
    "BootResult",
    "BootScheme",
    "Bootloader",
    "CountingScheme",
    "DemoImageValidator",
    "DirectorySlots",
    "EnvBootControl",
    "EnvCopy",
    "EnvStore",
    "EnvironmentCorruptedError",
    "FileSlot",
    "FileSlotReader",
    "FileSlotWriter",
    "FlagState",
    "FlashError",
    "FlashLayout",
    "FlashNotErasedError",
    "FlashSlotReader",
    "FlashSlotWriter",
    "FlashUnalignedError",
    "FlashWriteFailedError",
    "GrubEnvFile",
    "ImageTooLargeError",
    "MagicState",
    "McuBootControl",
    "NoBootableImageError",
    "OrderScheme",
    "PowerCut",
    "ReadBackMismatchError",
    "SchemeState",
    "SimFlash",
    "SlotBusyError",
    "SwapMode",
    "SwapType",
    "Trailer",
    "TrailerCorruptedError",
    "TrailerLayout",
    "TrialOutcome",
    "TrialSupervisor",
    "UBootEnvStore",
    "UnknownSwapStateError",
    "WriteOutOfBoundsError",
    "build_demo_image",
    "decode_grub_env",
    "decode_trailer",
    "decode_uboot_env",
    "encode_grub_env",
    "encode_trailer",
    "encode_uboot_env",
    "env_boot",
    "sha256_of_reader",
]

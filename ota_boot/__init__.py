"""ota_boot: Install and bootloader hand-off.

Slots, image state (test, confirm, revert), boot counting and the self-test deadline, over a simulated
NOR flash with an MCUboot-style bootloader model and over Linux A/B backends (directory slots, U-Boot
environment, GRUB environment block).
"""

__all__: list[str] = []

"""An MCU update on a simulated flash kept in a directory, one process per "power-on".

python examples/mcu_update_demo.py DIR init              # factory image 1.0.0, confirmed
python examples/mcu_update_demo.py DIR install 2.0.0     # write the secondary slot, ask for a test swap
python examples/mcu_update_demo.py DIR boot --cut 20     # bootloader start, power cut at flash op 20
python examples/mcu_update_demo.py DIR boot              # next start: the swap resumes
python examples/mcu_update_demo.py DIR confirm           # self-test passed (skip it: the next boot reverts)
python examples/mcu_update_demo.py DIR status
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

from ota_boot import BootLayout, Bootloader, DemoImageValidator, McuBootControl, PowerCut, SimFlash, build_demo_image
from ota_core import OtaError

LAYOUT = BootLayout.simple(sector_size=1024, image_sectors=8, write_alignment=4)


def main() -> int:
    """Run one command against the flash stored in DIR."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", type=Path)
    parser.add_argument("command", choices=["init", "install", "boot", "confirm", "status"])
    parser.add_argument("version", nargs="?", default="2.0.0")
    parser.add_argument("--cut", type=int, default=0, help="cut the power at this flash operation")
    arguments = parser.parse_args()
    path = arguments.directory / "flash.bin"
    validator = DemoImageValidator()
    try:
        if arguments.command == "init":
            arguments.directory.mkdir(parents=True, exist_ok=True)
            flash = SimFlash.create(path, LAYOUT.flash)
            image = build_demo_image(b"factory application " * 100, "1.0.0")
            flash.write(LAYOUT.primary_offset, image + b"\xff" * (-len(image) % 4))
            print("factory image 1.0.0 written")
            return 0
        flash = SimFlash.open(path)
        if arguments.cut:
            flash.arm_power_cut(arguments.cut)
        control = McuBootControl(flash, LAYOUT, validator)
        if arguments.command == "install":
            image = build_demo_image(f"application {arguments.version} ".encode() * 150, arguments.version)
            writer = control.open_inactive_slot(len(image))
            for offset in range(0, len(image), 512):
                writer.write_at(offset, image[offset : offset + 512])
            control.activate(expected_sha256=hashlib.sha256(image).digest())
            print(f"{arguments.version} staged for a test swap at the next boot")
        elif arguments.command == "boot":
            result = Bootloader(flash, LAYOUT, validator).boot()
            print(f"booted {result.image.version} (swap {result.swap.name}, resumed {result.resumed})")
        elif arguments.command == "confirm":
            control.confirm()
            print("running image confirmed")
        print(control.state())
    except PowerCut as cut:
        print(f"POWER CUT: {cut}")
        return 2
    except OtaError as error:
        print(f"error: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

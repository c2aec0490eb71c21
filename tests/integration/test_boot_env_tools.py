"""U-Boot and GRUB environments checked against the real Debian tools on environment files."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ota_boot.errors import EnvironmentCorruptedError
from ota_boot.grub_env import GrubEnvFile, decode_grub_env, encode_grub_env
from ota_boot.uboot_env import EnvCopy, UBootEnvStore, decode_uboot_env, encode_uboot_env
from tests.boot_fixtures import require_tool

SIZE = 0x2000


def _run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=30).stdout


def _printenv(config: Path) -> dict[str, str]:
    out = _run(require_tool("fw_printenv"), "-c", str(config))
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def _store(tmp_path: Path, redundant: bool) -> tuple[UBootEnvStore, Path]:
    copies = [EnvCopy(tmp_path / "env1.bin", 0, SIZE)]
    if redundant:
        copies.append(EnvCopy(tmp_path / "env2.bin", 0, SIZE))
    store = UBootEnvStore(copies)
    config = tmp_path / "fw_env.config"
    config.write_text(store.fw_env_config())
    return store, config


@pytest.mark.parametrize("redundant", [False, True])
def test_fw_printenv_reads_what_we_write(tmp_path: Path, redundant: bool) -> None:
    store, config = _store(tmp_path, redundant)
    store.initialise({"BOOT_ORDER": "A B", "BOOT_A_LEFT": "3", "bootcmd": "run distro_bootcmd"})
    store.save({"BOOT_ORDER": "B A", "BOOT_A_LEFT": "3", "BOOT_B_LEFT": "3", "bootcmd": "run distro_bootcmd"})
    assert _printenv(config) == {
        "BOOT_ORDER": "B A",
        "BOOT_A_LEFT": "3",
        "BOOT_B_LEFT": "3",
        "bootcmd": "run distro_bootcmd",
    }


@pytest.mark.parametrize("redundant", [False, True])
def test_we_read_what_fw_setenv_writes(tmp_path: Path, redundant: bool) -> None:
    store, config = _store(tmp_path, redundant)
    store.initialise({"upgrade_available": "0", "bootcount": "0"})
    for round_ in range(3):  # several saves: the flags advance and the copies alternate
        _run(require_tool("fw_setenv"), "-c", str(config), "bootcount", str(round_ + 1))
        _run(require_tool("fw_setenv"), "-c", str(config), "upgrade_available", "1")
        loaded = store.load()
        assert loaded["upgrade_available"] == "1"
        assert loaded["bootcount"] == str(round_ + 1)
        assert loaded.get("boot_slot") == (f"S{round_ - 1}" if round_ else None)
        store.save({**store.load(), "boot_slot": f"S{round_}"})
        assert _printenv(config)["boot_slot"] == f"S{round_}"


def test_mkenvimage_images_decode(tmp_path: Path) -> None:
    source = tmp_path / "env.txt"
    source.write_text("bootlimit=3\nbootcount=0\nupgrade_available=0\nboot_slot=A\n")
    for flag, extra in ((0, []), (1, ["-r"])):
        image = tmp_path / f"env{flag}.bin"
        _run(require_tool("mkenvimage"), "-s", str(SIZE), *extra, "-o", str(image), str(source))
        variables, _flag = decode_uboot_env(image.read_bytes(), redundant=bool(extra))
        assert variables == {"bootlimit": "3", "bootcount": "0", "upgrade_available": "0", "boot_slot": "A"}
        expected = encode_uboot_env(variables, SIZE, redundant=bool(extra), flag=_flag)
        # Same bytes apart from the order of variables, which mkenvimage keeps as given.
        assert decode_uboot_env(expected, redundant=bool(extra))[0] == variables


def test_fw_printenv_and_we_use_the_good_copy_when_one_is_torn(tmp_path: Path) -> None:
    store, config = _store(tmp_path, True)
    store.initialise({"boot_slot": "A"})  # copy 1 flag 0, copy 2 flag 1
    store.save({"boot_slot": "B"})  # copy 1 flag 2: the current one
    assert store.load() == {"boot_slot": "B"}
    data = bytearray((tmp_path / "env1.bin").read_bytes())
    data[10] ^= 0xFF  # torn: bad CRC
    (tmp_path / "env1.bin").write_bytes(bytes(data))
    assert store.load() == {"boot_slot": "A"}
    assert _printenv(config) == {"boot_slot": "A"}
    other = bytearray((tmp_path / "env2.bin").read_bytes())
    other[0] ^= 0xFF
    (tmp_path / "env2.bin").write_bytes(bytes(other))
    with pytest.raises(EnvironmentCorruptedError) as caught:
        store.load()
    assert "no valid environment copy" in caught.value.message
    assert len(caught.value.details["problems"]) == 2


def test_grub_editenv_reads_what_we_write(tmp_path: Path) -> None:
    tool = require_tool("grub-editenv")
    block = GrubEnvFile(tmp_path / "grubenv")
    block.save({"ORDER": "A B", "A_TRY": "0", "note": "line1\nline2", "path": "back\\slash"})
    out = _run(tool, str(tmp_path / "grubenv"), "list")
    assert out == "ORDER=A B\nA_TRY=0\nnote=line1\nline2\npath=back\\slash\n"


def test_we_read_what_grub_editenv_writes(tmp_path: Path) -> None:
    tool = require_tool("grub-editenv")
    path = tmp_path / "grubenv"
    _run(tool, str(path), "create")
    _run(tool, str(path), "set", "ORDER=B A", "B_TRY=1", "multi=x\ny", "bs=a\\b")
    assert decode_grub_env(path.read_bytes()) == {"ORDER": "B A", "B_TRY": "1", "multi": "x\ny", "bs": "a\\b"}
    assert path.read_bytes() == encode_grub_env({"ORDER": "B A", "B_TRY": "1", "multi": "x\ny", "bs": "a\\b"})
    _run(tool, str(path), "unset", "B_TRY")
    assert GrubEnvFile(path).load() == {"ORDER": "B A", "multi": "x\ny", "bs": "a\\b"}

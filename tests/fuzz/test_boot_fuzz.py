"""Property-based tests: the boot decoders and schemes raise only the project's typed errors."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from ota_boot.bootloader import Bootloader
from ota_boot.demo_image import DemoImageValidator, build_demo_image
from ota_boot.flash import SimFlash
from ota_boot.grub_env import decode_grub_env, encode_grub_env
from ota_boot.layout import BootLayout
from ota_boot.schemes import CountingScheme, OrderScheme
from ota_boot.trailer import TrailerLayout, decode_trailer
from ota_boot.uboot_env import decode_uboot_env, encode_uboot_env
from ota_core.errors import OtaError

LAYOUT = TrailerLayout(4, 4)
NAMES = st.text(alphabet=st.characters(exclude_characters="=\0\n\\#", exclude_categories=["Cs"]), min_size=1)
VALUES = st.text(alphabet=st.characters(exclude_characters="\0", exclude_categories=["Cs"]), max_size=40)


@settings(max_examples=200)
@given(st.binary(min_size=0, max_size=LAYOUT.size + 4))
def test_trailer_decoder_raises_only_typed_errors(raw: bytes) -> None:
    try:
        trailer = decode_trailer(LAYOUT, raw)
    except OtaError:
        return
    assert len(trailer.status) == LAYOUT.status_entries


@settings(max_examples=200)
@given(st.binary(max_size=300), st.booleans())
def test_uboot_decoder_raises_only_typed_errors(raw: bytes, redundant: bool) -> None:
    with contextlib.suppress(OtaError):
        decode_uboot_env(raw, redundant=redundant)


@settings(max_examples=100)
@given(st.dictionaries(NAMES, VALUES, max_size=8), st.booleans())
def test_uboot_round_trip(variables: dict[str, str], redundant: bool) -> None:
    try:
        image = encode_uboot_env(variables, 1024, redundant=redundant)
    except OtaError:
        return
    assert decode_uboot_env(image, redundant=redundant)[0] == variables


@settings(max_examples=200)
@given(st.binary(max_size=300))
def test_grub_decoder_raises_only_typed_errors(raw: bytes) -> None:
    for candidate in (raw, b"# GRUB Environment Block\n" + raw):
        with contextlib.suppress(OtaError):
            decode_grub_env(candidate)


@settings(max_examples=100)
@given(st.dictionaries(NAMES, VALUES, max_size=8))
def test_grub_round_trip(variables: dict[str, str]) -> None:
    try:
        block = encode_grub_env(variables)
    except OtaError:
        return
    assert decode_grub_env(block) == variables


@settings(max_examples=150)
@given(
    st.dictionaries(
        st.sampled_from(
            ["boot_slot", "upgrade_available", "bootcount", "bootlimit", "BOOT_ORDER", "BOOT_A_LEFT", "BOOT_B_LEFT"]
        ),
        VALUES,
    )
)
def test_schemes_on_arbitrary_variables(variables: dict[str, str]) -> None:
    for scheme in (CountingScheme(), OrderScheme()):
        try:
            slot, _after = scheme.select(variables)
            scheme.state(variables)
        except OtaError:
            continue
        assert slot in scheme.slots


_BOOT = BootLayout.simple(sector_size=256, image_sectors=4, write_alignment=4)
_IMAGE = build_demo_image(b"x" * 300, "1.0.0")


@settings(max_examples=100, deadline=None)
@given(
    st.binary(min_size=_BOOT.trailer.size, max_size=_BOOT.trailer.size),
    st.binary(min_size=_BOOT.trailer.size, max_size=_BOOT.trailer.size),
)
def test_bootloader_on_garbage_trailers(primary: bytes, secondary: bytes) -> None:
    """Corrupted trailers: the bootloader either boots the intact image or raises a typed error."""
    contents = bytearray(SimFlash(_BOOT.flash).snapshot())
    contents[_BOOT.primary_offset : _BOOT.primary_offset + len(_IMAGE)] = _IMAGE
    contents[_BOOT.trailer_offset("primary") : _BOOT.trailer_offset("primary") + len(primary)] = primary
    start = _BOOT.trailer_offset("secondary")
    contents[start : start + len(secondary)] = secondary
    flash = SimFlash.from_bytes(_BOOT.flash, bytes(contents))
    with contextlib.suppress(OtaError):
        Bootloader(flash, _BOOT, DemoImageValidator()).boot()

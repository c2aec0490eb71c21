"""Property-based tests: whatever bytes or text come in, only the project's typed errors come out."""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ota_core.errors import OtaError
from ota_verify.adu import AduManifestVerifier, parse_adu_manifest
from ota_verify.digests import FileChecker, parse_crc16_text
from ota_verify.keys import KeyRing, load_mcuboot_public_key, load_public_key
from ota_verify.mcuboot import McubootVerifier, McubootVersion, parse_image
from ota_verify.signatures import decode_base64, scheme_from_aws_key
from tests.verify_fixtures import private_key, signed_image

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
IMAGE = signed_image("ed25519", payload=b"fuzz me", security_counter=3)
VERIFIER = McubootVerifier(KeyRing([private_key("ed25519").public_key()]))


def _expect_typed(call: Callable[[], object]) -> None:
    with contextlib.suppress(OtaError):
        call()


@FUZZ
@given(st.binary(max_size=600))
def test_tlv_parser_and_verifier_on_random_bytes(data: bytes) -> None:
    _expect_typed(lambda: VERIFIER.verify_bytes(data))
    _expect_typed(lambda: parse_image(lambda o, n: data[o : o + n], len(data), allow_trailing=True))


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(IMAGE) - 1), st.integers(0, 255)), min_size=1, max_size=6))
def test_mutated_signed_image_is_never_accepted(edits: list[tuple[int, int]]) -> None:
    mutated = bytearray(IMAGE)
    for index, value in edits:
        mutated[index] = value
    if bytes(mutated) == IMAGE:
        return
    try:
        VERIFIER.verify_bytes(bytes(mutated))
    except OtaError:
        return
    raise AssertionError("a modified image verified")


@FUZZ
@given(st.integers(0, len(IMAGE)), st.binary(max_size=64))
def test_truncated_or_extended_image(cut: int, tail: bytes) -> None:
    candidate = IMAGE[:cut] + tail
    if candidate == IMAGE:
        return
    try:
        VERIFIER.verify_bytes(candidate)
    except OtaError:
        return
    raise AssertionError("a truncated or extended image verified")


_segment = st.one_of(
    st.text(max_size=40),
    st.binary(max_size=40).map(lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")),
    st.dictionaries(
        st.sampled_from(["alg", "sjwk", "kid", "sha256"]), st.one_of(st.text(max_size=20), st.integers())
    ).map(lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")),
)


@FUZZ
@given(st.lists(_segment, min_size=0, max_size=4).map(".".join), st.text(max_size=50))
def test_jws_parser(token: str, manifest: str) -> None:
    _expect_typed(lambda: AduManifestVerifier().verify(manifest, token))


@FUZZ
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
        max_leaves=15,
    )
)
def test_manifest_parser(document: object) -> None:
    _expect_typed(lambda: parse_adu_manifest(json.dumps(document)))


@FUZZ
@given(st.binary(max_size=300))
def test_key_loaders(data: bytes) -> None:
    _expect_typed(lambda: load_public_key(data))
    _expect_typed(lambda: load_mcuboot_public_key(data))


@FUZZ
@given(st.text(max_size=40))
def test_text_decoders(text: str) -> None:
    _expect_typed(lambda: decode_base64(text))
    _expect_typed(lambda: scheme_from_aws_key(text))
    _expect_typed(lambda: parse_crc16_text(text))
    _expect_typed(lambda: McubootVersion.parse(text))


@FUZZ
@given(st.integers(0, 64), st.lists(st.binary(max_size=20), max_size=8))
def test_file_checker_size_accounting(size: int, blocks: list[bytes]) -> None:
    checker = FileChecker(size, crc32=0)
    fed = 0
    try:
        for block in blocks:
            checker.update(block)
            fed += len(block)
        checker.finish()
    except OtaError:
        return
    assert fed == size


@FUZZ
@given(
    st.integers(-2, 0x20000),
    st.integers(-1, 1 << 33),
    st.integers(-1, 1 << 33),
    st.one_of(st.none(), st.just("auto"), st.integers(-5, 1 << 33)),
    st.sampled_from([1, 2, 3, 4, 8, 64]),
    st.integers(0, 0x3000),
    st.binary(max_size=64),
)
def test_signer_options_give_images_or_typed_errors(
    header_size: int, load_addr: int, flags: int, counter: object, align: int, slot_size: int, payload: bytes
) -> None:
    from ota_verify.mcuboot import SignOptions, sign_image

    options = SignOptions(
        version=McubootVersion(1, 2, 3),
        header_size=header_size,
        pad_header=True,
        load_addr=load_addr,
        flags=flags,
        security_counter=counter,  # type: ignore[arg-type]
        align=align,
        slot_size=slot_size,
    )
    try:
        image = sign_image(payload, private_key("ed25519"), options)
    except OtaError:
        return
    verifier = McubootVerifier(KeyRing([private_key("ed25519").public_key()]), allowed_flags=0xFFFFFFFF)
    assert verifier.verify_bytes(image).version == McubootVersion(1, 2, 3)


@FUZZ
@given(st.binary(min_size=32, max_size=400), st.lists(st.integers(1, 64), min_size=1, max_size=20))
def test_streaming_image_checker_on_random_bytes(data: bytes, cuts: list[int]) -> None:
    candidates = [data, IMAGE[:32] + data]
    for candidate in candidates:
        try:
            checker = VERIFIER.begin(len(candidate))
            offset = 0
            for cut in cuts * 10:
                if offset >= len(candidate):
                    break
                checker.update(candidate[offset : offset + cut])
                offset += cut
            checker.finish()
        except OtaError:
            continue
        assert candidate == IMAGE, "random bytes verified as a signed image"

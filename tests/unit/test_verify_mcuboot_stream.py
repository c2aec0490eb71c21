"""MCUboot images checked while they stream in, alone and inside a PlanVerifier."""

from __future__ import annotations

from pathlib import Path

import pytest

from ota_core.errors import VerificationError
from ota_core.models import FileTarget, UpdatePlan
from ota_core.protocols import IncrementalVerifier
from ota_core.state_store import FileStateStore
from ota_core.versions import Version
from ota_verify.errors import (
    DigestMismatchError,
    DowngradeError,
    ImageFormatError,
    SignatureInvalidError,
    SizeMismatchError,
    UnsupportedAlgorithmError,
)
from ota_verify.keys import KeyRing
from ota_verify.mcuboot import McubootVerifier, McubootVersion
from ota_verify.rollback import AntiRollbackPolicy
from ota_verify.verifier import PlanVerifier
from tests.verify_fixtures import private_key, signed_image


def ring(*kinds: str) -> KeyRing:
    return KeyRing([private_key(kind).public_key() for kind in kinds])


def feed(checker: IncrementalVerifier, data: bytes, block: int) -> None:
    for offset in range(0, len(data), block):
        checker.update(data[offset : offset + block])
    checker.finish()


@pytest.mark.parametrize("block", [1, 7, 31, 32, 33, 512, 4096])
@pytest.mark.parametrize("kind", ["ecdsa-p256", "ed25519", "rsa-3072"])
def test_streamed_result_equals_whole_image_result(kind: str, block: int) -> None:
    image = signed_image(kind, security_counter=5)
    verifier = McubootVerifier(ring(kind))
    checker = verifier.begin(len(image))
    feed(checker, image, block)
    assert checker.result == verifier.verify_bytes(image)


def test_p384_needs_sha384_while_streaming() -> None:
    image = signed_image("ecdsa-p384")
    verifier = McubootVerifier(ring("ecdsa-p384", "ed25519"))
    assert verifier.needs_sha384()
    checker = verifier.begin(len(image))
    feed(checker, image, 100)
    assert checker.result is not None and checker.result.hash_algorithm == "sha384"
    other = McubootVerifier(ring("ed25519")).begin(len(image))
    with pytest.raises(UnsupportedAlgorithmError):
        feed(other, image, 100)


def test_every_byte_flip_is_rejected_while_streaming() -> None:
    image = signed_image("ed25519", payload=b"small", security_counter=1)
    verifier = McubootVerifier(ring("ed25519"))
    for index in range(len(image)):
        tampered = bytearray(image)
        tampered[index] ^= 0x80
        with pytest.raises(VerificationError):
            feed(verifier.begin(len(image)), bytes(tampered), 16)


def test_garbage_is_refused_at_the_header() -> None:
    verifier = McubootVerifier(ring("ecdsa-p256"))
    checker = verifier.begin(1000)
    checker.update(b"\x00" * 31)
    with pytest.raises(ImageFormatError, match="magic"):
        checker.update(b"\x00")
    image = bytearray(signed_image())
    image[12:16] = (10**6).to_bytes(4, "little")
    with pytest.raises(ImageFormatError, match="do not fit"):
        verifier.begin(len(image)).update(bytes(image[:64]))


def test_sizes() -> None:
    image = signed_image()
    verifier = McubootVerifier(ring("ecdsa-p256"))
    with pytest.raises(SizeMismatchError):
        verifier.begin(8)
    checker = verifier.begin(len(image))
    with pytest.raises(SizeMismatchError):
        checker.update(image + b"\xff")
    short = verifier.begin(len(image))
    short.update(image[:20])
    with pytest.raises(SizeMismatchError):
        short.finish()
    with pytest.raises(SizeMismatchError):
        short.update(b"x")
    padded = image + b"\xff" * 8
    with pytest.raises(ImageFormatError, match="extra bytes"):
        feed(verifier.begin(len(padded)), padded, 64)


def test_tampered_payload_and_signature() -> None:
    image = signed_image()
    verifier = McubootVerifier(ring("ecdsa-p256"))
    payload = bytearray(image)
    payload[100] ^= 1
    with pytest.raises(DigestMismatchError):
        feed(verifier.begin(len(image)), bytes(payload), 50)
    signature = bytearray(image)
    signature[-2] ^= 1
    with pytest.raises(SignatureInvalidError):
        feed(verifier.begin(len(image)), bytes(signature), 50)


def test_plan_verifier_streams_images_and_applies_rollback(tmp_path: Path) -> None:
    policy = AntiRollbackPolicy(FileStateStore(tmp_path))
    policy.confirm(Version(1, 5, 0), security_counter=3)
    verifier = PlanVerifier(mcuboot=McubootVerifier(ring("ecdsa-p256")), rollback=policy)
    newer = signed_image(version=McubootVersion(2, 0, 0), security_counter=3)
    plan = UpdatePlan("j", "aws-afr-ota", (FileTarget("app.signed.bin", len(newer)),))
    verifier.check_plan(plan)  # an image needs no other integrity data: it carries its own
    checker = verifier.begin(plan, plan.files[0])
    feed(checker, newer, 4096)
    assert checker.image is not None and checker.image.version == McubootVersion(2, 0, 0)  # type: ignore[attr-defined]
    older = signed_image(version=McubootVersion(1, 0, 0))
    plan = UpdatePlan("j2", "aws-afr-ota", (FileTarget("app.signed.bin", len(older)),))
    with pytest.raises(DowngradeError):
        feed(verifier.begin(plan, plan.files[0]), older, 4096)
    counter_down = signed_image(version=McubootVersion(3, 0, 0), security_counter=2)
    plan = UpdatePlan("j3", "aws-afr-ota", (FileTarget("app.signed.bin", len(counter_down)),))
    with pytest.raises(DowngradeError, match="security counter"):
        feed(verifier.begin(plan, plan.files[0]), counter_down, 4096)


def test_plan_verifier_selects_image_files() -> None:
    verifier = PlanVerifier(
        mcuboot=McubootVerifier(ring("ecdsa-p256")),
        mcuboot_files=lambda plan, target: target.name.endswith(".signed.bin"),
    )
    image = signed_image()
    plan = UpdatePlan("j", "custom", (FileTarget("app.signed.bin", len(image)), FileTarget("notes.txt", 3)))
    with pytest.raises(DigestMismatchError, match="nothing to verify"):
        verifier.check_plan(plan)  # the text file still needs its own check
    feed(verifier.begin(plan, plan.files[0]), image, 1000)

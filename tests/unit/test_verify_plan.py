"""PlanVerifier: AWS-style signed files, Device Update manifests, expiry, compatibility and downgrades."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from ota_core.clock import ManualClock
from ota_core.errors import OtaError, VerificationError
from ota_core.models import FileTarget, Integrity, Signature, UpdatePlan
from ota_core.protocols import Verifier
from ota_core.state_store import FileStateStore
from ota_core.versions import Version
from ota_verify.adu import AduManifestVerifier, sign_adu_manifest
from ota_verify.certificates import CertificateVerifier
from ota_verify.errors import (
    DigestMismatchError,
    DowngradeError,
    IncompatibleDeviceError,
    KeyRevokedError,
    MalformedInputError,
    ManifestError,
    PlanExpiredError,
    SignatureInvalidError,
    SizeMismatchError,
    UnsupportedAlgorithmError,
    UntrustedKeyError,
)
from ota_verify.keys import KeyRing, key_hash
from ota_verify.policy import DeviceIdentity, check_compatibility, parse_expiry
from ota_verify.rollback import AntiRollbackPolicy
from ota_verify.tools import sign_detached
from ota_verify.verifier import PlanVerifier
from tests.verify_fixtures import NOW, make_certificate, private_key, rsa_key

FIRMWARE = b"\x7fELF firmware image" * 500
SIGNER = private_key("ecdsa-p256", 20)
CA_KEY = private_key("ecdsa-p256", 21)
CA = make_certificate("Code Signing CA", CA_KEY, ca=True)
SIGNER_CERT = make_certificate("Release signer", SIGNER, issuer=("Code Signing CA", CA_KEY))


def aws_plan(
    data: bytes = FIRMWARE, *, size: int | None = None, certfile: str | None = "signer.crt", **attributes: object
) -> UpdatePlan:
    signature = sign_detached(FIRMWARE, SIGNER)
    target = FileTarget(
        name="firmware.bin",
        size=len(data) if size is None else size,
        integrity=Integrity(signatures=(Signature(signature.value, "SHA256", "ECDSA", certfile),)),
    )
    return UpdatePlan("job-1", "aws-afr-ota", (target,), version=Version(2, 0, 0), attributes=attributes)


def run(verifier: PlanVerifier, plan: UpdatePlan, data: bytes, block: int = 4096) -> None:
    verifier.check_plan(plan)
    checker = verifier.begin(plan, plan.files[0])
    for offset in range(0, len(data), block):
        checker.update(data[offset : offset + block])
    checker.finish()


def cert_verifier(**kwargs: object) -> PlanVerifier:
    return PlanVerifier(
        certificates=CertificateVerifier([CA], clock=ManualClock(NOW)),
        certificate_source={"signer.crt": SIGNER_CERT.public_bytes(serialization.Encoding.PEM)},
        clock=ManualClock(NOW),
        **kwargs,  # type: ignore[arg-type]
    )


def test_signed_file_with_code_signing_certificate() -> None:
    verifier = cert_verifier()
    assert isinstance(verifier, Verifier)
    run(verifier, aws_plan(), FIRMWARE)
    tampered = bytearray(FIRMWARE)
    tampered[100] ^= 1
    with pytest.raises(SignatureInvalidError):
        run(verifier, aws_plan(), bytes(tampered))


def test_signed_file_with_trusted_key_and_revocation() -> None:
    ring = KeyRing([SIGNER.public_key()])
    run(PlanVerifier(key_ring=ring), aws_plan(certfile=None), FIRMWARE)
    run(PlanVerifier(key_ring=ring), aws_plan(certfile="unknown.crt"), FIRMWARE)
    with pytest.raises(SignatureInvalidError):
        run(PlanVerifier(key_ring=KeyRing([private_key("ecdsa-p256", 22).public_key()])), aws_plan(), FIRMWARE)
    ring.revoke(key_hash(SIGNER.public_key()))
    with pytest.raises(UntrustedKeyError):
        run(PlanVerifier(key_ring=ring), aws_plan(certfile=None), FIRMWARE)
    with pytest.raises(KeyRevokedError):
        run(cert_verifier(key_ring=ring), aws_plan(), FIRMWARE)
    with pytest.raises(UntrustedKeyError, match="not found"):
        run(cert_verifier(), aws_plan(certfile="missing.crt"), FIRMWARE)


def test_exact_size() -> None:
    verifier = PlanVerifier(key_ring=KeyRing([SIGNER.public_key()]))
    with pytest.raises(SizeMismatchError):
        run(verifier, aws_plan(), FIRMWARE + b"\x00")
    with pytest.raises(SizeMismatchError):
        run(verifier, aws_plan(size=len(FIRMWARE) + 1), FIRMWARE)


def test_unsigned_and_unchecked_files() -> None:
    target = FileTarget("a.bin", 3, integrity=Integrity(digests={"sha256": hashlib.sha256(b"abc").digest()}))
    plan = UpdatePlan("j", "custom", (target,))
    run(PlanVerifier(), plan, b"abc")
    with pytest.raises(SignatureInvalidError, match="not signed"):
        PlanVerifier(require_signature=True).check_plan(plan)
    bare = UpdatePlan("j", "custom", (FileTarget("a.bin", 3),))
    with pytest.raises(DigestMismatchError, match="nothing to verify"):
        PlanVerifier().check_plan(bare)
    crc_only = UpdatePlan("j", "azure-mxchip", (FileTarget("fw.bin", 9, integrity=Integrity(crc16_xmodem=0x31C3)),))
    run(PlanVerifier(), crc_only, b"123456789")
    with pytest.raises(DigestMismatchError):
        run(PlanVerifier(), crc_only, b"123456780")


def test_signature_algorithm_checked_before_download() -> None:
    target = FileTarget("a", 1, integrity=Integrity(signatures=(Signature(b"x", "SHA1", "RSA"),)))
    with pytest.raises(UnsupportedAlgorithmError):
        PlanVerifier().check_plan(UpdatePlan("j", "aws-afr-ota", (target,)))


def test_expiry_with_injected_clock() -> None:
    clock = ManualClock(NOW)
    verifier = PlanVerifier(key_ring=KeyRing([SIGNER.public_key()]), clock=clock)
    plan = aws_plan(expires=(NOW + datetime.timedelta(hours=1)).isoformat())
    verifier.check_plan(plan)
    clock.advance(7200)
    with pytest.raises(PlanExpiredError):
        verifier.check_plan(plan)
    with pytest.raises(MalformedInputError):
        verifier.check_plan(aws_plan(expires="tomorrow"))


def test_downgrade_refused_before_download(tmp_path: Path) -> None:
    policy = AntiRollbackPolicy(FileStateStore(tmp_path))
    policy.confirm(Version(3, 0, 0))
    with pytest.raises(DowngradeError):
        PlanVerifier(key_ring=KeyRing([SIGNER.public_key()]), rollback=policy).check_plan(aws_plan())
    policy2 = AntiRollbackPolicy(FileStateStore(tmp_path / "b"))
    policy2.confirm(Version(1, 0, 0), security_counter=9)
    with pytest.raises(DowngradeError):
        PlanVerifier(rollback=policy2, key_ring=KeyRing([SIGNER.public_key()])).check_plan(aws_plan(security_counter=3))


def test_plan_compatibility() -> None:
    device = DeviceIdentity({"manufacturer": "Contoso", "model": "Toaster"})
    verifier = PlanVerifier(key_ring=KeyRing([SIGNER.public_key()]), device=device)
    verifier.check_plan(aws_plan(compatibility=[{"deviceManufacturer": "contoso", "deviceModel": "toaster"}]))
    with pytest.raises(IncompatibleDeviceError):
        verifier.check_plan(aws_plan(compatibility=[{"manufacturer": "Contoso", "model": "Kettle"}]))
    with pytest.raises(IncompatibleDeviceError):
        check_compatibility(device, [], what="x")
    with pytest.raises(IncompatibleDeviceError):
        check_compatibility(device, [{}], what="x")
    with pytest.raises(MalformedInputError):
        check_compatibility(device, "Contoso", what="x")  # type: ignore[arg-type]


# --- Device Update --------------------------------------------------------------------------------

ROOT, SIGNING = rsa_key("rsa-3072", 30), rsa_key("rsa-2048", 31)
PAYLOAD = b"swupdate image bytes" * 200


def adu_manifest(model: str = "Toaster", size: int = len(PAYLOAD)) -> str:
    return json.dumps(
        {
            "manifestVersion": "5",
            "updateId": {"provider": "Contoso", "name": "Toaster", "version": "1.1"},
            "compatibility": [{"deviceManufacturer": "Contoso", "deviceModel": model}],
            "files": {
                "f1": {
                    "fileName": "toaster-1.1.swu",
                    "sizeInBytes": size,
                    "hashes": {"sha256": base64.b64encode(hashlib.sha256(PAYLOAD).digest()).decode()},
                }
            },
        }
    )


def adu_plan(manifest: str | None = None, *, signature: str | None = None, size: int = len(PAYLOAD)) -> UpdatePlan:
    text = manifest or adu_manifest()
    token = signature or sign_adu_manifest(
        text, root_key=ROOT, root_kid="TEST.R", signing_key=SIGNING, signing_kid="TEST.S"
    )
    target = FileTarget("toaster-1.1.swu", size)
    return UpdatePlan(
        "wf-1", "azure-adu", (target,), attributes={"adu_manifest": text, "adu_manifest_signature": token}
    )


def adu_verifier(**kwargs: object) -> PlanVerifier:
    return PlanVerifier(adu=AduManifestVerifier(extra_roots={"TEST.R": ROOT.public_key()}), **kwargs)  # type: ignore[arg-type]


def test_adu_manifest_hash_checked_while_downloading() -> None:
    verifier = adu_verifier(device=DeviceIdentity({"manufacturer": "contoso", "model": "toaster"}))
    run(verifier, adu_plan(), PAYLOAD)
    with pytest.raises(DigestMismatchError):
        run(verifier, adu_plan(), PAYLOAD[:-1] + b"!")
    verifier.forget("wf-1")
    # begin() without check_plan() still verifies the manifest first:
    checker = adu_verifier().begin(adu_plan(), adu_plan().files[0])
    checker.update(PAYLOAD)
    checker.finish()


def test_adu_refusals() -> None:
    with pytest.raises(IncompatibleDeviceError):
        adu_verifier(device=DeviceIdentity({"manufacturer": "Contoso", "model": "Toaster"})).check_plan(
            adu_plan(adu_manifest(model="Kettle"))
        )
    with pytest.raises(SizeMismatchError):
        adu_verifier().check_plan(adu_plan(size=len(PAYLOAD) + 1))
    edited = adu_plan()
    token = edited.attributes["adu_manifest_signature"]
    with pytest.raises(SignatureInvalidError):
        adu_verifier().check_plan(adu_plan(adu_manifest().replace("1.1", "9.9"), signature=token))
    with pytest.raises(UntrustedKeyError):
        PlanVerifier().check_plan(adu_plan())
    with pytest.raises(ManifestError, match="no signed manifest"):
        PlanVerifier().check_plan(UpdatePlan("j", "azure-adu", (FileTarget("x", 1),)))
    with pytest.raises(ManifestError, match="must both be strings"):
        PlanVerifier().check_plan(
            UpdatePlan("j", "azure-adu", (FileTarget("x", 1),), attributes={"adu_manifest": "{}"})
        )
    other = UpdatePlan("wf-2", "azure-adu", (FileTarget("other.swu", 5),), attributes=dict(adu_plan().attributes))
    with pytest.raises(ManifestError, match="not listed"):
        adu_verifier().check_plan(other)
    with pytest.raises(ManifestError, match="not listed"):
        verifier = adu_verifier()
        verifier.check_plan(adu_plan())
        verifier.begin(adu_plan(), FileTarget("other.swu", 5))


def test_adu_plan_digest_must_agree_with_manifest() -> None:
    plan = adu_plan()
    target = FileTarget("toaster-1.1.swu", len(PAYLOAD), integrity=Integrity(digests={"SHA-256": bytes(32)}))
    conflicting = UpdatePlan(plan.job_id, plan.origin, (target,), attributes=dict(plan.attributes))
    with pytest.raises(DigestMismatchError, match="disagree"):
        adu_verifier().begin(conflicting, target)


def test_parse_expiry_forms() -> None:
    assert parse_expiry("2026-01-01T00:00:00Z").year == 2026
    assert parse_expiry(0).year == 1970
    assert parse_expiry(NOW) == NOW
    bad: object
    for bad in (datetime.datetime(2026, 1, 1), "2026-01-01T00:00:00", [], 10**20):
        with pytest.raises(OtaError):
            parse_expiry(bad)


def test_everything_raised_is_a_verification_or_policy_error() -> None:
    with pytest.raises((VerificationError, OtaError)):
        run(PlanVerifier(), aws_plan(certfile=None), FIRMWARE)


def test_another_validly_signed_file_is_refused_for_this_job() -> None:
    other_firmware = b"a different, also signed release" * 100
    verifier = PlanVerifier(key_ring=KeyRing([SIGNER.public_key()]))
    plan = aws_plan(size=len(other_firmware))  # the job names FIRMWARE's signature
    sign_detached(other_firmware, SIGNER)  # the attacker has a valid signature for the other file too
    with pytest.raises(SignatureInvalidError):
        run(verifier, plan, other_firmware)


def test_a_remembered_manifest_is_not_reused_for_a_changed_plan() -> None:
    verifier = adu_verifier()
    verifier.check_plan(adu_plan())
    token = adu_plan().attributes["adu_manifest_signature"]
    changed = adu_plan(adu_manifest().replace("1.1", "6.6"), signature=token)  # same job id, unsigned change
    with pytest.raises(SignatureInvalidError):
        verifier.begin(changed, changed.files[0])
    plain = UpdatePlan("wf-1", "custom", (FileTarget("x", 1, integrity=Integrity(crc16_xmodem=0)),))
    verifier.begin(plain, plain.files[0])  # a plan without a manifest does not pick up the remembered one

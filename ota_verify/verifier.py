"""``PlanVerifier``: the ``Verifier`` an orchestrator plugs in, composing every check of this package.

Before download (``check_plan``): plan expiry, anti-rollback on ``plan.version``, device compatibility,
the Device Update manifest signature (``attributes["adu_manifest"]`` and
``attributes["adu_manifest_signature"]``, both strings as the service sent them) and that every file
has something to be verified against.
While downloading (``begin``): a ``FileChecker`` with the exact size, the digests and CRC from the
plan, the SHA-256 from the verified manifest, and the file signatures (by certificate or trusted key)
checked over the digest at the end.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from ota_core.clock import Clock, SystemClock
from ota_core.models import FileTarget, Signature, UpdatePlan
from ota_core.protocols import IncrementalVerifier
from ota_verify.adu import AduManifest, AduManifestVerifier
from ota_verify.certificates import CertificateVerifier
from ota_verify.digests import FileChecker
from ota_verify.errors import (
    DigestMismatchError,
    ManifestError,
    SignatureInvalidError,
    SizeMismatchError,
    UntrustedKeyError,
)
from ota_verify.keys import KeyRing, TrustedKey
from ota_verify.mcuboot import McubootStreamChecker, McubootVerifier, VerifiedImage
from ota_verify.policy import DeviceIdentity, check_compatibility, check_expiry
from ota_verify.rollback import AntiRollbackPolicy
from ota_verify.signatures import SignatureScheme, scheme_from_names, verify_any, verify_signature

__all__ = ["ADU_MANIFEST_KEY", "ADU_SIGNATURE_KEY", "EXPIRES_KEY", "PlanVerifier"]

_log = logging.getLogger(__name__)

ADU_MANIFEST_KEY = "adu_manifest"
"""Plan attribute: the ``updateManifest`` string exactly as received."""
ADU_SIGNATURE_KEY = "adu_manifest_signature"
"""Plan attribute: the ``updateManifestSignature`` compact JWS."""
EXPIRES_KEY = "expires"
"""Plan attribute: optional expiry (ISO 8601, aware datetime or epoch seconds)."""
COMPATIBILITY_KEY = "compatibility"
"""Plan attribute: optional list of compatibility property maps (checked if a device identity is set)."""

CertificateSource = Callable[[str], bytes | None]


class PlanVerifier:
    """Implements ``ota_core.protocols.Verifier`` from the parts of ``ota_verify``.

    ``key_ring``: trusted keys (and revocations) for detached file signatures. ``certificates`` +
    ``certificate_source``: code-signing certificates named by ``Signature.certificate_ref`` (AWS
    ``certfile``), looked up as PEM/DER bytes and chained to the verifier's roots. ``rollback``:
    anti-rollback floor. ``device``: identity for compatibility checks. ``adu``: manifest verifier
    (default: Microsoft roots). ``require_signature``: every file must carry a signature (or be listed
    in a signed ADU manifest). ``allow_sha1``: accept ``sig-sha1-*`` (off by default). ``mcuboot``:
    files are MCUboot images, verified while they stream (hash, signature, policy, and the image's
    version and security counter against ``rollback``); ``mcuboot_files`` selects which files of a
    plan are images (default: all of them).
    """

    def __init__(
        self,
        *,
        key_ring: KeyRing | None = None,
        certificates: CertificateVerifier | None = None,
        certificate_source: Mapping[str, bytes] | CertificateSource | None = None,
        rollback: AntiRollbackPolicy | None = None,
        device: DeviceIdentity | None = None,
        adu: AduManifestVerifier | None = None,
        clock: Clock | None = None,
        require_signature: bool = False,
        allow_sha1: bool = False,
        mcuboot: McubootVerifier | None = None,
        mcuboot_files: Callable[[UpdatePlan, FileTarget], bool] | None = None,
    ) -> None:
        self._key_ring = key_ring if key_ring is not None else KeyRing()
        self._certificates = certificates
        if isinstance(certificate_source, Mapping):
            table = dict(certificate_source)
            self._certificate_source: CertificateSource | None = table.get
        else:
            self._certificate_source = certificate_source
        self._rollback = rollback
        self._device = device
        self._adu = adu
        self._clock = clock or SystemClock()
        self._require_signature = require_signature
        self._allow_sha1 = allow_sha1
        self._mcuboot = mcuboot
        self._mcuboot_files = mcuboot_files
        self._lock = threading.Lock()
        self._manifests: dict[str, AduManifest] = {}

    # --- before download -------------------------------------------------------------------------

    def check_plan(self, plan: UpdatePlan) -> None:
        """Refuse a plan before any byte is fetched; on success remember its verified ADU manifest."""
        attributes = plan.attributes
        if attributes.get(EXPIRES_KEY) is not None:
            check_expiry(attributes[EXPIRES_KEY], self._clock)
        if self._rollback is not None and plan.version is not None:
            self._rollback.check(plan.version, security_counter=_optional_int(attributes.get("security_counter")))
        if self._device is not None and attributes.get(COMPATIBILITY_KEY) is not None:
            check_compatibility(self._device, attributes[COMPATIBILITY_KEY], what=f"plan {plan.job_id}")
        manifest = self._verify_adu(plan)
        for target in plan.files:
            if self._is_image(plan, target):
                continue
            self._check_target_has_checks(target, manifest)
            for signature in target.integrity.signatures:
                self._scheme(signature)
        if manifest is not None:
            with self._lock:
                self._manifests[plan.job_id] = manifest

    def _verify_adu(self, plan: UpdatePlan) -> AduManifest | None:
        attributes = plan.attributes
        text = attributes.get(ADU_MANIFEST_KEY)
        signature = attributes.get(ADU_SIGNATURE_KEY)
        if text is None and signature is None:
            if plan.origin == "azure-adu":
                raise ManifestError(f"plan {plan.job_id}: a Device Update plan carries no signed manifest")
            return None
        if not isinstance(text, str) or not isinstance(signature, str):
            raise ManifestError(f"plan {plan.job_id}: {ADU_MANIFEST_KEY} and {ADU_SIGNATURE_KEY} must both be strings")
        verifier = self._adu or AduManifestVerifier()
        manifest = verifier.verify(text, signature)
        if self._device is not None:
            check_compatibility(
                self._device, manifest.compatibility, what=f"update {manifest.provider}/{manifest.name}"
            )
        for target in plan.files:
            entry = manifest.file_by_name(target.name)
            if entry is None:
                raise ManifestError(f"file {target.name!r:.80} is not listed in the signed manifest")
            if entry.size != target.size:
                raise SizeMismatchError(
                    f"file {target.name!r:.80}: plan says {target.size} bytes, signed manifest says {entry.size}"
                )
        return manifest

    def _is_image(self, plan: UpdatePlan, target: FileTarget) -> bool:
        if self._mcuboot is None:
            return False
        return self._mcuboot_files is None or self._mcuboot_files(plan, target)

    def _check_target_has_checks(self, target: FileTarget, manifest: AduManifest | None) -> None:
        integrity = target.integrity
        signed = bool(integrity.signatures) or manifest is not None
        if self._require_signature and not signed:
            raise SignatureInvalidError(f"file {target.name!r:.80} is not signed; unsigned files are refused")
        if not (signed or integrity.digests or integrity.crc16_xmodem is not None):
            raise DigestMismatchError(f"file {target.name!r:.80} has nothing to verify it against")

    def _scheme(self, signature: Signature) -> SignatureScheme:
        return scheme_from_names(signature.hash_algorithm, signature.signature_algorithm, allow_sha1=self._allow_sha1)

    # --- while downloading -----------------------------------------------------------------------

    def begin(self, plan: UpdatePlan, target: FileTarget) -> IncrementalVerifier:
        """A checker for ``target``: exact size, digests, CRC, manifest hash and signatures."""
        integrity = target.integrity
        digests = dict(integrity.digests)
        with self._lock:
            manifest = self._manifests.get(plan.job_id)
        wants_manifest = ADU_MANIFEST_KEY in plan.attributes or plan.origin == "azure-adu"
        if manifest is not None and manifest.raw != plan.attributes.get(ADU_MANIFEST_KEY):
            manifest = None  # verified for another version of this job: never reuse it
        if manifest is None and wants_manifest:
            self.check_plan(plan)
            with self._lock:
                manifest = self._manifests.get(plan.job_id)
        if manifest is not None:
            entry = manifest.file_by_name(target.name)
            if entry is None:
                raise ManifestError(f"file {target.name!r:.80} is not listed in the signed manifest")
            if "sha256" in {k.lower().replace("-", "") for k in digests} and _digest(digests, "sha256") != entry.sha256:
                raise DigestMismatchError(f"file {target.name!r:.80}: plan and signed manifest disagree on sha256")
            digests["sha256"] = entry.sha256
        checks = []
        compute: list[str] = []
        for signature in integrity.signatures:
            scheme = self._scheme(signature)
            compute.append(scheme.hash)
            checks.append(self._signature_check(target, signature, scheme))
        image = self._is_image(plan, target)
        checker = FileChecker(
            target.size,
            digests=digests,
            crc16_xmodem=integrity.crc16_xmodem,
            compute=compute,
            final_checks=checks,
            allow_unchecked=image,
            name=target.name,
        )
        if not image:
            return checker
        assert self._mcuboot is not None
        return _ImageChecker(checker, self._mcuboot.begin(target.size, name=target.name), self._rollback)

    def _signature_check(
        self, target: FileTarget, signature: Signature, scheme: SignatureScheme
    ) -> Callable[[Mapping[str, bytes]], None]:
        def check(computed: Mapping[str, bytes]) -> None:
            digest = computed[scheme.hash]
            if signature.certificate_ref and self._certificates is not None and self._certificate_source:
                material = self._certificate_source(signature.certificate_ref)
                if material is not None:
                    key = self._certificates.verify(material)
                    self._key_ring.check_not_revoked(key)
                    verify_signature(key, signature.value, scheme, digest=digest)
                    _log.info("%s: signature verified with certificate %s", target.name, signature.certificate_ref)
                    return
                if not self._key_ring.keys():
                    raise UntrustedKeyError(f"code-signing certificate {signature.certificate_ref!r:.80} not found")
            trusted: TrustedKey = verify_any(self._key_ring.keys(), signature.value, scheme, digest=digest)
            _log.info("%s: signature verified with key %s", target.name, trusted.name or trusted.key_hash.hex()[:16])

        return check

    def forget(self, job_id: str) -> None:
        """Drop what was remembered about a finished or cancelled job."""
        with self._lock:
            self._manifests.pop(job_id, None)


class _ImageChecker:
    """Both the plan's file checks and the MCUboot image checks, then anti-rollback on the image."""

    def __init__(
        self, file_checker: FileChecker, image_checker: McubootStreamChecker, rollback: AntiRollbackPolicy | None
    ) -> None:
        self._file = file_checker
        self._image = image_checker
        self._rollback = rollback

    def update(self, data: bytes) -> None:
        self._file.update(data)
        self._image.update(data)

    def finish(self) -> None:
        self._file.finish()
        self._image.finish()
        result = self._image.result
        assert result is not None
        if self._rollback is not None:
            self._rollback.check(result.version, security_counter=result.security_counter)

    @property
    def image(self) -> VerifiedImage | None:
        """What the image check established (after ``finish``)."""
        return self._image.result


def _digest(digests: Mapping[str, bytes], wanted: str) -> bytes | None:
    for name, value in digests.items():
        if name.lower().replace("-", "") == wanted:
            return bytes(value)
    return None


def _optional_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None

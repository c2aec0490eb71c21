"""ota_verify: Verify.

Streaming digests and CRCs, signatures and code-signing certificates, MCUboot images (imgtool
compatible), Device Update manifest signatures (JWS), anti-rollback policy and the signing tools.
``PlanVerifier`` composes them into the ``Verifier`` an orchestrator uses; ``McubootVerifier`` is the
``ImageValidator`` a bootloader model uses.
"""

from ota_verify.adu import (
    MICROSOFT_ADU_ROOT_KEYS,
    AduFile,
    AduManifest,
    AduManifestVerifier,
    parse_adu_manifest,
    sign_adu_manifest,
)
from ota_verify.certificates import CertificateVerifier, ExpiryPolicy, load_certificates
from ota_verify.digests import Crc16Xmodem, Crc32, FileChecker, crc16_xmodem, normalize_hash_name, parse_crc16_text
from ota_verify.errors import (
    CertificateError,
    DependencyError,
    DigestMismatchError,
    DowngradeError,
    ImageFormatError,
    IncompatibleDeviceError,
    KeyFormatError,
    KeyRevokedError,
    MalformedInputError,
    ManifestError,
    PlanExpiredError,
    SignatureInvalidError,
    SizeMismatchError,
    UnsupportedAlgorithmError,
    UntrustedKeyError,
)
from ota_verify.keys import KeyRing, TrustedKey, key_hash, load_private_key, load_public_key
from ota_verify.mcuboot import (
    Dependency,
    McubootStreamChecker,
    McubootVerifier,
    McubootVersion,
    SignOptions,
    VerifiedImage,
    sign_image,
)
from ota_verify.policy import DeviceIdentity, check_compatibility, check_expiry
from ota_verify.rollback import AntiRollbackPolicy, RollbackFloor
from ota_verify.signatures import (
    SignatureAlgorithm,
    SignatureScheme,
    decode_base64,
    scheme_from_aws_key,
    scheme_from_names,
    verify_signature,
)
from ota_verify.verifier import ADU_MANIFEST_KEY, ADU_SIGNATURE_KEY, EXPIRES_KEY, PlanVerifier

__all__ = [
    "ADU_MANIFEST_KEY",
    "ADU_SIGNATURE_KEY",
    "EXPIRES_KEY",
    "MICROSOFT_ADU_ROOT_KEYS",
    "AduFile",
    "AduManifest",
    "AduManifestVerifier",
    "AntiRollbackPolicy",
    "CertificateError",
    "CertificateVerifier",
    "Crc16Xmodem",
    "Crc32",
    "Dependency",
    "DependencyError",
    "DeviceIdentity",
    "DigestMismatchError",
    "DowngradeError",
    "ExpiryPolicy",
    "FileChecker",
    "ImageFormatError",
    "IncompatibleDeviceError",
    "KeyFormatError",
    "KeyRevokedError",
    "KeyRing",
    "MalformedInputError",
    "ManifestError",
    "McubootStreamChecker",
    "McubootVerifier",
    "McubootVersion",
    "PlanExpiredError",
    "PlanVerifier",
    "RollbackFloor",
    "SignOptions",
    "SignatureAlgorithm",
    "SignatureInvalidError",
    "SignatureScheme",
    "SizeMismatchError",
    "TrustedKey",
    "UnsupportedAlgorithmError",
    "UntrustedKeyError",
    "VerifiedImage",
    "check_compatibility",
    "check_expiry",
    "crc16_xmodem",
    "decode_base64",
    "key_hash",
    "load_certificates",
    "load_private_key",
    "load_public_key",
    "normalize_hash_name",
    "parse_adu_manifest",
    "parse_crc16_text",
    "scheme_from_aws_key",
    "scheme_from_names",
    "sign_adu_manifest",
    "sign_image",
    "verify_signature",
]

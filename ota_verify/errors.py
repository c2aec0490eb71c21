"""Typed errors of the Verify phase, each with its own stable ``code``.

Everything that goes wrong while checking an update ends up as one of these (or another ``OtaError``);
no exception from ``cryptography``, ``json``, ``base64`` or ``struct`` reaches a caller untyped.
"""

from __future__ import annotations

from ota_core.errors import ConfigurationError, PolicyError, VerificationError

__all__ = [
    "CertificateError",
    "DependencyError",
    "DigestMismatchError",
    "DowngradeError",
    "ImageFormatError",
    "IncompatibleDeviceError",
    "KeyFormatError",
    "KeyRevokedError",
    "MalformedInputError",
    "ManifestError",
    "PlanExpiredError",
    "SignatureInvalidError",
    "SizeMismatchError",
    "UnsupportedAlgorithmError",
    "UntrustedKeyError",
]


class MalformedInputError(VerificationError):
    """Input that cannot even be decoded: bad base64, truncated structure, length running past the end."""

    code = "VERIFY_MALFORMED_INPUT"


class ImageFormatError(MalformedInputError):
    """An MCUboot image whose header or TLV areas are not well formed (or carry what the policy refuses)."""

    code = "VERIFY_IMAGE_FORMAT_INVALID"


class ManifestError(MalformedInputError):
    """A Device Update manifest or its JWS signature that is not well formed."""

    code = "VERIFY_MANIFEST_INVALID"


class DigestMismatchError(VerificationError):
    """A hash or CRC of the received bytes differs from the expected value."""

    code = "VERIFY_DIGEST_MISMATCH"


class SizeMismatchError(VerificationError):
    """More or fewer bytes arrived than the exact size that was announced."""

    code = "VERIFY_SIZE_MISMATCH"


class SignatureInvalidError(VerificationError):
    """A signature does not verify under the key it claims (or under any trusted key)."""

    code = "VERIFY_SIGNATURE_INVALID"


class UntrustedKeyError(VerificationError):
    """The data names or carries a key that is not in the trust store."""

    code = "VERIFY_KEY_UNTRUSTED"


class KeyRevokedError(UntrustedKeyError):
    """The signing key is on the revocation list."""

    code = "VERIFY_KEY_REVOKED"


class CertificateError(VerificationError):
    """A code-signing certificate that does not chain to a trusted root or is not fit for code signing."""

    code = "VERIFY_CERTIFICATE_INVALID"


class UnsupportedAlgorithmError(VerificationError):
    """A hash or signature algorithm this library does not accept."""

    code = "VERIFY_ALGORITHM_UNSUPPORTED"


class KeyFormatError(ConfigurationError):
    """Key or certificate material given to the library that is not a usable key (say, PEM that is no key)."""

    code = "VERIFY_KEY_FORMAT_INVALID"


class DowngradeError(PolicyError):
    """The update is older than (or, unless allowed, equal to) the minimum version the device accepts."""

    code = "POLICY_DOWNGRADE_REFUSED"


class PlanExpiredError(PolicyError):
    """The update plan carries an expiry time that has passed."""

    code = "POLICY_PLAN_EXPIRED"


class IncompatibleDeviceError(PolicyError):
    """The update is signed for another device class, vendor or model."""

    code = "POLICY_DEVICE_INCOMPATIBLE"


class DependencyError(PolicyError):
    """The image depends on another image version that the device does not have."""

    code = "POLICY_DEPENDENCY_UNMET"

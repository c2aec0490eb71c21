"""X.509 code-signing certificates chained to a configured trust store.

AWS job documents name a code-signing certificate (``certfile``) whose key made the file signature.
``CertificateVerifier`` accepts such a certificate only if it chains to a trusted root through CA
certificates, carries a key usage fit for signing and (if it has an extended key usage) code signing.
Validity dates are checked according to ``ExpiryPolicy``, because many devices boot with a wrong
clock; the default enforces dates only once the clock looks set (after ``plausible_after``).
"""

from __future__ import annotations

import datetime
import enum
import logging
from collections.abc import Iterable

import attrs
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.x509.oid import ExtendedKeyUsageOID

from ota_core.clock import Clock, SystemClock
from ota_core.errors import ConfigurationError
from ota_verify.errors import CertificateError, KeyFormatError, KeyRevokedError
from ota_verify.keys import KeyRing, PublicKey, _check_public

__all__ = [
    "DEFAULT_PLAUSIBLE_AFTER",
    "CertificateVerifier",
    "ExpiryPolicy",
    "load_certificates",
]

_log = logging.getLogger(__name__)

_MAX_CHAIN = 5

DEFAULT_PLAUSIBLE_AFTER = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
"""A device clock earlier than this is taken as "not set" by ``ExpiryPolicy.WHEN_CLOCK_PLAUSIBLE``."""


class ExpiryPolicy(enum.StrEnum):
    """How certificate validity dates are treated."""

    ENFORCE = "enforce"
    """Refuse a certificate outside its validity period, whatever the clock says."""
    WHEN_CLOCK_PLAUSIBLE = "when-clock-plausible"
    """Enforce dates when the clock is later than ``plausible_after``; otherwise log and skip (default)."""
    IGNORE = "ignore"
    """Never check dates (signature chain, key usage and revocation are still checked)."""


def load_certificates(data: bytes, *, source: str = "certificates") -> list[x509.Certificate]:
    """Load one or more certificates from PEM (a bundle) or a single DER certificate."""
    raw = bytes(data)
    try:
        if b"-----BEGIN" in raw:
            certificates = x509.load_pem_x509_certificates(raw)
        else:
            certificates = [x509.load_der_x509_certificate(raw)]
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise KeyFormatError(f"{source}: not a PEM/DER X.509 certificate ({error})") from error
    if not certificates:
        raise KeyFormatError(f"{source}: no certificate found")
    return certificates


def _extension(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.ExtensionType | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None
    except ValueError as error:  # duplicate or undecodable extension
        raise CertificateError(f"certificate {cert.subject.rfc4514_string()!r}: bad extensions ({error})") from error


@attrs.frozen
class _Policy:
    expiry: ExpiryPolicy
    plausible_after: datetime.datetime
    require_code_signing_eku: bool


class CertificateVerifier:
    """Checks code-signing certificates against trusted roots and returns the signing key.

    ``roots`` are trust anchors; ``intermediates`` are CA certificates that may complete a chain (they
    are not trusted by themselves). ``key_ring`` (optional) supplies the revocation list: a
    certificate whose key, or any of its issuers' keys, is revoked is refused.
    """

    def __init__(
        self,
        roots: Iterable[x509.Certificate],
        *,
        intermediates: Iterable[x509.Certificate] = (),
        expiry: ExpiryPolicy = ExpiryPolicy.WHEN_CLOCK_PLAUSIBLE,
        plausible_after: datetime.datetime = DEFAULT_PLAUSIBLE_AFTER,
        require_code_signing_eku: bool = False,
        clock: Clock | None = None,
        key_ring: KeyRing | None = None,
    ) -> None:
        self._roots = list(roots)
        if not self._roots:
            raise KeyFormatError("a certificate trust store needs at least one root certificate")
        self._intermediates = list(intermediates)
        try:
            policy = ExpiryPolicy(expiry)
        except ValueError as error:
            choices = ", ".join(p.value for p in ExpiryPolicy)
            raise ConfigurationError(f"unknown expiry policy {expiry!r}; choose one of {choices}") from error
        self._policy = _Policy(policy, plausible_after, require_code_signing_eku)
        self._clock = clock or SystemClock()
        self._key_ring = key_ring

    def verify(self, certificate: x509.Certificate | bytes, *, extra: Iterable[x509.Certificate] = ()) -> PublicKey:
        """Return the key of a valid code-signing ``certificate``; raise ``CertificateError`` otherwise.

        ``certificate`` may be PEM/DER bytes; a PEM bundle is read as leaf first, then intermediates.
        """
        chain_pool = list(extra) + self._intermediates
        if isinstance(certificate, bytes | bytearray):
            loaded = load_certificates(bytes(certificate), source="code-signing certificate")
            leaf, chain_pool = loaded[0], loaded[1:] + chain_pool
        else:
            leaf = certificate
        now = self._clock.now()
        self._check_leaf_usage(leaf)
        self._check_dates(leaf, now)
        current = leaf
        for _depth in range(_MAX_CHAIN):
            self._check_revoked(current)
            root = self._issuer_in(current, self._roots)
            if root is not None:
                self._check_dates(root, now)
                self._check_revoked(root)
                try:
                    key = _check_public(leaf.public_key(), "code-signing certificate")
                except KeyFormatError as error:
                    raise CertificateError(error.message) from error
                _log.debug(
                    "code-signing certificate %s chains to %s",
                    leaf.subject.rfc4514_string(),
                    root.subject.rfc4514_string(),
                )
                return key
            issuer = self._issuer_in(current, chain_pool)
            if issuer is None:
                raise CertificateError(
                    f"certificate {current.subject.rfc4514_string()!r} does not chain to a trusted root"
                )
            self._check_ca(issuer)
            self._check_dates(issuer, now)
            current = issuer
        raise CertificateError(f"certificate chain longer than {_MAX_CHAIN}")

    # --- checks ----------------------------------------------------------------------------------

    @staticmethod
    def _issuer_in(cert: x509.Certificate, candidates: Iterable[x509.Certificate]) -> x509.Certificate | None:
        for candidate in candidates:
            if candidate.subject != cert.issuer:
                continue
            try:
                cert.verify_directly_issued_by(candidate)
            except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
                continue
            return candidate
        return None

    def _check_leaf_usage(self, cert: x509.Certificate) -> None:
        name = cert.subject.rfc4514_string()
        usage = _extension(cert, x509.KeyUsage)
        if isinstance(usage, x509.KeyUsage) and not usage.digital_signature:
            raise CertificateError(f"certificate {name!r} is not allowed to sign (key usage)")
        eku = _extension(cert, x509.ExtendedKeyUsage)
        if isinstance(eku, x509.ExtendedKeyUsage):
            if ExtendedKeyUsageOID.CODE_SIGNING not in eku and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in eku:
                raise CertificateError(f"certificate {name!r} is not a code-signing certificate (extended key usage)")
        elif self._policy.require_code_signing_eku:
            raise CertificateError(f"certificate {name!r} has no code-signing extended key usage")

    @staticmethod
    def _check_ca(cert: x509.Certificate) -> None:
        name = cert.subject.rfc4514_string()
        constraints = _extension(cert, x509.BasicConstraints)
        if not isinstance(constraints, x509.BasicConstraints) or not constraints.ca:
            raise CertificateError(f"issuer {name!r} is not a CA certificate")
        usage = _extension(cert, x509.KeyUsage)
        if isinstance(usage, x509.KeyUsage) and not usage.key_cert_sign:
            raise CertificateError(f"issuer {name!r} may not sign certificates (key usage)")

    def _check_dates(self, cert: x509.Certificate, now: datetime.datetime) -> None:
        policy = self._policy
        if policy.expiry is ExpiryPolicy.IGNORE:
            return
        name = cert.subject.rfc4514_string()
        if policy.expiry is ExpiryPolicy.WHEN_CLOCK_PLAUSIBLE and now < policy.plausible_after:
            _log.warning(
                "clock reads %s, before %s: validity of %r not checked",
                now.isoformat(),
                policy.plausible_after.date().isoformat(),
                name,
            )
            return
        if now < cert.not_valid_before_utc:
            raise CertificateError(f"certificate {name!r} is not valid before {cert.not_valid_before_utc.isoformat()}")
        if now > cert.not_valid_after_utc:
            raise CertificateError(f"certificate {name!r} expired on {cert.not_valid_after_utc.isoformat()}")

    def _check_revoked(self, cert: x509.Certificate) -> None:
        if self._key_ring is None:
            return
        try:
            key = _check_public(cert.public_key(), "certificate")
        except (KeyFormatError, ValueError, UnsupportedAlgorithm):
            return
        if self._key_ring.is_revoked(key):
            raise KeyRevokedError(f"certificate {cert.subject.rfc4514_string()!r} uses a revoked key")

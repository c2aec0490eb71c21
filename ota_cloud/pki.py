"""A throw-away PKI for local clouds and tests: a CA, a localhost server certificate, client certificates,
and an unrelated second CA whose certificates every local server must reject."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CertificateFiles", "LocalPki"]

_VALIDITY = datetime.timedelta(days=30)


@attrs.frozen
class CertificateFiles:
    """A certificate and its private key, as PEM files."""

    cert_file: Path
    key_file: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "modular-ota local PKI"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)


class _Authority:
    """A certificate authority that can issue leaf certificates."""

    def __init__(self, common_name: str, directory: Path, stem: str) -> None:
        now = datetime.datetime.now(datetime.UTC)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = _name(common_name)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        self.cert_file = directory / f"{stem}.crt"
        self.cert_file.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        _write_key(self.key, directory / f"{stem}.key")

    @classmethod
    def load(cls, directory: Path, stem: str) -> _Authority:
        """Load an authority written earlier by this module."""
        authority = cls.__new__(cls)
        key = serialization.load_pem_private_key((directory / f"{stem}.key").read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise TypeError("the CA key is not an EC key")
        authority.key = key
        authority.certificate = x509.load_pem_x509_certificate((directory / f"{stem}.crt").read_bytes())
        authority.name = authority.certificate.subject
        authority.cert_file = directory / f"{stem}.crt"
        return authority

    def issue(
        self, common_name: str, directory: Path, stem: str, *, server: bool, hosts: tuple[str, ...] = ()
    ) -> CertificateFiles:
        now = datetime.datetime.now(datetime.UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
        )
        if hosts:
            names: list[x509.GeneralName] = []
            for host in hosts:
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(host)))
                except ValueError:
                    names.append(x509.DNSName(host))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        certificate = builder.sign(self.key, hashes.SHA256())
        files = CertificateFiles(cert_file=directory / f"{stem}.crt", key_file=directory / f"{stem}.key")
        files.cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        _write_key(key, files.key_file)
        return files


@attrs.frozen
class LocalPki:
    """Certificates for a local broker or HTTP server with mutual TLS, written into one directory."""

    directory: Path
    ca_file: Path
    server: CertificateFiles
    client: CertificateFiles
    rogue_ca_file: Path
    rogue_client: CertificateFiles

    @classmethod
    def create(cls, directory: str | Path, *, client_name: str = "device-1") -> LocalPki:
        """Generate a CA, a server certificate for localhost/127.0.0.1, a client certificate and a rogue pair."""
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        authority = _Authority("modular-ota local CA", folder, "ca")
        rogue = _Authority("unrelated CA", folder, "rogue-ca")
        return cls(
            directory=folder,
            ca_file=authority.cert_file,
            server=authority.issue("localhost", folder, "server", server=True, hosts=("localhost", "127.0.0.1")),
            client=authority.issue(client_name, folder, "client", server=False),
            rogue_ca_file=rogue.cert_file,
            rogue_client=rogue.issue(client_name, folder, "rogue-client", server=False),
        )

    def issue_client(self, common_name: str) -> CertificateFiles:
        """Issue one more client certificate from this PKI's CA (for fleets of simulated devices)."""
        authority = _Authority.load(self.directory, "ca")
        stem = "client-" + "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in common_name)
        return authority.issue(common_name, self.directory, stem, server=False)

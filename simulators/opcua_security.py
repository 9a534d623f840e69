"""Certificates and client trust of the OPC UA simulator's Basic256Sha256 endpoints.

No asyncua server state here: :class:`simulators.opcua_sim.OpcUaSimulator` keeps the
trusted fingerprints and ``cert_dir`` and hands them to :func:`check_client`, which asyncua
calls (through the simulator) at CreateSession with the client's certificate.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import ipaddress
import logging
from collections.abc import Sequence
from pathlib import Path

from asyncua import ua
from asyncua.common.utils import ServiceError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "check_client",
    "fingerprint",
    "load_certificate",
    "make_certificate",
    "server_credentials",
]

# The simulator's logger, as before the certificate code moved here.
_log = logging.getLogger("simulators.opcua_sim")


def make_certificate(
    application_uri: str,
    common_name: str,
    *,
    server: bool,
    hosts: Sequence[str] = ("localhost", "127.0.0.1"),
    days: int = 3650,
) -> tuple[bytes, bytes]:
    """A self-signed OPC UA application instance certificate and its key.

    Returns (certificate DER, private key PEM).  RSA 2048, SHA-256; subjectAltName holds
    ``application_uri`` and ``hosts`` (IP addresses as IP entries, names as DNS entries).
    Like the certificates asyncua itself makes, it is marked as a CA (it signs itself), so
    trust stores that use it as a trust anchor accept it.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "edge-agent"),
        ]
    )
    alt_names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(application_uri)]
    for host in hosts:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt_names.append(x509.DNSName(host))
    now = dt.datetime.now(dt.UTC)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=True,
                data_encipherment=True,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([usage, ExtendedKeyUsageOID.CLIENT_AUTH] if server else [usage]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return certificate.public_bytes(serialization.Encoding.DER), key_pem


def load_certificate(data: bytes) -> x509.Certificate:
    """A certificate from PEM or DER bytes."""
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def fingerprint(certificate: x509.Certificate) -> bytes:
    """SHA-256 of the DER encoding: how trusted client certificates are recognised."""
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).digest()


def _directory_fingerprints(directory: Path) -> set[bytes]:
    """Fingerprints of the certificates (*.der, *.pem, *.crt) in ``directory``."""
    found: set[bytes] = set()
    if not directory.is_dir():
        return found
    for path in directory.iterdir():
        if path.suffix.lower() in (".der", ".pem", ".crt") and path.is_file():
            try:
                found.add(fingerprint(load_certificate(path.read_bytes())))
            except ValueError:
                _log.warning("not a certificate, ignored: %s", path)
    return found


def server_credentials(
    cert_dir: Path | None, application_uri: str, common_name: str
) -> tuple[bytes, bytes]:
    """Reuse the certificate in cert_dir, or make one (and save it there)."""
    if cert_dir is None:
        return make_certificate(application_uri, common_name, server=True)
    cert_path = cert_dir / "server_cert.der"
    key_path = cert_dir / "private" / "server_key.pem"
    if cert_path.is_file() and key_path.is_file():
        return cert_path.read_bytes(), key_path.read_bytes()
    der, key = make_certificate(application_uri, common_name, server=True)
    (cert_dir / "private").mkdir(parents=True, exist_ok=True)
    (cert_dir / "trusted").mkdir(exist_ok=True)
    key_path.write_bytes(key)
    key_path.chmod(0o600)
    cert_path.write_bytes(der)
    pem = x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
    (cert_dir / "server_cert.pem").write_bytes(pem)
    return der, key


async def check_client(
    certificate: x509.Certificate,
    description: ua.ApplicationDescription,
    trusted: set[bytes],
    cert_dir: Path | None,
) -> None:
    """Accept a client certificate in date whose fingerprint is in ``trusted`` or in
    ``cert_dir/trusted``; else raise ServiceError (the client gets the status code)."""
    now = dt.datetime.now(dt.UTC)
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise ServiceError(ua.StatusCodes.BadCertificateTimeInvalid)
    found = fingerprint(certificate)
    if found in trusted:
        return
    if cert_dir is not None:
        in_dir = await asyncio.to_thread(_directory_fingerprints, cert_dir / "trusted")
        if found in in_dir:
            return
        await asyncio.to_thread(_keep_rejected, cert_dir, certificate)
    _log.info("refused untrusted client certificate of %s", description.ApplicationUri)
    raise ServiceError(ua.StatusCodes.BadCertificateUntrusted)


def _keep_rejected(cert_dir: Path, certificate: x509.Certificate) -> None:
    """Save a refused certificate in cert_dir/rejected (move it to trusted/ to accept)."""
    rejected = cert_dir / "rejected"
    rejected.mkdir(parents=True, exist_ok=True)
    name = fingerprint(certificate).hex()[:16] + ".der"
    (rejected / name).write_bytes(certificate.public_bytes(serialization.Encoding.DER))

"""A self-signed OPC UA application instance certificate for this gateway (Part 6, 6.2.2).

OPC UA servers identify a client by its certificate, and check that the certificate names the
client's application URI in its SubjectAltName (the driver reads the URI back from there).
RSA 2048 with SHA-256 suits Basic256Sha256, Aes128_Sha256_RsaOaep and Aes256_Sha256_RsaPss.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERT_NAME = "edge-agent-cert.der"
KEY_NAME = "edge-agent-key.pem"
_BACKDATE = dt.timedelta(days=1)  # a gateway whose clock runs a little late still accepts it


def make_client_certificate(
    out_dir: Path,
    application_uri: str,
    hostname: str,
    *,
    days: int = 5 * 365,
    overwrite: bool = False,
) -> tuple[Path, Path]:
    """Write a new key and self-signed certificate into `out_dir`; return (cert.der, key.pem).

    The key is written with mode 0600. Existing files are kept (FileExistsError) unless
    `overwrite`: servers that trust the old certificate would refuse the new one.
    """
    cert_path, key_path = out_dir / CERT_NAME, out_dir / KEY_NAME
    if not overwrite:
        for path in (cert_path, key_path):
            if path.exists():
                raise FileExistsError(f"{path} exists")
    out_dir.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, f"edge-agent@{hostname}"[:64]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "edge-agent"),
        ]
    )
    san: list[x509.GeneralName] = [x509.UniformResourceIdentifier(application_uri)]
    try:
        san.append(x509.IPAddress(ipaddress.ip_address(hostname)))
    except ValueError:
        san.append(x509.DNSName(hostname))
    now = dt.datetime.now(dt.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=True,
                data_encipherment=True,
                key_agreement=False,
                key_cert_sign=True,  # self-signed: it signs itself (Part 6, table 27)
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # never world-readable
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return cert_path, key_path

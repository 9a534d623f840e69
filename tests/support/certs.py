"""A throw-away PKI for TLS tests, generated with the ``cryptography`` package.

Layout (all PEM, written into the directory given to :func:`make_test_pki`):

* ``ca.pem`` / ``ca.key`` - the test CA the broker and clients trust;
* ``server.pem`` / ``server.key`` - CN=localhost, SAN DNS:localhost and
  IP:127.0.0.1, serverAuth, signed by the test CA;
* ``client.pem`` / ``client.key`` - CN=edge-test-client, clientAuth, signed by
  the test CA (for mutual TLS);
* ``wrong-ca.pem`` - an unrelated CA: trusting it instead of the test CA must
  make server verification fail;
* ``rogue-client.pem`` / ``rogue-client.key`` - a client certificate issued by
  the wrong CA, which a mutual-TLS broker must refuse.

Keys are EC P-256 (mosquitto 2.0.11 / OpenSSL accept them).  Certificates carry
Subject/Authority Key Identifiers and critical CA basic constraints so they
also pass OpenSSL's strict X.509 checks (``VERIFY_X509_STRICT``, which newer
Pythons enable by default).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Backdate validity so small clock differences never make a fresh cert "not yet valid".
_BACKDATE = dt.timedelta(days=1)
_LIFETIME = dt.timedelta(days=30)


@dataclass(frozen=True)
class CertBundle:
    """Paths of the PEM files produced by :func:`make_test_pki`."""

    ca_file: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    wrong_ca_file: Path
    rogue_client_cert: Path
    rogue_client_key: Path


@dataclass(frozen=True)
class _Issuer:
    name: x509.Name
    key: ec.EllipticCurvePrivateKey


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "edge-agent tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _LIFETIME)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _authority_key_id(issuer_key: ec.EllipticCurvePrivateKey) -> x509.AuthorityKeyIdentifier:
    return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key())


def _make_ca(common_name: str) -> tuple[_Issuer, x509.Certificate]:
    key = _new_key()
    name = _name(common_name)
    cert = (
        _builder(name, name, key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
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
        .add_extension(_authority_key_id(key), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _Issuer(name, key), cert


def _make_leaf(
    issuer: _Issuer,
    common_name: str,
    usage: x509.ObjectIdentifier,
    san: list[x509.GeneralName] | None = None,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = _new_key()
    builder = (
        _builder(_name(common_name), issuer.name, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(_authority_key_id(issuer.key), critical=False)
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return key, builder.sign(issuer.key, hashes.SHA256())


def _write_cert(path: Path, cert: x509.Certificate) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Create with 0600 from the start: the key never exists world-readable.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return path


def make_test_pki(directory: str | os.PathLike[str]) -> CertBundle:
    """Generate the test PKI into ``directory`` (created if missing) and return its paths."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)

    ca, ca_cert = _make_ca("edge-agent test CA")
    wrong_ca, wrong_ca_cert = _make_ca("edge-agent WRONG test CA")

    server_key, server_cert = _make_leaf(
        ca,
        "localhost",
        ExtendedKeyUsageOID.SERVER_AUTH,
        san=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
    )
    client_auth = ExtendedKeyUsageOID.CLIENT_AUTH
    client_key, client_cert = _make_leaf(ca, "edge-test-client", client_auth)
    rogue_key, rogue_cert = _make_leaf(wrong_ca, "edge-test-rogue-client", client_auth)

    _write_key(out / "ca.key", ca.key)
    return CertBundle(
        ca_file=_write_cert(out / "ca.pem", ca_cert),
        server_cert=_write_cert(out / "server.pem", server_cert),
        server_key=_write_key(out / "server.key", server_key),
        client_cert=_write_cert(out / "client.pem", client_cert),
        client_key=_write_key(out / "client.key", client_key),
        wrong_ca_file=_write_cert(out / "wrong-ca.pem", wrong_ca_cert),
        rogue_client_cert=_write_cert(out / "rogue-client.pem", rogue_cert),
        rogue_client_key=_write_key(out / "rogue-client.key", rogue_key),
    )


def make_server_cert(pki: CertBundle, name: str) -> tuple[Path, Path]:
    """Another server certificate from the test CA, valid for DNS name `name` only: for
    checking that a client verifies the host name, not just the signature."""
    ca_key = serialization.load_pem_private_key(
        (pki.ca_file.parent / "ca.key").read_bytes(), password=None
    )
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    ca_cert = x509.load_pem_x509_certificate(pki.ca_file.read_bytes())
    issuer = _Issuer(ca_cert.subject, ca_key)
    key, cert = _make_leaf(issuer, name, ExtendedKeyUsageOID.SERVER_AUTH, san=[x509.DNSName(name)])
    out = pki.ca_file.parent
    return _write_cert(out / f"server-{name}.pem", cert), _write_key(
        out / f"server-{name}.key", key
    )


def self_signed_rsa(
    directory: Path, common_name: str, uri: str, *, server: bool = False, stem: str = "cert"
) -> tuple[Path, Path]:
    """An OPC UA style self-signed RSA 2048 certificate (DER, `<stem>.der`) and its key
    (PEM, `<stem>-key.pem`), with the application URI in its SubjectAltName, as a
    third-party server or client makes one (not `edge-agent certs`)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    san: list[x509.GeneralName] = [x509.UniformResourceIdentifier(uri)]
    if server:
        san.append(x509.DNSName("localhost"))
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _LIFETIME)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
    )
    if server:
        usage = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])
        builder = builder.add_extension(usage, critical=False)
    cert = builder.sign(key, hashes.SHA256())
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{stem}.der", directory / f"{stem}-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path

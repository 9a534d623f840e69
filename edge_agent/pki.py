"""Certificates and private keys read from files (cryptography only, no asyncua): for the
OPC UA driver's security and for `edge-agent check`, which reports a key that does not
belong to its certificate before anything connects."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes


class KeyPairError(ValueError):
    """A certificate or key that cannot serve; `key` names the config key to fix."""

    def __init__(self, message: str, key: Literal["certificate", "private_key"]) -> None:
        super().__init__(message)
        self.key = key


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """PEM (one or several certificates) or DER."""
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificates(data)
    return [x509.load_der_x509_certificate(data)]


def load_key_pair(certificate: Path, private_key: Path) -> tuple[x509.Certificate, PrivateKeyTypes]:
    """The first certificate in `certificate` and the unencrypted key that goes with it."""
    cert_data, key_data = _read(certificate, "certificate"), _read(private_key, "private_key")
    try:
        cert = load_certificates(cert_data)[0]
    except (ValueError, IndexError) as err:
        raise KeyPairError(f"{certificate} is not a certificate: {err}", "certificate") from err
    try:
        key = (
            serialization.load_pem_private_key(key_data, password=None)
            if b"-----BEGIN" in key_data
            else serialization.load_der_private_key(key_data, password=None)
        )
    except (ValueError, TypeError) as err:
        raise KeyPairError(
            f"{private_key} is not an unencrypted private key (PEM or DER): {err}", "private_key"
        ) from err
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if key.public_key().public_bytes(*spki) != cert.public_key().public_bytes(*spki):
        raise KeyPairError(
            f"{private_key} is not the key of certificate {certificate}: give the key made "
            "with it (edge-agent certs opcua writes the two together)",
            "private_key",
        )
    return cert, key


def _read(path: Path, key: Literal["certificate", "private_key"]) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise KeyPairError(
            f"cannot read {path}: {err.strerror or err}: the agent's user must be able to "
            "read it (as a service: chown edge-agent: FILE)",
            key,
        ) from err

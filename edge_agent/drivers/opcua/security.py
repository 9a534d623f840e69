"""OPC UA security: this client's identity, and which server certificates it accepts.

asyncua, given no server certificate, fetches one from the server's unauthenticated endpoint
list and trusts it blindly. The agent does not: in Sign and SignAndEncrypt it fetches the
endpoints, checks the certificate of the matching endpoint against `trusted_servers` (a
directory of .der/.pem/.crt/.cer files, or one file) and refuses it otherwise, before a
secure channel is opened or a password sent. A certificate is trusted when it is one of those
files, or is issued by one of them that is a CA; either way it must be inside its validity
period. The certificate is then pinned: asyncua encrypts the channel's opening request to it
and verifies the server's answer with it, and refuses a session whose certificate differs.

The trust files are read at every connect, so copying a certificate in takes effect at the
runner's next reconnect attempt, with no restart. A refused certificate is saved to
`<parent of trusted_servers>/rejected/` for inspection; where that cannot be written (under
systemd's ProtectSystem=strict, unless the unit lists it in ReadWritePaths), to
`$STATE_DIRECTORY/rejected-servers/`, else to the temporary directory.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from asyncua import Client, ua
from asyncua.crypto import security_policies as sp
from asyncua.crypto.uacrypto import CertProperties
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from ...config.opcua import OpcUaSecurity
from ...pki import KeyPairError, load_certificates, load_key_pair
from ..base import DeviceUnavailable

log = logging.getLogger(__name__)

POLICIES: dict[str, type[sp.SecurityPolicy]] = {
    "Basic256Sha256": sp.SecurityPolicyBasic256Sha256,
    "Aes128_Sha256_RsaOaep": sp.SecurityPolicyAes128Sha256RsaOaep,
    "Aes256_Sha256_RsaPss": sp.SecurityPolicyAes256Sha256RsaPss,
}
MODES = {
    "None": ua.MessageSecurityMode.None_,
    "Sign": ua.MessageSecurityMode.Sign,
    "SignAndEncrypt": ua.MessageSecurityMode.SignAndEncrypt,
}
_STRING_NAMES = {  # asyncua's names in set_security_string
    "Basic256Sha256": "Basic256Sha256",
    "Aes128_Sha256_RsaOaep": "Aes128Sha256RsaOaep",
    "Aes256_Sha256_RsaPss": "Aes256Sha256RsaPss",
}
_CERT_SUFFIXES = {".der", ".pem", ".crt", ".cer"}


class SecurityRejected(DeviceUnavailable):
    """The two sides cannot agree on security (no such endpoint, our certificate refused)."""

    code = "security_rejected"


class ServerNotTrusted(SecurityRejected):
    """The server's certificate is not in trusted_servers: the operator must decide."""

    code = "untrusted_server"


@dataclass(frozen=True, slots=True)
class ClientIdentity:
    certificate_der: bytes
    private_key_pem: bytes
    application_uri: str


def security_string(sec: OpcUaSecurity) -> str:
    """The `Policy,Mode,certificate,private_key` string asyncua's set_security_string takes
    (for logs and for tools; the driver itself pins the server certificate, which the string
    form cannot express safely). Empty for no security."""
    if sec.mode == "None":
        return ""
    return f"{_STRING_NAMES[sec.policy]},{sec.mode},{sec.certificate},{sec.private_key}"


def thumbprint(cert: x509.Certificate) -> str:
    """The SHA-1 thumbprint OPC UA tools show (UaExpert, server PKI folders), in hex."""
    return cert.fingerprint(hashes.SHA1()).hex().upper()  # an identifier, not a MAC


def trusted_certificates(location: Path) -> list[x509.Certificate]:
    """Every readable certificate in a directory (not recursive), or in one file."""
    files = (
        sorted(p for p in location.iterdir() if p.suffix.lower() in _CERT_SUFFIXES)
        if location.is_dir()
        else [location]
    )
    out: list[x509.Certificate] = []
    for path in files:
        try:
            out.extend(load_certificates(path.read_bytes()))
        except (OSError, ValueError) as err:
            log.warning("ignoring %s in trusted_servers: not a certificate (%s)", path, err)
    return out


def load_identity(sec: OpcUaSecurity) -> ClientIdentity:
    """This client's certificate and key, with the application URI its certificate names."""
    if sec.certificate is None or sec.private_key is None:  # the config refuses this first
        raise SecurityRejected("Sign and SignAndEncrypt need certificate and private_key")
    try:
        cert, key = load_key_pair(sec.certificate, sec.private_key)
    except KeyPairError as err:
        raise SecurityRejected(str(err)) from err
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    except x509.ExtensionNotFound:
        uris = []
    if not uris:
        raise SecurityRejected(
            f"{sec.certificate} has no application URI in its SubjectAltName, which OPC UA "
            "requires: make a certificate with: edge-agent certs opcua --out DIR"
        )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return ClientIdentity(cert.public_bytes(serialization.Encoding.DER), pem, uris[0])


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        if not ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            return False
        cert.verify_directly_issued_by(ca)
    except (x509.ExtensionNotFound, ValueError, TypeError, InvalidSignature):
        return False
    return True


def _describe(cert: x509.Certificate) -> str:
    return f"thumbprint {thumbprint(cert)}, subject {cert.subject.rfc4514_string()}"


def _save_rejected(cert: x509.Certificate, trusted: Path) -> str:
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(cn[0].value) if cn else "server").strip("_")
    name = f"{stem or 'server'}-{thumbprint(cert)[:16]}.der"
    der = cert.public_bytes(serialization.Encoding.DER)
    errors = []
    folders = [trusted.parent / "rejected"]
    if os.environ.get("STATE_DIRECTORY"):  # systemd's StateDirectory: writable, persistent
        folders.append(Path(os.environ["STATE_DIRECTORY"].split(":")[0]) / "rejected-servers")
    folders.append(Path(tempfile.gettempdir()) / "edge-agent-pki")
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(der)
        except OSError as err:
            errors.append(str(err))
            continue
        return f"it was saved to {folder / name} for you to inspect"
    return f"it could not be saved for inspection: {'; '.join(errors)}"


def first_certificate(der: bytes) -> x509.Certificate:
    """The first certificate of a DER blob: servers may send their chain after it."""
    if len(der) < 2 or der[0] != 0x30:  # an ASN.1 SEQUENCE
        raise ValueError("not a DER certificate")
    size, start = der[1], 2
    if size & 0x80:  # long form: the low bits count the length bytes that follow
        start = 2 + (size & 0x7F)
        size = int.from_bytes(der[2:start], "big")
    return x509.load_der_x509_certificate(der[: start + size])


def verify_server_certificate(der: bytes, endpoint: str, trusted: Path) -> x509.Certificate:
    """Return the server's certificate if `trusted` accepts it; raise ServerNotTrusted if not."""
    if not der:
        raise ServerNotTrusted(f"{endpoint} sent no certificate for a secure endpoint")
    try:
        cert = first_certificate(der)
    except ValueError as err:
        raise ServerNotTrusted(f"{endpoint} sent a malformed certificate: {err}") from err
    now = datetime.now(UTC)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise ServerNotTrusted(
            f"server certificate of {endpoint} ({_describe(cert)}) is valid only from "
            f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} to "
            f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC: the server needs a new "
            "certificate (or this gateway a correct clock)"
        )
    known = trusted_certificates(trusted) if trusted.exists() else []
    if any(c == cert or _issued_by(cert, c) for c in known):
        return cert
    saved = _save_rejected(cert, trusted)
    where = (
        f"copy it into {trusted}/"
        if trusted.is_dir() or not trusted.exists()
        else f"add it to {trusted} (or make trusted_servers a directory and copy it there)"
    )
    raise ServerNotTrusted(
        f"server certificate of {endpoint} ({_describe(cert)}) is not trusted: {where} ({saved})"
    )


async def apply_security(client: Client, sec: OpcUaSecurity, endpoint: str) -> None:
    """Configure `client` for `sec`; in Sign/SignAndEncrypt, pin a trusted server certificate.

    Talks to the server (GetEndpoints on an unsecured channel) and raises asyncua/OS errors
    for the caller to translate; raises SecurityRejected / ServerNotTrusted itself.
    """
    if sec.mode == "None":
        return
    assert sec.trusted_servers is not None  # the config checks it
    identity = load_identity(sec)
    policy, mode = POLICIES[sec.policy], MODES[sec.mode]
    endpoints = await client.connect_and_get_server_endpoints()
    chosen = [
        ep for ep in endpoints if ep.SecurityMode == mode and ep.SecurityPolicyUri == policy.URI
    ]
    if not chosen:
        offered = sorted(
            {
                f"{ep.SecurityPolicyUri.rsplit('#', 1)[-1]}/{ep.SecurityMode.name.rstrip('_')}"
                for ep in endpoints
            }
        )
        raise SecurityRejected(
            f"{endpoint} offers no endpoint with {sec.policy}/{sec.mode}; it offers: "
            + ", ".join(offered)
        )
    der = chosen[0].ServerCertificate or b""
    cert = verify_server_certificate(der, endpoint, sec.trusted_servers)
    client.application_uri = identity.application_uri
    await client.set_security(
        policy,
        CertProperties(identity.certificate_der, extension="der"),
        CertProperties(identity.private_key_pem, extension="pem"),
        server_certificate=CertProperties(
            cert.public_bytes(serialization.Encoding.DER), extension="der"
        ),
        mode=mode,
    )

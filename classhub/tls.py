"""HTTPS for the room: given certificates, or a small CA that classhub makes for the room's network.

    classhub tls init --hostname jupyter.salle-ia.chu.local --hostname 10.20.0.5

writes, under `<state>/tls/`: `ca.pem` (the room's CA, 10 years; install it once in the room's
browsers or the hospital's trust store), `ca-key.pem` (0600; it signs nothing else), and a server
certificate for those names and addresses, `server.pem` (with the CA in its chain) and
`server-key.pem` (0600), valid 825 days (what browsers accept). Run it again to add a name or
renew: the CA is kept, the server certificate replaced. The proxy serves HTTPS with it when the
site says `tls.enabled: true` (and `hub.bind_url` is `https://`).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from classhub.errors import ClasshubError
from classhub.state import StateDir

CA_DAYS = 3650
SERVER_DAYS = 825


@dataclass(frozen=True)
class TlsFiles:
    certificate: Path
    key: Path
    ca: Path | None  # the room's CA, when classhub made the certificate


def folder(state: StateDir) -> Path:
    return state.root / "tls"


def _write_key(path: Path, key) -> None:
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "classhub"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _ca(state: StateDir, site_name: str):
    tls = folder(state)
    cert_path, key_path = tls / "ca.pem", tls / "ca-key.pem"
    if cert_path.exists() and key_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        return x509.load_pem_x509_certificate(cert_path.read_bytes()), key
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    name = _name(f"classhub {site_name} room CA")
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                         crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    _write_key(key_path, key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _alt_name(value: str):
    try:
        return x509.IPAddress(ipaddress.ip_address(value))
    except ValueError:
        return x509.DNSName(value)


def init(state: StateDir, site_name: str, hostnames: list[str]) -> TlsFiles:
    if not hostnames:
        raise ClasshubError("name at least one --hostname (DNS name or IP address) that "
                            "people type to reach the room")
    tls = folder(state)
    tls.mkdir(mode=0o700, parents=True, exist_ok=True)
    ca_cert, ca_key = _ca(state, site_name)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(hostnames[0]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
            .add_extension(x509.SubjectAlternativeName([_alt_name(h) for h in hostnames]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    _write_key(tls / "server-key.pem", key)
    (tls / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM)
                                     + ca_cert.public_bytes(serialization.Encoding.PEM))
    return TlsFiles(tls / "server.pem", tls / "server-key.pem", tls / "ca.pem")


def files(site, state: StateDir) -> TlsFiles | None:
    """The certificate the proxy serves, or None for plain HTTP (the embedded local mode)."""
    if not site.tls.enabled:
        return None
    if site.tls.certificate:
        return TlsFiles(Path(site.tls.certificate), Path(site.tls.key), None)
    made = TlsFiles(folder(state) / "server.pem", folder(state) / "server-key.pem",
                    folder(state) / "ca.pem")
    if not made.certificate.exists() or not made.key.exists():
        raise ClasshubError("tls.enabled is true but there is no certificate",
                            "give tls.certificate and tls.key, or run "
                            "`classhub tls init --hostname <the room's name>`")
    return made


SYSTEM_TRUST = Path("/etc/ssl/certs/ca-certificates.crt")  # Debian's, with the hospital's CAs


def trust(site, state: StateDir) -> str | bool:
    """What a client on this node trusts for the proxy's certificate: the room's CA when classhub
    made it, else the system's trust store (where a hospital installs its own CA;
    update-ca-certificates), never requests' bundled public CAs alone."""
    made = files(site, state)
    if made and made.ca:
        return str(made.ca)
    return str(SYSTEM_TRUST) if SYSTEM_TRUST.is_file() else True

"""HTTPS on a LAN without the internet: the box's own certificate authority and a server
certificate for its host name and addresses, or the site's own certificate (hub_cert, hub_key).

Students' browsers trust the box once they import its CA (`starbox hub ca` prints it). The
server certificate is made again when the machine's names or addresses change or it nears its end.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path

import psutil
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from starbox.errors import StarboxError
from starbox.settings import Settings

from ..paths import write_private
from .paths import hub_dir

CA_DAYS = 3650
SERVER_DAYS = 397  # what browsers accept for a server certificate
RENEW_DAYS = 30


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path
    ca: Path | None  # None: the site's own certificate, whose CA the site distributes


def tls_dir(settings: Settings) -> Path:
    return hub_dir(settings) / "tls"


def names() -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) the box answers to: its host names and every address it has."""
    dns = {"localhost", socket.gethostname()}
    try:
        dns.add(socket.getfqdn())
    except OSError:
        pass
    ips = {"127.0.0.1", "::1"}
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family in (socket.AF_INET, socket.AF_INET6):
                ips.add(a.address.split("%")[0])
    return sorted(n for n in dns if n), sorted(ips)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    write_private(path, pem.decode())  # 0600 from its first byte, swapped in whole


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    tmp = path.with_suffix(".part")
    tmp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    tmp.chmod(0o644)
    tmp.replace(path)


def _ensure_ca(folder: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_path, key_path = folder / "ca.pem", folder / "ca.key"
    if cert_path.exists() and key_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return x509.load_pem_x509_certificate(cert_path.read_bytes()), key
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Starbox local CA ({socket.gethostname()})")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )  # keyCertSign, cRLSign
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(key_path, key)
    _write_cert(cert_path, cert)
    return cert, key


def _current(cert_path: Path, dns: list[str], ips: list[str]) -> bool:
    """Whether the server certificate there names exactly these and is not near its end."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError):
        return False
    if cert.not_valid_after_utc - dt.datetime.now(dt.timezone.utc) < dt.timedelta(days=RENEW_DAYS):
        return False
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    have_dns = sorted(san.get_values_for_type(x509.DNSName))
    have_ips = sorted(str(i) for i in san.get_values_for_type(x509.IPAddress))
    return have_dns == dns and have_ips == sorted(str(ipaddress.ip_address(i)) for i in ips)


def ensure(settings: Settings) -> Certificate:
    """The certificate the public port serves."""
    if settings.hub_cert or settings.hub_key:
        site_cert, site_key = Path(settings.hub_cert), Path(settings.hub_key)
        for what, p in (("hub_cert", site_cert), ("hub_key", site_key)):
            if not p.is_file():
                raise StarboxError(f"the {what} setting names {p}, which is not a readable file")
        try:
            x509.load_pem_x509_certificate(site_cert.read_bytes())
        except ValueError:
            raise StarboxError(f"{site_cert} is not a PEM certificate") from None
        return Certificate(site_cert, site_key, None)
    folder = tls_dir(settings)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca_cert, ca_key = _ensure_ca(folder)
    dns, ips = names()
    cert_path, key_path = folder / "server.pem", folder / "server.key"
    if not (_current(cert_path, dns, ips) and key_path.exists()):
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.timezone.utc)
        san = [x509.DNSName(n) for n in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, socket.gethostname())]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        _write_key(key_path, key)
        # the chain: browsers that trust the CA verify the server with it
        tmp = cert_path.with_suffix(".part")
        tmp.write_bytes(
            cert.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(serialization.Encoding.PEM)
        )
        tmp.chmod(0o644)
        tmp.replace(cert_path)
    return Certificate(cert_path, key_path, folder / "ca.pem")


def ca_pem(settings: Settings) -> str:
    """The CA certificate students' browsers import (made if missing)."""
    cert = ensure(settings)
    if cert.ca is None:
        raise StarboxError(
            f"this box serves the site's own certificate ({cert.cert}); its CA comes from the site's admin"
        )
    return cert.ca.read_text()

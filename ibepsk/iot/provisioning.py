"""Provisioning at manufacture, for the examples: a device CA, device certificates, configuration files.

The device CA here is ibepsk's throwaway one (:mod:`ibepsk.pki`, valid 30
days); a real product line issues device certificates from its own PKI. What
a device ends up holding is the same either way: the TA's public parameters,
its certificate, and its private key, in a file or generated inside a PKCS#11
token that never lets it out.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..pki import Issued, make_ca, new_key
from .config import Pkcs11Key

CA_CERTIFICATE = "device-ca.crt"
CA_KEY = "device-ca.key"
PRIVATE_FILE_MODE = 0o600


def create_device_ca(directory: Path, name: str = "ibepsk IoT device CA") -> Issued:
    """A device CA: ``device-ca.crt`` (gateways trust it) and ``device-ca.key`` (mode 0600, stays at the factory)."""
    ca = make_ca(name)
    _write_new(directory / CA_CERTIFICATE, ca.cert_pem())
    _write_new(directory / CA_KEY, ca.key_pem(), PRIVATE_FILE_MODE)
    return ca


def load_device_ca(directory: Path) -> Issued:
    certificate = x509.load_pem_x509_certificate((directory / CA_CERTIFICATE).read_bytes())
    key = serialization.load_pem_private_key((directory / CA_KEY).read_bytes(), None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{directory / CA_KEY}: expected the device CA's P-256 key")
    return Issued(certificate, key)


def certify_device(ca: Issued, public_key: ec.EllipticCurvePublicKey, name: str) -> x509.Certificate:
    """A client-authentication certificate for ``name`` (its common name), valid as long as the CA."""
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca.certificate.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(ca.certificate.not_valid_after_utc)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
        .sign(ca.key, hashes.SHA256())
    )


def provision_key_file(ca: Issued, directory: Path, name: str) -> tuple[Path, Path]:
    """A P-256 key in ``NAME.key`` (mode 0600) and its certificate in ``NAME.crt``."""
    key = new_key("p256")
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    device = Issued(certify_device(ca, key.public_key(), name), key)
    certificate, key_file = directory / f"{name}.crt", directory / f"{name}.key"
    _write_new(certificate, device.cert_pem())
    _write_new(key_file, device.key_pem(), PRIVATE_FILE_MODE)
    return certificate, key_file


def provision_token(ca: Issued, directory: Path, name: str, token: Pkcs11Key, pin: str) -> Path:
    """Generate the device key inside the token and write its certificate to ``NAME.crt``."""
    from ..tls.pkcs11_signer import generate_device_key

    public_key = generate_device_key(token.module, token.token, pin, token.key)
    certificate = directory / f"{name}.crt"
    _write_new(certificate, certify_device(ca, public_key, name).public_bytes(serialization.Encoding.PEM))
    return certificate


def write_device_file(
    path: Path,
    *,
    gateway: str,
    gateway_name: str,
    ta: Path,
    certificate: Path,
    key: Path | Pkcs11Key,
) -> None:
    """The device's TOML configuration; its queue goes next to it (``NAME.queue``)."""
    lines = [
        "[gateway]",
        f"address = {_quote(gateway)}",
        f"name = {_quote(gateway_name)}",
        f"ta = {_relative(ta, path)}",
        "",
        "[device]",
        f"certificate = {_relative(certificate, path)}",
        f"queue = {_quote(path.stem + '.queue')}",
    ]
    if isinstance(key, Path):
        lines.append(f"key = {_relative(key, path)}")
    else:
        lines += [
            "",
            "[device.pkcs11]",
            f"module = {_quote(str(key.module))}",
            f"token = {_quote(key.token)}",
            f"key = {_quote(key.key)}",
            f"pin_env = {_quote(key.pin_variable)}",
        ]
    lines += ["", "[retry]", "initial_delay = 1.0", "max_delay = 60.0", ""]
    _write_new(path, "\n".join(lines).encode())


def write_gateway_file(path: Path, *, listen: str, identity_keys: Sequence[Path], ta: Path, device_ca: Path) -> None:
    """The gateway's TOML configuration; its database goes next to it (``readings.sqlite``)."""
    key_list = ", ".join(_relative(key, path) for key in identity_keys)
    lines = [
        f"listen = {_quote(listen)}",
        f"identity_keys = [{key_list}]",
        f"ta = {_relative(ta, path)}",
        f"device_ca = {_relative(device_ca, path)}",
        'database = "readings.sqlite"',
        "early_data = 4096",
        'replay_store = "memory"',
        "",
    ]
    _write_new(path, "\n".join(lines).encode())


def _quote(text: str) -> str:
    return json.dumps(text)  # a JSON string is a TOML basic string


def _relative(target: Path, config: Path) -> str:
    return _quote(os.path.relpath(target, config.parent))


def _write_new(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write a file that must not exist yet (a key is never silently replaced), with ``mode`` from the start."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())

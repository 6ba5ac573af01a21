"""A real SoftHSM2 token for the PKCS#11 tests, in a directory of its own, with a certified device key.

SoftHSM2 reads ``SOFTHSM2_CONF`` when python-pkcs11 first initialises the
module, once per process: :func:`softhsm_device` sets it before anything loads
the module, so use it from one session-scoped fixture.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest
from cryptography import x509

from ibepsk.iot.provisioning import certify_device
from ibepsk.tls.pkcs11_signer import generate_device_key

from pki import Issued, make_ca

#: Where distributions install the module; IBEPSK_SOFTHSM2_MODULE overrides.
MODULE_LOCATIONS = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
TOKEN_LABEL = "ibepsk-device"
USER_PIN = "271828"
SO_PIN = "31415926"
KEY_LABEL = "device-p256"
DEVICE_NAME = "sensor-0042.devices.example.net"


@dataclass(frozen=True)
class Device:
    """A token holding the device key, the device CA and the certificate it issued for that key."""

    module_path: Path
    token_label: str
    pin: str
    key_label: str
    ca: Issued
    certificate: x509.Certificate


def unavailable(reason: str) -> NoReturn:
    """CI installs SoftHSM2 and python-pkcs11 (scripts/test), so there a missing piece fails; elsewhere it skips."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI=true, where scripts/test installs it")
    pytest.skip(reason)


def softhsm_module() -> Path:
    configured = os.environ.get("IBEPSK_SOFTHSM2_MODULE")
    candidates = [Path(configured)] if configured else [Path(location) for location in MODULE_LOCATIONS]
    found = next((path for path in candidates if path.is_file()), None)
    if found is None or shutil.which("softhsm2-util") is None:
        unavailable("SoftHSM2 is not installed (Debian package softhsm2)")
    try:
        import pkcs11  # noqa: F401
    except ImportError:
        unavailable("python-pkcs11 is not installed (pip install 'ibepsk[pkcs11]')")
    return found


@contextlib.contextmanager
def softhsm_device(directory: Path) -> Iterator[Device]:
    """A fresh token in ``directory`` with a P-256 key generated on it and a device certificate for that key."""
    module = softhsm_module()
    (directory / "tokens").mkdir()
    config = directory / "softhsm2.conf"
    config.write_text(f"directories.tokendir = {directory / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SOFTHSM2_CONF", str(config))
        init_token(TOKEN_LABEL)
        public_key = generate_device_key(module, TOKEN_LABEL, USER_PIN, KEY_LABEL)
        ca = make_ca("ibepsk device CA")
        yield Device(module, TOKEN_LABEL, USER_PIN, KEY_LABEL, ca, certify_device(ca, public_key, DEVICE_NAME))


def init_token(label: str) -> None:
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", label, "--so-pin", SO_PIN, "--pin", USER_PIN],
        check=True,
        capture_output=True,
    )

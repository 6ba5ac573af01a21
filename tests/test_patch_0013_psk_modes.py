"""patches/0013: a tlslite-ng server selects a PSK offered in a key exchange mode it does not allow.

A client offers an external PSK with psk_ke only; the server knows the PSK, allows psk_dhe_ke only and
has a certificate. RFC 8446 §4.2.9 and §4.2.11: it must ignore the PSK and do a certificate handshake.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from patch_support import patched_tlslite, run_python
from pki import issue, make_ca

PATCH = "0013-psk-key-exchange-mode-check.patch"

SCENARIO = """
    from tlslite import HandshakeSettings
    from patch_harness import pem_credentials, server_handshake_outcome

    def settings(modes):
        settings = HandshakeSettings()
        settings.pskConfigs = [(bytearray(b"id"), bytearray(32), "sha256")]
        settings.psk_modes = modes
        return settings

    server_args = pem_credentials(CERT, KEY) if CERT else None
    print(server_handshake_outcome(settings(["psk_dhe_ke"]), settings(["psk_ke"]), server_args=server_args))
"""


@pytest.fixture(scope="module")
def credentials(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return issue(make_ca(), "localhost").write(tmp_path_factory.mktemp("pki"), "server")


def outcome(credentials: tuple[Path, Path] | None, patched: Path | None) -> str:
    cert, key = (str(path) for path in credentials) if credentials else ("", "")
    result = run_python(f"\n    CERT, KEY = {cert!r}, {key!r}" + SCENARIO, patched)
    return result.stdout.strip() or result.stderr


def test_stock_tlslite_refuses_instead_of_using_its_certificate(credentials: tuple[Path, Path]) -> None:
    assert outcome(credentials, None) == "TLSLocalAlert:handshake_failure"


def test_patch_falls_back_to_a_certificate_handshake(credentials: tuple[Path, Path], tmp_path: Path) -> None:
    assert outcome(credentials, patched_tlslite(PATCH, tmp_path)) == "ok"


def test_patch_without_a_certificate_still_sends_handshake_failure(tmp_path: Path) -> None:
    assert outcome(None, patched_tlslite(PATCH, tmp_path)) == "TLSLocalAlert:handshake_failure"

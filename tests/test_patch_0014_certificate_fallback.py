"""patches/0014: a tlslite-ng server that uses none of the offered PSKs crashes in a certificate handshake the
ClientHello cannot have (no signature_algorithms, or psk_ke only and no key_share) instead of sending
missing_extension (RFC 8446 §4.2.3, §9.2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from patch_support import patched_tlslite, run_python
from pki import issue, make_ca

PATCH = "0014-tls13-certificate-fallback-missing-extension.patch"

# The client offers a PSK the server does not know, and leaves out the extensions named in DROP.
SCENARIO = """
    from tlslite import HandshakeSettings
    from tlslite.constants import ExtensionType
    from patch_harness import client_mutating_hello, pem_credentials, server_handshake_outcome

    def drop(hello):
        dropped = [getattr(ExtensionType, name) for name in DROP]
        hello.extensions = [ext for ext in hello.extensions if ext.extType not in dropped]

    server = HandshakeSettings()
    server.pskConfigs = [(bytearray(b"server"), bytearray(32), "sha256")]
    client = HandshakeSettings()
    client.pskConfigs = [(bytearray(b"unknown"), bytearray(32), "sha256")]
    client.psk_modes = MODES
    print(server_handshake_outcome(server, client, client_mutating_hello(drop), pem_credentials(CERT, KEY)))
"""

# What the client leaves out, and what stock tlslite-ng's server dies of.
CASES = [
    pytest.param(("signature_algorithms", "signature_algorithms_cert"), "TypeError", id="no-signature-algorithms"),
    # with psk_ke only, tlslite's ClientHello checks do not ask for key_share
    pytest.param(("key_share",), "UnboundLocalError", id="psk-ke-without-key-share"),
]


@pytest.fixture(scope="module")
def credentials(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return issue(make_ca(), "localhost").write(tmp_path_factory.mktemp("pki"), "server")


def outcome(credentials: tuple[Path, Path], dropped: tuple[str, ...], patched: Path | None) -> str:
    cert, key = (str(path) for path in credentials)
    modes = ["psk_ke"] if "key_share" in dropped else ["psk_dhe_ke", "psk_ke"]
    prelude = f"\n    CERT, KEY, DROP, MODES = {cert!r}, {key!r}, {dropped!r}, {modes!r}"
    result = run_python(prelude + SCENARIO, patched)
    return result.stdout.strip() or result.stderr


@pytest.mark.parametrize(("dropped", "crash"), CASES)
def test_stock_tlslite_crashes_patched_sends_missing_extension(
    credentials: tuple[Path, Path], dropped: tuple[str, ...], crash: str, tmp_path: Path
) -> None:
    assert outcome(credentials, dropped, None) == crash
    assert outcome(credentials, dropped, patched_tlslite(PATCH, tmp_path)) == "TLSLocalAlert:missing_extension"

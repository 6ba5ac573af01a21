"""patches/0010: an empty PSK identity kills a tlslite-ng server with AttributeError instead of decode_error."""

from __future__ import annotations

from pathlib import Path

from patch_support import patched_tlslite, run_python

# Stock tlslite-ng only: a client sends an empty PSK identity (tlslite's client leaves out empty
# identities, so it is emptied on the way out).
SCENARIO = """
    from tlslite import HandshakeSettings
    from patch_harness import client_mutating_hello, server_handshake_outcome

    def empty_identity(hello):
        hello.extensions[-1].identities[0].identity = bytearray()

    settings = HandshakeSettings()
    settings.pskConfigs = [(bytearray(b"id"), bytearray(32), "sha256")]
    print(server_handshake_outcome(settings, settings, client_mutating_hello(empty_identity)))
"""


def test_stock_tlslite_server_raises_attribute_error() -> None:
    result = run_python(SCENARIO)
    assert result.stdout.strip() == "AttributeError", result.stderr


def test_patch_fixes_it(tmp_path: Path) -> None:
    result = run_python(SCENARIO, patched_tlslite("0010-psk-empty-identity-alert.patch", tmp_path))
    assert result.stdout.strip() == "TLSLocalAlert:decode_error", result.stderr

"""patches/0001: a TLS 1.3 tlslite-ng server without ALPN crashes when the client offers ALPN."""

from __future__ import annotations

from pathlib import Path

from patch_support import patched_tlslite, run_python

# Stock tlslite-ng only: a server without `alpn` and a client offering it.
SCENARIO = """
    from tlslite import HandshakeSettings
    from patch_harness import server_handshake_outcome
    settings = HandshakeSettings()
    settings.pskConfigs = [(bytearray(b"id"), bytearray(32), "sha256")]
    print(server_handshake_outcome(settings, settings, alpn=[bytearray(b"http/1.1")]))
"""


def test_stock_tlslite_server_crashes_on_alpn_offer() -> None:
    result = run_python(SCENARIO)
    assert result.stdout.strip() == "TypeError", result.stderr


def test_patch_fixes_it(tmp_path: Path) -> None:
    result = run_python(SCENARIO, patched_tlslite("0001-tls13-server-without-alpn.patch", tmp_path))
    assert result.stdout.strip() == "ok", result.stderr

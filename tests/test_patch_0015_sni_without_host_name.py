"""patches/0015: a server_name extension without a host_name kills a tlslite-ng server with IndexError."""

from __future__ import annotations

from pathlib import Path

from patch_support import patched_tlslite, run_python

# Stock tlslite-ng only: the client's one server name is given another name type on the way out.
SCENARIO = """
    from tlslite import HandshakeSettings
    from tlslite.constants import ExtensionType
    from tlslite.extensions import SNIExtension
    from patch_harness import client_mutating_hello, server_handshake_outcome

    def other_name_type(hello):
        hello.getExtension(ExtensionType.server_name).serverNames = [SNIExtension.ServerName(1, b"localhost")]

    settings = HandshakeSettings()
    settings.pskConfigs = [(bytearray(b"id"), bytearray(32), "sha256")]
    print(server_handshake_outcome(settings, settings, client_mutating_hello(other_name_type), serverName="localhost"))
"""


def test_stock_tlslite_server_raises_index_error() -> None:
    result = run_python(SCENARIO)
    assert result.stdout.strip() == "IndexError", result.stderr


def test_patch_sends_decode_error(tmp_path: Path) -> None:
    result = run_python(SCENARIO, patched_tlslite("0015-sni-without-host-name.patch", tmp_path))
    assert result.stdout.strip() == "TLSLocalAlert:decode_error", result.stderr

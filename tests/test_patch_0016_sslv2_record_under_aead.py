"""patches/0016: an SSLv2-framed record under AEAD keys kills a tlslite-ng peer with AttributeError."""

from __future__ import annotations

from pathlib import Path

from patch_support import patched_tlslite, run_python

# Stock tlslite-ng only: after an external-PSK handshake the client sends a record with an SSLv2 header.
SCENARIO = """
    import socket
    from tlslite import HandshakeSettings, TLSConnection
    from patch_harness import in_thread

    settings = HandshakeSettings()
    settings.pskConfigs = [(bytearray(b"id"), bytearray(32), "sha256")]
    client_sock, server_sock = socket.socketpair()
    server = TLSConnection(server_sock)
    done = in_thread(lambda: (server.handshakeServer(settings=settings), server.read()))
    TLSConnection(client_sock).handshakeClientCert(settings=settings)
    client_sock.sendall(b"\\x80\\x10" + bytes(16))
    print(done())
"""


def test_stock_tlslite_raises_attribute_error() -> None:
    result = run_python(SCENARIO)
    assert result.stdout.strip() == "AttributeError", result.stderr


def test_patch_sends_unexpected_message(tmp_path: Path) -> None:
    result = run_python(SCENARIO, patched_tlslite("0016-sslv2-record-under-aead.patch", tmp_path))
    assert result.stdout.strip() == "TLSLocalAlert:unexpected_message", result.stderr

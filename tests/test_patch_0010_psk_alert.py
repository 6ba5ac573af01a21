"""patches/0010: an empty PSK identity kills a tlslite-ng server with AttributeError instead of decode_error."""

from __future__ import annotations

from pathlib import Path

from patch_support import patched_tlslite, run_python

# Stock tlslite-ng only: a client sends an empty PSK identity, over a socketpair.
SCENARIO = """
    import socket, threading
    from tlslite import TLSConnection, HandshakeSettings
    from tlslite.errors import TLSLocalAlert
    from tlslite.messages import ClientHello

    class EmptyingClient(TLSConnection):  # tlslite's client leaves out empty identities: empty it on the way out
        def _sendMsg(self, msg, *args, **kwargs):
            if isinstance(msg, ClientHello):
                msg.extensions[-1].identities[0].identity = bytearray()
            return super()._sendMsg(msg, *args, **kwargs)

    a, b = socket.socketpair()
    settings = HandshakeSettings()
    settings.pskConfigs = [(bytearray(b"id"), bytearray(32), "sha256")]
    outcome = {}
    def serve():
        try:
            TLSConnection(b).handshakeServer(settings=settings)
            outcome["server"] = "ok"
        except TLSLocalAlert as alert:
            outcome["server"] = f"sent {alert.description}"
        except Exception as exc:
            outcome["server"] = type(exc).__name__
            b.close()
    thread = threading.Thread(target=serve); thread.start()
    client = HandshakeSettings()
    client.pskConfigs = settings.pskConfigs
    try:
        EmptyingClient(a).handshakeClientCert(settings=client)
    except Exception:
        pass
    thread.join(10)
    print(outcome["server"])
"""


def test_stock_tlslite_server_raises_attribute_error() -> None:
    result = run_python(SCENARIO)
    assert result.stdout.strip() == "AttributeError", result.stderr


def test_patch_fixes_it(tmp_path: Path) -> None:
    result = run_python(SCENARIO, patched_tlslite("0010-psk-empty-identity-alert.patch", tmp_path))
    assert result.stdout.strip() == "sent 50", result.stderr  # decode_error

"""patches/0012: a tlslite-ng server answers a PSK binder that does not verify with illegal_parameter."""

from __future__ import annotations

from pathlib import Path

from patch_support import patched_tlslite, run_python

# Stock tlslite-ng only: a client whose external-PSK binder is flipped on the way out, over a socketpair.
SCENARIO = """
    import socket, threading
    from tlslite import TLSConnection, HandshakeSettings
    from tlslite.errors import TLSLocalAlert
    from tlslite.messages import ClientHello

    class FlippingClient(TLSConnection):
        def _sendMsg(self, msg, *args, **kwargs):
            if isinstance(msg, ClientHello):
                msg.extensions[-1].binders[0][0] ^= 1
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
    try:
        FlippingClient(a).handshakeClientCert(settings=settings)
    except Exception:
        pass
    thread.join(10)
    print(outcome["server"])
"""


def test_stock_tlslite_sends_illegal_parameter() -> None:
    result = run_python(SCENARIO)
    assert result.stdout.strip() == "sent 47", result.stderr  # illegal_parameter


def test_patch_sends_decrypt_error(tmp_path: Path) -> None:
    result = run_python(SCENARIO, patched_tlslite("0012-psk-binder-decrypt-error.patch", tmp_path))
    assert result.stdout.strip() == "sent 51", result.stderr  # decrypt_error

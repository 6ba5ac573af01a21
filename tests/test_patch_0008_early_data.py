"""patches/0008: the early-data building blocks ibepsk reaches into tlslite-ng's record layer for."""

from __future__ import annotations

from pathlib import Path

from patch_support import patched_tlslite, run_python

# Seal one record's worth of data with the early state, as ibepsk derives it and as the patch does.
SCENARIO = """
    import socket
    from tlslite.constants import CipherSuite
    from tlslite.messages import Message
    from tlslite.recordlayer import RecordLayer
    import tlslite.messages as messages

    secret = bytearray(range(32))
    layer = RecordLayer(socket.socket())
    print("EndOfEarlyData" in dir(messages), hasattr(layer, "calcTLS1_3EarlyState"))
    if hasattr(layer, "calcTLS1_3EarlyState"):
        from ibepsk.tls.early_data import EARLY_DATA_SUITE
        state = layer.calcTLS1_3EarlyState(EARLY_DATA_SUITE, secret, ["python"])
        nonce = bytearray(state.fixedNonce)
        print(state.encContext.seal(nonce, bytearray(b"0-rtt"), bytearray()).hex())
        print(messages.EndOfEarlyData().write().hex())
"""


def test_stock_tlslite_has_no_early_data_building_blocks() -> None:
    result = run_python(SCENARIO)
    assert result.stdout.split()[:2] == ["False", "False"], result.stderr


def test_patch_adds_them_and_agrees_with_ibepsk(tmp_path: Path) -> None:
    result = run_python(SCENARIO, patched_tlslite("0008-tls13-early-data-building-blocks.patch", tmp_path))
    lines = result.stdout.split()
    assert lines[:2] == ["True", "True"], result.stderr
    assert lines[3] == "05000000", "EndOfEarlyData is an empty handshake message"
    assert lines[2] == _ibepsk_seal()


def _ibepsk_seal() -> str:
    """The same seal through ibepsk's own early state (stock tlslite-ng, private attributes)."""
    import socket

    from ibepsk.tls import TLSConnection

    conn = TLSConnection(socket.socket())
    state = conn._early_state(bytearray(range(32)), ["python"])
    return bytes(state.encContext.seal(bytearray(state.fixedNonce), bytearray(b"0-rtt"), bytearray())).hex()

"""patches/0012: a tlslite-ng server answers a PSK binder that does not verify with illegal_parameter."""

from __future__ import annotations

from pathlib import Path

from patch_support import patched_tlslite, run_python

# Stock tlslite-ng only: a client whose external-PSK binder is flipped on the way out.
SCENARIO = """
    from tlslite import HandshakeSettings
    from patch_harness import client_mutating_hello, server_handshake_outcome

    def flip_binder(hello):
        hello.extensions[-1].binders[0][0] ^= 1

    settings = HandshakeSettings()
    settings.pskConfigs = [(bytearray(b"id"), bytearray(32), "sha256")]
    print(server_handshake_outcome(settings, settings, client_mutating_hello(flip_binder)))
"""


def test_stock_tlslite_sends_illegal_parameter() -> None:
    result = run_python(SCENARIO)
    assert result.stdout.strip() == "TLSLocalAlert:illegal_parameter", result.stderr


def test_patch_sends_decrypt_error(tmp_path: Path) -> None:
    result = run_python(SCENARIO, patched_tlslite("0012-psk-binder-decrypt-error.patch", tmp_path))
    assert result.stdout.strip() == "TLSLocalAlert:decrypt_error", result.stderr

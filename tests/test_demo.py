"""``ibepsk demo`` runs end to end, as the README's first command does."""

from __future__ import annotations

import re

from test_cli_ta import ibepsk


def test_demo() -> None:
    result = ibepsk("demo")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Traceback" not in out + result.stderr
    assert out.count("HTTP/1.1 200 OK") == 5
    assert "mode=ibe-psk identity=localhost kex=psk_dhe_ke cipher=aes128gcm early_data=accepted" in out
    assert "{'accepted': 1, 'replay': 1}" in out
    assert "mode=resumption" in out
    assert "client='CN=device-1' (post-handshake)" in out, "post-handshake authentication"
    assert "client='CN=device-1' (resumption)" in out, "the ticket issued after PHA remembers the client"
    assert re.search(r"saved: [\d.]+ ms, [\d.]+ round trips", out)

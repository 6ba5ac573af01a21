"""``ibepsk demo`` runs end to end, as the README's first command does."""

from __future__ import annotations

import re

from test_cli_ta import ibepsk


def test_demo() -> None:
    result = ibepsk("demo")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Traceback" not in out + result.stderr
    assert out.count("HTTP/1.1 200 OK") == 6
    # 0-RTT accepted twice (each shown in the handshake line and in the answer): BF, then the post-quantum hybrid.
    assert out.count("mode=ibe-psk identity=localhost kex=psk_dhe_ke cipher=aes128gcm early_data=accepted") == 4
    assert "{'accepted': 1, 'replay': 1}" in out
    assert "mode=resumption" in out
    assert "client='CN=device-1' (post-handshake)" in out, "post-handshake authentication"
    assert "client='CN=device-1' (resumption)" in out, "the ticket issued after PHA remembers the client"
    assert "ibepsk's hybrid IBE-PSK" in out and "skipped" not in out, "the post-quantum step (CI installs numpy)"
    assert re.search(r"first flight: 5\d\d\d bytes, with the 4,129-byte identity", out)
    assert re.search(r"saved: [\d.]+ ms, [\d.]+ round trips", out)

"""patches/0019: tlslite-ng hands ``settings.padding_cb`` to its BufferedSocket, so no TLS 1.3 record is padded."""

from __future__ import annotations

import json
from pathlib import Path

from patch_support import patched_tlslite, run_python

TAG = 16  # AES-GCM's, after the inner plaintext
PADDED_TO = 256

# Stock tlslite-ng only, over an external PSK: a client that pads every record to a multiple of 256 bytes sends
# "ping"; what the server read, and the lengths of the encrypted records the client put on the wire.
SCENARIO = """
    import json
    import socket
    from tlslite import HandshakeSettings, TLSConnection
    from patch_harness import TIMEOUT, in_thread

    class Tap:
        '''The client's socket, keeping a copy of what it sends.'''

        def __init__(self, sock):
            self.sock, self.sent = sock, bytearray()

        def send(self, data):
            count = self.sock.send(data)
            self.sent += data[:count]
            return count

        def sendall(self, data):
            self.sock.sendall(data)
            self.sent += data

        def __getattr__(self, name):
            return getattr(self.sock, name)

    def encrypted_record_lengths(stream):
        lengths, start = [], 0
        while start < len(stream):
            length = int.from_bytes(stream[start + 3 : start + 5], "big")
            if stream[start] == 23:  # application_data: every TLS 1.3 record under traffic keys
                lengths.append(length)
            start += 5 + length
        return lengths

    def settings(padding_cb=None):
        settings = HandshakeSettings()
        settings.pskConfigs = [(bytearray(b"id"), bytearray(32), "sha256")]
        settings.cipherNames = ["aes128gcm"]
        settings.padding_cb = padding_cb
        return settings

    def to_256(length, content_type, max_padding):
        return min(-length % 256, max(max_padding, 0))

    client_sock, server_sock = socket.socketpair()
    client_sock.settimeout(TIMEOUT)
    server_sock.settimeout(TIMEOUT)
    received = []

    def serve():
        conn = TLSConnection(server_sock)
        conn.handshakeServer(settings=settings())
        received.append(bytes(conn.read()).decode())

    server_done = in_thread(serve)
    tap = Tap(client_sock)
    client = TLSConnection(tap)
    client.handshakeClientCert(settings=settings(to_256))
    client.write(b"ping")
    print(json.dumps([server_done(), received, encrypted_record_lengths(tap.sent)]))
"""


def _outcome(path_entry: Path | None = None) -> tuple[str, list[str], list[int]]:
    result = run_python(SCENARIO, path_entry)
    assert result.returncode == 0, result.stderr
    outcome, received, lengths = json.loads(result.stdout)
    return outcome, received, lengths


def test_stock_tlslite_pads_no_record() -> None:
    outcome, received, lengths = _outcome()
    assert (outcome, received) == ("ok", ["ping"])
    assert lengths[-1] == len(b"ping") + 1 + TAG  # the data and its content type, no padding
    assert all((length - TAG) % PADDED_TO for length in lengths)  # the Finished neither


def test_patch_pads_every_encrypted_record(tmp_path: Path) -> None:
    outcome, received, lengths = _outcome(patched_tlslite("0019-tls13-record-padding-callback.patch", tmp_path))
    assert (outcome, received) == ("ok", ["ping"])
    assert len(lengths) >= 2  # the client's Finished and its data
    assert all((length - TAG) % PADDED_TO == 0 for length in lengths), lengths

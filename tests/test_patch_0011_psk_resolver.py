"""patches/0011: tlslite-ng cannot resolve a PSK from its identity, nor send an identity with a ticket age."""

from __future__ import annotations

from pathlib import Path

from patch_support import patched_tlslite, run_python

# Stock tlslite-ng only: a server that derives the PSK from the identity, a client that marks its
# identity with obfuscated_ticket_age 1 (as TiigerTLS does for an IBE ciphertext), over a socketpair.
SCENARIO = """
    import hashlib, socket, threading
    from tlslite import TLSConnection, HandshakeSettings

    def derive(identity):
        return bytearray(hashlib.sha256(b"demo key|" + bytes(identity)).digest())

    seen = []
    def resolve(client_hello):
        identities = client_hello.extensions[-1].identities
        seen.extend(ident.obfuscated_ticket_age for ident in identities)
        return [(ident.identity, derive(ident.identity), "sha256") for ident in identities]

    a, b = socket.socketpair()
    server = HandshakeSettings()
    server.psk_resolver = resolve
    outcome = {}
    def serve():
        try:
            conn = TLSConnection(b)
            conn.handshakeServer(settings=server)
            conn.write(conn.read(max=5))
            outcome["server"] = "ok"
        except Exception as exc:
            outcome["server"] = type(exc).__name__
        b.close()
    thread = threading.Thread(target=serve); thread.start()
    client = HandshakeSettings()
    identity = bytearray(b"device-42")
    client.pskConfigs = [(identity, derive(identity), "sha256", 1)]
    try:
        conn = TLSConnection(a)
        conn.handshakeClientCert(settings=client)
        conn.write(b"hello")
        outcome["client"] = "echo " + conn.read(max=5).decode()
    except Exception as exc:
        outcome["client"] = type(exc).__name__
    a.close()
    thread.join(10)
    print(outcome["client"], outcome.get("server"), "ages", seen)
"""


def test_stock_tlslite_has_neither() -> None:
    result = run_python(SCENARIO)
    # the client refuses the 4-tuple; a server without pskConfigs or a certificate refuses to start
    assert result.stdout.split() == ["ValueError", "ValueError", "ages", "[]"], result.stderr


def test_patch_adds_both(tmp_path: Path) -> None:
    result = run_python(SCENARIO, patched_tlslite("0011-psk-resolver-and-ticket-age.patch", tmp_path))
    assert result.stdout.split() == ["echo", "hello", "ok", "ages", "[1]"], result.stderr


# A server whose only PSK source is the resolver, and a client it cannot resolve.
UNRESOLVED = """
    from tlslite import HandshakeSettings
    from patch_harness import server_handshake_outcome
    server = HandshakeSettings()
    server.psk_resolver = lambda client_hello: []
    client = HandshakeSettings()
    client.pskConfigs = [(bytearray(b"stranger"), bytearray(32), "sha256")]
    print(server_handshake_outcome(server, client))
"""


def test_stock_tlslite_has_no_resolver_only_server() -> None:
    result = run_python(UNRESOLVED)
    assert result.stdout.strip() == "ValueError", result.stderr  # "Caller passed no authentication credentials"


def test_patched_resolver_only_server_refuses_an_unknown_psk(tmp_path: Path) -> None:
    result = run_python(UNRESOLVED, patched_tlslite("0011-psk-resolver-and-ticket-age.patch", tmp_path))
    assert result.stdout.strip() == "TLSLocalAlert:handshake_failure", result.stderr

"""``ibepsk demo``: the whole idea on loopback, with nothing to set up.

A throwaway TA issues the key for ``localhost``; a server holding only that
key (no certificate) answers HTTP; a client holding only the TA's public
parameters connects by name, sends its request in the first flight (0-RTT),
has a replay of that flight refused, and resumes with the ticket it was given.
Then a server that wants to know the client asks for its certificate after
the handshake, and remembers it in the next ticket. With numpy installed
(``ibepsk[pq]``), a lattice TA joins the BF one and the client sends ibepsk's
post-quantum hybrid IBE-PSK.
Last, the time to the first byte of the answer, 0-RTT against 1-RTT, behind a
proxy that adds 20 ms each way.
"""

from __future__ import annotations

import logging
import socket
import time

from . import keys
from .bench import REQUEST, measure_zero_rtt
from .client import ClientConfig, connect, read_until_closed
from .ibe import BackendUnavailableError
from .netem import FirstFlightRecorder
from .pki import issue, make_ca
from .server import (
    ServerConfig,
    TLSServer,
    describe_connection,
    server_settings,
    www_application,
    www_early_data_handler,
)
from .tls import HandshakeSettings, IbeKeyring, KeySigner, TLSConnection, TrustAnchors
from .tls.pha import requiring_client_auth

SERVER_NAME = "localhost"
DEMO_DELAY_MS = 20.0
DEMO_LATENCY_RUNS = 3


def _step(text: str) -> None:
    print(f"\n== {text}")


def _show_reply(conn: TLSConnection) -> None:
    reply = read_until_closed(conn)
    conn.close()
    print("answer:")
    for line in reply.decode("utf-8", "replace").splitlines():
        print(f"  | {line}")


def _server(ta: keys.TAMasterKey, lattice_ta: keys.LatticeTAMasterKey | None = None) -> TLSServer:
    """A www server with 0-RTT holding the BF key for 'localhost' (and the lattice one, for the hybrid)."""
    bf_key = ta.extract(SERVER_NAME)
    settings = server_settings([bf_key], accept_early_data=4096)
    if lattice_ta is not None:
        lattice_key = lattice_ta.extract(SERVER_NAME)
        settings.ibe_keyring = IbeKeyring([bf_key], lattice_keys=[lattice_key], lattice_public=lattice_ta.public)
    settings.early_data_handler = www_early_data_handler
    return TLSServer(ServerConfig(settings), www_application).start()


def _send_in_first_flight(address: tuple[str, int], settings: HandshakeSettings) -> FirstFlightRecorder:
    """Connect with the request as 0-RTT data, show the handshake and the answer; the first flight, recorded."""
    recorder = FirstFlightRecorder(socket.create_connection(address, timeout=10))
    conn = TLSConnection(recorder)
    conn.handshakeClientCert(settings=settings, serverName=SERVER_NAME, early_data=REQUEST)
    print(f"handshake: {conn.getVersionName()} {describe_connection(conn)}")
    _show_reply(conn)
    return recorder


def run_demo() -> int:
    logging.basicConfig(level=logging.WARNING)
    _step("Trusted Authority: a master secret, public parameters, and the key for 'localhost'")
    ta = keys.TAMasterKey.generate()
    print(f"TA fingerprint {ta.public.fingerprint[:32]}…; the server gets the key, the client only the public part")

    client_settings = HandshakeSettings()
    client_settings.ibe_public_params = ta.public
    config = ClientConfig(client_settings, server_name=SERVER_NAME)

    with _server(ta) as server:
        address = server.address
        _step(f"server on {address[0]}:{address[1]}: IBE identity key only, no certificate; 0-RTT on")

        _step("client connects knowing only the name 'localhost', then sends its request (1-RTT)")
        conn = connect(*address, config)
        print(f"handshake: {conn.getVersionName()} {describe_connection(conn)}")
        conn.write(REQUEST)
        session = conn.session
        _show_reply(conn)

        _step("client sends its request in the first flight (0-RTT); the server answers with its Finished")
        recorder = _send_in_first_flight(address, client_settings)

        _step(f"an attacker replays that first flight ({len(recorder.first_flight)} bytes, captured on the wire)")
        with socket.create_connection(address, timeout=10) as replay:
            replay.sendall(bytes(recorder.first_flight))
            replay.recv(1)  # the server answers the handshake; the attacker cannot finish it
        _wait_for_outcome(server, "replay")
        print(f"server's 0-RTT outcomes so far: {dict(server.stats.early_data)} — the replay got no early data")

        _step("client reconnects with its ticket (no pairing on either side)")
        conn = connect(*address, config, session=session)
        print(f"handshake: {conn.getVersionName()} {describe_connection(conn)}")
        conn.write(REQUEST)
        _show_reply(conn)
        print(f"\nserver: {server.stats.handshakes} handshakes, {server.stats.failures} failed (the replay)")

    _authenticate_the_client(ta)
    _post_quantum(ta)

    _step(f"time to the first byte of the answer, through a proxy adding {DEMO_DELAY_MS:g} ms each way")
    result = measure_zero_rtt(DEMO_DELAY_MS, DEMO_LATENCY_RUNS)
    print(f"request after the handshake (1-RTT): {result.one_rtt_ms:6.1f} ms")
    print(f"request in the first flight (0-RTT): {result.zero_rtt_ms:6.1f} ms")
    print(f"saved: {result.one_rtt_ms - result.zero_rtt_ms:.1f} ms, {result.saved_round_trips:.2f} round trips")
    return 0


def _authenticate_the_client(ta: keys.TAMasterKey) -> None:
    _step("a server that also wants to know who the client is: post-handshake authentication")
    device_ca = make_ca("ibepsk demo device CA")
    device = issue(device_ca, "device-1", server=False)
    print(f"a throwaway device CA issues {device.certificate.subject.rfc4514_string()}; the server trusts that CA")
    settings = server_settings([ta.extract(SERVER_NAME)])
    settings.client_auth_anchors = TrustAnchors([device_ca.certificate])
    client_settings = HandshakeSettings()
    client_settings.ibe_public_params = ta.public
    client_settings.client_auth_signer = KeySigner([device.certificate], device.key)
    config = ClientConfig(client_settings, server_name=SERVER_NAME)
    with TLSServer(ServerConfig(settings), requiring_client_auth(www_application)).start() as server:
        session = None
        for title in (
            "IBE-PSK handshake, then the server sends a CertificateRequest and the client proves its certificate",
            "the client resumes with the ticket issued after that: the server remembers who it is",
        ):
            print(f"-- {title}")
            conn = connect(*server.address, config, session=session)
            print(f"handshake: {conn.getVersionName()} {describe_connection(conn)}")
            conn.write(REQUEST)
            session = conn.session
            _show_reply(conn)
            print(f"certificate requests answered by the client: {conn.certificate_requests_answered}")


def _post_quantum(ta: keys.TAMasterKey) -> None:
    _step("post-quantum: ibepsk's hybrid IBE-PSK (lattice + BF KEMs, X25519MLKEM768 key share), 0-RTT")
    try:
        lattice_ta = keys.LatticeTAMasterKey.generate()
    except BackendUnavailableError as exc:
        print(f"skipped: {exc}")
        return
    print(f"a lattice TA (NTRU trapdoor) {lattice_ta.public.fingerprint[:32]}…; the server gets both keys, the client")
    print("both public parts, and the PSK comes from both KEMs: secret unless both are broken (docs/post-quantum.md)")
    client_settings = HandshakeSettings()
    client_settings.ibe_scheme = "hybrid"
    client_settings.ibe_public_params = ta.public
    client_settings.ibe_lattice_public_params = lattice_ta.public
    with _server(ta, lattice_ta) as server:
        recorder = _send_in_first_flight(server.address, client_settings)
    print(f"first flight: {len(recorder.first_flight)} bytes, with the 4,129-byte identity and the ML-KEM key share")


def _wait_for_outcome(server: TLSServer, outcome: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while server.stats.early_data[outcome] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)

"""``ibepsk demo``: the whole idea on loopback, with nothing to set up.

A throwaway TA issues the key for ``localhost``; a server holding only that
key (no certificate) answers HTTP; a client holding only the TA's public
parameters connects by name, then resumes with the ticket it was given.
"""

from __future__ import annotations

import logging
import time

from . import keys
from .client import ClientConfig, connect, read_until_closed
from .endpoints import server_settings
from .server import ServerConfig, TLSServer, describe_connection, www_application
from .tls import HandshakeSettings

SERVER_NAME = "localhost"
REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


def _step(text: str) -> None:
    print(f"\n== {text}")


def run_demo() -> int:
    logging.basicConfig(level=logging.WARNING)
    _step("Trusted Authority: a master secret, public parameters, and the key for 'localhost'")
    ta = keys.TAMasterKey.generate()
    identity_key = ta.extract(SERVER_NAME)
    print(f"TA fingerprint {ta.public.fingerprint[:32]}…; the server gets the key, the client only the public part")

    with TLSServer(ServerConfig(server_settings([identity_key])), www_application).start() as server:
        host, port = server.address
        _step(f"server on {host}:{port}: IBE identity key only, no certificate")
        settings = HandshakeSettings()
        settings.ibe_public_params = ta.public
        config = ClientConfig(settings, server_name=SERVER_NAME)

        session = None
        for title in ("client connects knowing only the name 'localhost'", "client reconnects with its ticket"):
            _step(title)
            started = time.perf_counter()
            conn = connect(host, port, config, session=session)
            handshake_ms = (time.perf_counter() - started) * 1000
            print(f"handshake: {conn.getVersionName()} {describe_connection(conn)} in {handshake_ms:.1f} ms")
            conn.write(REQUEST)
            reply = read_until_closed(conn)
            session = conn.session
            conn.close()
            print("server replied:")
            for line in reply.decode("utf-8", "replace").splitlines():
                print(f"  | {line}")
        print(f"\nserver: {server.stats.handshakes} handshakes, {server.stats.failures} failures")
    return 0

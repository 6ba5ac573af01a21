"""Imported by the scenarios of the patch tests, in a fresh interpreter whose first tlslite-ng is
either the stock one or a patched copy (see ``patch_support.run_python``)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any

from tlslite import HandshakeSettings, TLSConnection
from tlslite.constants import AlertDescription
from tlslite.messages import ClientHello
from tlslite.utils.keyfactory import parsePEMKey
from tlslite.x509certchain import X509CertChain

TIMEOUT = 10


def outcome(action: Callable[[], object]) -> str:
    """``ok``, or the exception's class name with the alert it carries (``TLSLocalAlert:decode_error``)."""
    try:
        action()
    except Exception as exc:
        description = getattr(exc, "description", None)
        return type(exc).__name__ + (":" + AlertDescription.toRepr(description) if description else "")
    return "ok"


def in_thread(action: Callable[[], object]) -> Callable[[], str]:
    """Start ``action`` in a thread; the returned function waits for its outcome (``hung`` if it never ends)."""
    box: dict[str, str] = {}
    thread = threading.Thread(target=lambda: box.setdefault("outcome", outcome(action)))
    thread.start()
    return lambda: (thread.join(TIMEOUT), box.get("outcome", "hung"))[1]


def server_handshake_outcome(
    server_settings: HandshakeSettings,
    client_settings: HandshakeSettings,
    client_class: type[TLSConnection] = TLSConnection,
    server_args: dict[str, Any] | None = None,
    **client_args: Any,
) -> str:
    """Handshake two connections over a socketpair; what became of the server's side.

    ``server_args`` go to ``handshakeServer`` (e.g. ``certChain`` and ``privateKey``, see ``pem_credentials``).
    """
    client_sock, server_sock = socket.socketpair()
    client_sock.settimeout(TIMEOUT)
    server_sock.settimeout(TIMEOUT)

    def serve() -> None:
        try:
            TLSConnection(server_sock).handshakeServer(settings=server_settings, **(server_args or {}))
        finally:
            server_sock.close()  # a server that dies mid-handshake must not leave the client waiting

    server_done = in_thread(serve)
    outcome(lambda: client_class(client_sock).handshakeClientCert(settings=client_settings, **client_args))
    client_sock.close()
    return server_done()


def client_mutating_hello(mutate: Callable[[ClientHello], None]) -> type[TLSConnection]:
    """A client connection class that applies ``mutate`` to its ClientHello just before sending it."""

    class MutatingClient(TLSConnection):  # type: ignore[misc]
        def _sendMsg(self, msg: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(msg, ClientHello):
                mutate(msg)
            return super()._sendMsg(msg, *args, **kwargs)

    return MutatingClient


def pem_credentials(cert: str, key: str) -> dict[str, Any]:
    """``handshakeServer`` arguments for the certificate chain and key in two PEM files."""
    chain = X509CertChain()
    with open(cert) as cert_file, open(key) as key_file:
        chain.parsePemList(cert_file.read())
        private_key = parsePEMKey(key_file.read(), private=True, implementations=["python"])
    return {"certChain": chain, "privateKey": private_key}

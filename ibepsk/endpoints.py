"""``ibepsk serve`` and ``ibepsk connect``: turning options into a server or a client run."""

from __future__ import annotations

import argparse
import codecs
import ipaddress
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from tlslite.constants import KeyUpdateMessageType
from tlslite.utils.keyfactory import parsePEMKey

from . import keys
from .client import ClientConfig, connect
from .epochs import EpochPeriod
from .server import (
    Application,
    ServerConfig,
    TLSServer,
    describe_connection,
    echo_application,
    echo_early_data_handler,
    shut_down,
    stop_on_sigterm,
    www_application,
    www_early_data_handler,
)
from .tls import HandshakeSettings, IbeKeyring, KeySigner, TLSConnection, TrustAnchors
from .tls.certs import ClientCertProfile, ServerCertificateChecker, load_tlslite_chain
from .tls.driving import run_to_completion
from .tls.pha import requesting_client_auth, requiring_client_auth
from .tls.replay import ReplayStore, ReplayStoreError, open_replay_store
from .tls.settings import DEFAULT_REPLAY_WINDOW_SECONDS
from .tls.versions import TLS_1_3

_TICKET_KEY_BYTES = 32
#: ``--psk-ke``: also allow PSK-only key exchange (no forward secrecy), psk_dhe_ke still preferred.
PSK_MODES_WITH_PSK_KE = ["psk_dhe_ke", "psk_ke"]


class EndpointError(ValueError):
    """A bad option for serve/connect, reported in one line by the CLI."""


def server_settings(
    identity_keys: list[keys.IdentityKey],
    *,
    default_identity: str | None = None,
    allow_psk_ke: bool = False,
    tickets: bool = True,
    accept_early_data: int = 0,
    replay_store: ReplayStore | None = None,
) -> HandshakeSettings:
    settings = HandshakeSettings()
    settings.accept_early_data = accept_early_data
    settings.replay_store = replay_store
    if identity_keys:
        settings.ibe_keyring = IbeKeyring(identity_keys, default=default_identity)
    if allow_psk_ke:
        settings.psk_modes = PSK_MODES_WITH_PSK_KE
    if tickets:
        settings.ticketKeys = [bytearray(os.urandom(_TICKET_KEY_BYTES))]
    return settings


def _check_cert_and_key(args: argparse.Namespace) -> None:
    if bool(args.cert) != bool(args.key):
        raise EndpointError("--cert and --key go together")


def _load_server_config(args: argparse.Namespace) -> ServerConfig:
    public = keys.load_public_params(args.ta) if args.ta else None
    identity_keys = [keys.load_identity_key(path, public) for path in args.ibe_key]
    if not identity_keys and not args.cert:
        raise EndpointError("give at least one --ibe-key (or --cert/--key for certificate handshakes)")
    _check_cert_and_key(args)
    if args.max_early_data < 0:
        raise EndpointError("--max-early-data takes a number of bytes (0 to refuse early data)")
    try:
        store = open_replay_store(args.replay_store, DEFAULT_REPLAY_WINDOW_SECONDS) if args.max_early_data else None
        settings = server_settings(
            identity_keys,
            default_identity=args.default_identity,
            allow_psk_ke=args.psk_ke,
            tickets=not args.no_tickets,
            accept_early_data=args.max_early_data,
            replay_store=store,
        )
    except (ValueError, ReplayStoreError) as exc:
        raise EndpointError(str(exc)) from None
    if args.ca:
        profile = ClientCertProfile(args.client_cert_profile)
        settings.client_auth_anchors = TrustAnchors.from_pem_file(args.ca, client_profile=profile)
    elif args.request_client_auth or args.require_client_auth:
        raise EndpointError(
            "--request-client-auth/--require-client-auth need --ca (the CA client certificates chain to)"
        )
    if not args.require_client_auth:
        # Answering 0-RTT data before the client is authenticated would defeat --require-client-auth.
        settings.early_data_handler = www_early_data_handler if args.www else echo_early_data_handler
    config = ServerConfig(settings)
    if args.cert:
        config.cert_chain, config.private_key = _server_certificate(args.cert, args.key)
    if args.verify_client:
        _check_verify_client(args)
        config.verify_client = True
        settings.minVersion = TLS_1_3  # the client's chain is validated in TLS 1.3 handshakes only
    return config


def _check_verify_client(args: argparse.Namespace) -> None:
    if not args.cert:
        raise EndpointError(
            "--verify-client needs --cert/--key: only a certificate handshake carries a CertificateRequest"
        )
    if not args.ca:
        raise EndpointError("--verify-client needs --ca (the CA client certificates chain to)")
    if args.ibe_key and not (args.require_client_auth or args.request_client_auth):
        raise EndpointError(
            "--verify-client with --ibe-key: an IBE-PSK handshake carries no CertificateRequest; "
            "add --require-client-auth to authenticate those clients after the handshake"
        )


def _server_certificate(cert_path: str, key_path: str) -> tuple[Any, Any]:
    """The chain and key for certificate handshakes, refused here rather than by every handshake later."""
    chain = load_tlslite_chain(cert_path)
    if not chain.getNumCerts():
        raise EndpointError(f"{cert_path}: no PEM certificate in it")
    try:
        key = parsePEMKey(Path(key_path).read_text(), private=True, implementations=["python"])
    except (SyntaxError, ValueError, TypeError) as exc:
        raise EndpointError(f"{key_path}: not an unencrypted PEM private key ({exc})") from None
    try:  # a key of another certificate would only show as every client's failed signature check
        KeySigner.from_pem_files(cert_path, key_path)
    except (TypeError, ValueError) as exc:
        raise EndpointError(f"--cert/--key: {exc}") from None
    return chain, key


def run_server(args: argparse.Namespace, host: str, port: int) -> int:
    config = _load_server_config(args)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr
    )
    application: Application = www_application if args.www else echo_application
    if args.require_client_auth:
        application = requiring_client_auth(application)
    elif args.request_client_auth:
        application = requesting_client_auth(application)
    with TLSServer(config, application, host, port) as server:
        bound_host, bound_port = server.address
        identities = ", ".join(config.settings.ibe_keyring.identities) if config.settings.ibe_keyring else "-"
        print(f"ibepsk serve: listening on {bound_host}:{bound_port} (identities: {identities})", flush=True)
        stop_on_sigterm()
        try:
            server.serve_forever()
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM
            print(f"ibepsk serve: stopping ({shut_down(server)})", file=sys.stderr)
    return 0


def _default_server_name(host: str) -> str | None:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host
    return None


def _client_config(args: argparse.Namespace, host: str) -> ClientConfig:
    settings = HandshakeSettings()
    server_name = args.servername or _default_server_name(host)
    if args.ta:
        settings.ibe_public_params = keys.load_public_params(args.ta)
        settings.ibe_identity = args.identity or server_name
        settings.ibe_epoch = EpochPeriod(args.epoch) if args.epoch else None
        if not settings.ibe_identity:
            raise EndpointError(f"{host} is an address: say which identity to encapsulate to with --identity")
    if args.psk_ke:
        settings.psk_modes = PSK_MODES_WITH_PSK_KE
    _check_cert_and_key(args)
    if args.cert:
        try:
            settings.client_auth_signer = KeySigner.from_pem_files(args.cert, args.key)
        except (TypeError, ValueError) as exc:  # e.g. an encrypted key: cryptography raises TypeError
            raise EndpointError(f"--cert/--key: {exc}") from None
        settings.client_auth_answer_limit = args.answer_limit
    checker = None
    if args.ca:
        name = server_name or args.identity
        if not name:
            raise EndpointError("--ca needs a server name to check the certificate against (--servername)")
        checker = ServerCertificateChecker(TrustAnchors.from_pem_file(args.ca), name)
    if not args.ta and not args.ca:
        raise EndpointError("give --ta (IBE-PSK) and/or --ca (certificate): nothing would authenticate the server")
    config = ClientConfig(settings, server_name=server_name, checker=checker, timeout=args.wait + 7)
    if args.cert:  # also answers a CertificateRequest in a certificate handshake (tlslite signs that one)
        config.cert_chain, config.private_key = _server_certificate(args.cert, args.key)
    return config


def _decode_text(text: str) -> bytes:
    return codecs.decode(text, "unicode_escape").encode("latin-1")


def _exchange(conn: TLSConnection, text: str | None, wait: float) -> bytes:
    if text is not None:
        conn.write(_decode_text(text))
    received = bytearray()
    conn.sock.settimeout(wait)
    deadline = time.monotonic() + wait
    try:
        while time.monotonic() < deadline:
            data = conn.read()
            if not data:
                break
            received += data
    except TimeoutError:
        pass
    return bytes(received)


def _request_key_update(conn: TLSConnection) -> None:
    """``--key-update``: send KeyUpdate(update_requested); the peer's KeyUpdate in reply is read with the data."""
    if conn.version != TLS_1_3:
        raise EndpointError(f"--key-update needs TLS 1.3 (this connection is {conn.getVersionName()})")
    run_to_completion(conn.send_keyupdate_request(KeyUpdateMessageType.update_requested), conn.sock)


def run_client(args: argparse.Namespace, host: str, port: int) -> int:
    config = _client_config(args, host)
    session = None
    for attempt in range(2 if args.reconnect else 1):
        started = time.perf_counter()
        early_data = _decode_text(args.send_early) if args.send_early and not attempt else None
        conn = connect(host, port, config, session=None if early_data else session, early_data=early_data)
        took_ms = (time.perf_counter() - started) * 1000
        label = "resumed connection" if attempt else "connection"
        print(f"{label} to {host}:{port}: {conn.getVersionName()} {describe_connection(conn)} {took_ms:.1f}ms")
        try:
            if args.key_update:
                _request_key_update(conn)
            received = _exchange(conn, args.send, args.wait)
            session = conn.session
        finally:
            conn.close()
        if received:
            sys.stdout.write(received.decode("utf-8", "replace"))
            if not received.endswith(b"\n"):
                sys.stdout.write("\n")
    return 0

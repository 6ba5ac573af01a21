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

from tlslite.constants import AlertDescription, KeyUpdateMessageType
from tlslite.errors import TLSAbruptCloseError, TLSAuthenticationError, TLSRemoteAlert
from tlslite.utils.keyfactory import parsePEMKey

from . import keys
from .aio import server as aio_server
from .client import ClientConfig, NotTLSServerError, connect, read_before
from .epochs import EpochPeriod
from .server import (
    PSK_MODES_WITH_PSK_KE,
    ServerConfig,
    describe_connection,
    echo_early_data_handler,
    load_ticket_key,
    server_settings,
    www_early_data_handler,
)
from .tls import HandshakeMode, HandshakeSettings, KeySigner, TLSConnection, TrustAnchors
from .tls.certs import ClientCertProfile, ServerCertificateChecker, load_tlslite_chain
from .tls.connection import LATTICE, TIIGER_HYBRID
from .tls.driving import run_to_completion
from .tls.psk import IbeKeyring, sni_host_name
from .tls.replay import MemoryReplayStore, ReplayStoreError, open_replay_store
from .tls.settings import DEFAULT_REPLAY_WINDOW_SECONDS
from .tls.versions import TLS_1_3


class EndpointError(ValueError):
    """A bad option for serve/connect, reported in one line by the CLI."""


def external_psks(args: argparse.Namespace) -> list[tuple[bytearray, bytearray, str]]:
    """--psk HEX --psk-identity ID [--psk-hash] as tlslite-ng ``pskConfigs`` (empty without them)."""
    if args.psk is None and args.psk_identity is None:
        return []
    if args.psk is None or args.psk_identity is None:
        raise EndpointError("--psk and --psk-identity go together")
    try:
        key = bytes.fromhex(args.psk)
    except ValueError:
        raise EndpointError("--psk is not a hex string (like openssl's -psk: e.g. 1a2b3c...)") from None
    if not key:
        raise EndpointError("--psk is empty: give the key as hex digits")
    if not args.psk_identity:
        raise EndpointError("--psk-identity is empty")
    return [(bytearray(args.psk_identity.encode()), bytearray(key), args.psk_hash)]


def _check_cert_and_key(args: argparse.Namespace) -> None:
    if bool(args.cert) != bool(args.key):
        raise EndpointError("--cert and --key go together")


def _load_server_config(args: argparse.Namespace) -> ServerConfig:
    public = keys.load_public_params(args.ta) if args.ta else None
    identity_keys = [keys.load_identity_key(path, public) for path in args.ibe_key]
    psks = external_psks(args)
    lattice_only = args.ibe_scheme == LATTICE and args.lattice_key
    if not identity_keys and not args.cert and not psks and not lattice_only:
        raise EndpointError(
            "give at least one --ibe-key (or --cert/--key for certificate handshakes, or --psk/--psk-identity)"
        )
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
            external_psks=psks,
            ticket_keys=_ticket_keys(args),
        )
    except (ValueError, ReplayStoreError) as exc:
        raise EndpointError(str(exc)) from None
    if (settings.ibe_keyring is not None or lattice_only) and args.ibe_scheme != "bf":
        settings.ibe_keyring = _lattice_keyring(args, identity_keys)
    elif args.ibe_scheme != "bf":
        raise EndpointError(f"--ibe-scheme {args.ibe_scheme} needs --ibe-key (with --lattice-key and --lattice-ta)")
    elif args.lattice_key or args.lattice_ta:
        raise EndpointError("--lattice-key/--lattice-ta go with --ibe-scheme tiiger-hybrid, lattice or hybrid")
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
    config = ServerConfig(settings, idle_timeout=args.idle_timeout)
    if args.cert:
        config.cert_chain, config.private_key = _server_certificate(args.cert, args.key)
    if args.verify_client:
        _check_verify_client(args)
        config.verify_client = True
        settings.minVersion = TLS_1_3  # the client's chain is validated in TLS 1.3 handshakes only
    return config


def _set_client_ibe_scheme(args: argparse.Namespace, settings: HandshakeSettings) -> None:
    if args.ibe_scheme != "bf":
        needs_ta = args.ibe_scheme != LATTICE
        if not args.lattice_ta or (needs_ta and not args.ta):
            needed = "--ta and --lattice-ta" if needs_ta else "--lattice-ta"
            raise EndpointError(f"--ibe-scheme {args.ibe_scheme} needs {needed}")
        settings.ibe_scheme = args.ibe_scheme
        settings.ibe_lattice_public_params = keys.load_lattice_public_params(args.lattice_ta)
    elif args.lattice_ta:
        raise EndpointError("--lattice-ta goes with --ibe-scheme tiiger-hybrid, lattice or hybrid")


def _lattice_keyring(args: argparse.Namespace, identity_keys: list[keys.IdentityKey]) -> IbeKeyring:
    """The --ibe-key keys with the --lattice-key keys next to them, for --ibe-scheme: TiigerTLS's (marker 3),
    or ibepsk's lattice and hybrid ones (the latter for identities with both keys)."""
    if not args.lattice_ta or not args.lattice_key:
        needed = "--lattice-ta and --lattice-key" + ("" if args.ibe_scheme == LATTICE else " (and --ibe-key)")
        raise EndpointError(f"--ibe-scheme {args.ibe_scheme} needs {needed}")
    lattice_public = keys.load_lattice_public_params(args.lattice_ta)
    lattice_keys = [keys.load_lattice_identity_key(path, lattice_public) for path in args.lattice_key]
    if args.ibe_scheme == TIIGER_HYBRID:
        return IbeKeyring(
            identity_keys,
            default=args.default_identity,
            tiiger_lattice_keys=lattice_keys,
            tiiger_lattice_public=lattice_public,
        )
    try:
        return IbeKeyring(
            identity_keys, default=args.default_identity, lattice_keys=lattice_keys, lattice_public=lattice_public
        )
    except ValueError as exc:
        raise EndpointError(str(exc)) from None


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
    """``ibepsk serve``: one event loop per process, ``--workers`` processes sharing the port."""
    config = _load_server_config(args)
    _check_workers(args.workers, config)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr
    )
    application: aio_server.AsyncApplication = aio_server.www_application if args.www else aio_server.echo_application
    if args.require_client_auth:
        application = aio_server.requiring_client_auth(application)
    elif args.request_client_auth:
        application = aio_server.requesting_client_auth(application)
    sockets = aio_server.listening_sockets(host, port, args.workers)
    bound_host, bound_port = sockets[0].getsockname()[:2]
    identities = ", ".join(config.settings.ibe_keyring.identities) if config.settings.ibe_keyring else "-"
    workers = f", {args.workers} workers" if args.workers > 1 else ""
    print(f"ibepsk serve: listening on {bound_host}:{bound_port} (identities: {identities}{workers})", flush=True)
    if args.workers > 1:
        failed = aio_server.serve_in_workers(config, application, sockets, _report_stopping)
        return 1 if failed else 0
    _report_stopping(aio_server.serve(config, application, sockets[0]))
    return 0


def _report_stopping(summary: str) -> None:
    print(f"ibepsk serve: stopping ({summary})", file=sys.stderr, flush=True)


def _check_workers(workers: int, config: ServerConfig) -> None:
    if workers > 1 and isinstance(config.settings.replay_store, MemoryReplayStore):
        raise EndpointError(
            "--workers with --max-early-data needs a strike register the workers share: "
            "--replay-store redis://HOST:PORT/DB (a memory store would let each worker accept a replay)"
        )


def _ticket_keys(args: argparse.Namespace) -> list[bytes] | None:
    """--ticket-key FILE (repeatable): the first encrypts new tickets, all decrypt (rotation)."""
    if not args.ticket_key:
        return None
    if args.no_tickets:
        raise EndpointError("--ticket-key and --no-tickets contradict each other")
    try:
        return [load_ticket_key(path) for path in args.ticket_key]
    except ValueError as exc:
        raise EndpointError(str(exc)) from None


def _default_server_name(host: str) -> str | None:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host
    return None


def _server_name(args: argparse.Namespace, host: str) -> str | None:
    """SNI: --servername, else HOST when it is a name, else the --identity the server is to pick its key by."""
    if args.servername:
        return str(args.servername)
    name = _default_server_name(host)
    if name is None and (args.ta or args.lattice_ta) and args.identity:
        return sni_host_name(args.identity)  # None for an identity no host name can carry: the server's default key
    return name


def _refuse_certificate_handshake(conn: TLSConnection) -> None:
    """tlslite checker for --psk without --ca: a server that ignored the PSK would go unauthenticated."""
    if conn.handshake_mode == HandshakeMode.CERTIFICATE:
        raise TLSAuthenticationError("the server did not accept --psk, and without --ca nothing else authenticates it")


def _client_config(args: argparse.Namespace, host: str) -> ClientConfig:
    settings = HandshakeSettings()
    server_name = _server_name(args, host)
    offers_ibe_psk = bool(args.ta or (args.ibe_scheme == LATTICE and args.lattice_ta))  # lattice: no BF TA
    if offers_ibe_psk:
        settings.ibe_public_params = keys.load_public_params(args.ta) if args.ta else None
        settings.ibe_identity = args.identity or server_name
        settings.ibe_epoch = EpochPeriod(args.epoch) if args.epoch else None
        if not settings.ibe_identity:
            raise EndpointError(f"{host} is an address: say which identity to encapsulate to with --identity")
    _set_client_ibe_scheme(args, settings)
    settings.pskConfigs = external_psks(args)
    if args.psk_ke:
        settings.psk_modes = PSK_MODES_WITH_PSK_KE
    _check_cert_and_key(args)
    if args.cert:
        try:
            settings.client_auth_signer = KeySigner.from_pem_files(args.cert, args.key)
        except (TypeError, ValueError) as exc:  # e.g. an encrypted key: cryptography raises TypeError
            raise EndpointError(f"--cert/--key: {exc}") from None
        settings.client_auth_answer_limit = args.answer_limit
    checker: Any = None
    if args.ca:
        name = server_name or args.identity
        if not name:
            raise EndpointError("--ca needs a server name to check the certificate against (--servername)")
        checker = ServerCertificateChecker(TrustAnchors.from_pem_file(args.ca), name)
    elif settings.pskConfigs and not offers_ibe_psk:
        checker = _refuse_certificate_handshake  # with --ta, the IBE-PSK layer refuses it itself
    if not offers_ibe_psk and not args.ca and not settings.pskConfigs:
        raise EndpointError(
            "give --ta (IBE-PSK), --psk (external PSK) and/or --ca (certificate): nothing would authenticate the server"
        )
    config = ClientConfig(settings, server_name=server_name, checker=checker, timeout=args.wait + 7)
    if args.cert:  # also answers a CertificateRequest in a certificate handshake (tlslite signs that one)
        config.cert_chain, config.private_key = _server_certificate(args.cert, args.key)
    return config


def _decode_text(text: str) -> bytes:
    """``--send``/``--send-early`` TEXT as bytes: the text in UTF-8, backslash escapes as in Python (\\xff is one
    byte). Raises ValueError in plain words; the CLI calls it while parsing, so a bad escape never gets this far."""
    try:
        decoded = codecs.decode(text, "unicode_escape")  # text is read as UTF-8: literal characters come out as bytes
    except UnicodeDecodeError as exc:
        raise ValueError(f"bad backslash escape ({exc.reason}); write \\\\ for a backslash") from None
    try:
        return decoded.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(
            r"\u and \N escapes stop at \u00ff: write the character itself (it is sent as UTF-8)"
        ) from None


class OutputClosed(Exception):
    """Whoever reads our stdout has gone (``ibepsk connect ... | head -c1``)."""


def _write_output(data: bytes) -> None:
    try:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    except BrokenPipeError:
        raise OutputClosed from None


def _silence_stdout() -> None:
    """Point stdout at /dev/null: what the closed pipe did not take stays in the buffer, and the interpreter's
    last flush would hit the pipe again (BrokenPipeError, exit status 120)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _exchange(conn: TLSConnection, data: bytes, wait: float) -> None:
    """Send ``data``; pass on to stdout what the server sends until it closes or ``wait`` seconds have passed."""
    if data:
        conn.write(data)
    deadline = time.monotonic() + wait
    while received := read_before(conn, deadline):
        _write_output(received)


class _Payload:
    """What to send on each connection: --send, or else stdin, read to EOF once the first handshake is done."""

    def __init__(self, send: str | None) -> None:
        self._data = _decode_text(send) if send is not None else None

    def __call__(self) -> bytes:
        if self._data is None:
            self._data = sys.stdin.buffer.read() if sys.stdin is not None else b""
        return self._data


def _status_line(conn: TLSConnection, target: str, reconnecting: bool, took_ms: float) -> str:
    if conn.handshake_mode == HandshakeMode.RESUMPTION:
        label = "resumed connection"
    else:
        label = "new connection (not resumed)" if reconnecting else "connection"
    return f"{label} to {target}: {conn.getVersionName()} {describe_connection(conn)} {took_ms:.1f}ms"


def _request_key_update(conn: TLSConnection) -> None:
    """``--key-update``: send KeyUpdate(update_requested); the peer's KeyUpdate in reply is read with the data."""
    if conn.version != TLS_1_3:
        raise EndpointError(f"--key-update needs TLS 1.3 (this connection is {conn.getVersionName()})")
    run_to_completion(conn.send_keyupdate_request(KeyUpdateMessageType.update_requested), conn.sock)


def run_client(args: argparse.Namespace, host: str, port: int) -> int:
    """``ibepsk connect``: status lines on stderr, the server's data on stdout.

    A reader of stdout that goes away (``| head -c1``) ends the run quietly: close_notify, exit status 0.
    """
    config = _client_config(args, host)
    payload = _Payload(args.send)
    session = None
    for attempt in range(2 if args.reconnect else 1):
        started = time.perf_counter()
        early_data = _decode_text(args.send_early) if args.send_early and not attempt else None
        conn = _handshake(host, port, config, session=None if early_data else session, early_data=early_data)
        took_ms = (time.perf_counter() - started) * 1000
        print(_status_line(conn, f"{host}:{port}", bool(attempt), took_ms), file=sys.stderr, flush=True)
        try:
            if args.key_update:
                _request_key_update(conn)
            _exchange(conn, payload(), args.wait)
            session = conn.session
        except OutputClosed:
            _silence_stdout()
            return 0
        except TLSRemoteAlert as alert:
            raise EndpointError(_after_handshake_refusal(alert, config)) from None
        finally:
            conn.close()
    return 0


def _handshake(host: str, port: int, config: ClientConfig, session: Any, early_data: bytes | None) -> TLSConnection:
    try:
        return connect(host, port, config, session=session, early_data=early_data)
    except TLSRemoteAlert as alert:
        raise EndpointError(_handshake_refusal(alert, config.settings)) from None
    except NotTLSServerError:
        raise EndpointError(f"{host}:{port}: not a TLS server (its answer is no TLS record)") from None
    except TLSAbruptCloseError:
        raise EndpointError(f"{host}:{port} closed the connection without finishing the handshake") from None
    except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):  # a reset, met on a read or a write
        raise EndpointError(
            f"{host}:{port} closed the connection without finishing the handshake (connection reset)"
        ) from None


def _alert_name(alert: TLSRemoteAlert) -> str:
    return str(AlertDescription.toStr(alert.description))


#: A PSK binder that does not verify: decrypt_error by RFC 8446 §6.2, illegal_parameter from OpenSSL 3.0.
_BAD_BINDER_ALERTS = (AlertDescription.decrypt_error, AlertDescription.illegal_parameter)


def _handshake_refusal(alert: TLSRemoteAlert, settings: HandshakeSettings) -> str:
    name = _alert_name(alert)
    if alert.description == AlertDescription.decrypt_error and settings.ibe_identity is not None:
        return (
            f"the server could not open the IBE-PSK identity for {settings.ibe_identity!r}: wrong TA public key, "
            f"or the server has no key for that identity/epoch (alert {name})"
        )
    if alert.description in _BAD_BINDER_ALERTS and settings.pskConfigs:
        identity = bytes(settings.pskConfigs[0][0]).decode(errors="replace")
        return (
            f"the server refused the handshake (alert {name}): "
            f"does its key for PSK identity {identity!r} match --psk and --psk-hash?"
        )
    return f"the server refused the handshake (alert {name})"


#: What a server's alert after the handshake usually means: it refused the client certificate we sent.
_CLIENT_CERTIFICATE_REFUSALS = {
    AlertDescription.unknown_ca: "the server does not trust the CA that issued --cert (or --cert itself)",
    AlertDescription.certificate_expired: "--cert has expired or is not valid yet (or a clock is wrong)",
    AlertDescription.bad_certificate: (
        "the server found --cert unacceptable: a bad signature, or a key usage or extended key usage "
        "that does not allow client authentication"
    ),
    AlertDescription.unsupported_certificate: "the server does not take this kind of certificate (key type)",
    AlertDescription.certificate_revoked: "--cert has been revoked",
    AlertDescription.certificate_unknown: "the server refused --cert without saying why",
    AlertDescription.access_denied: "the server knows who --cert is, and does not let it in",
    AlertDescription.decrypt_error: "the signature made with --key did not verify: is --key the key of --cert?",
}


def _after_handshake_refusal(alert: TLSRemoteAlert, config: ClientConfig) -> str:
    name = _alert_name(alert)
    answering = config.settings.client_auth_signer is not None
    if alert.description == AlertDescription.certificate_required:
        advice = "it asked more often than --answer-limit allows" if answering else "give --cert and --key"
        return f"the server requires a client certificate (alert {name}): {advice}"
    meaning = _CLIENT_CERTIFICATE_REFUSALS.get(alert.description)
    if meaning is None or not answering:
        return f"the server closed the connection with alert {name}"
    return f"the server refused the client certificate (alert {name}): {meaning}"

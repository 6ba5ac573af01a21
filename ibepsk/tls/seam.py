"""``ibepsk.TLSConnection``: the one place where ibepsk meets tlslite-ng's connection internals.

This module is the only importer of ``tlslite.tlsconnection`` and the only
subclass of its ``TLSConnection``. Each tlslite-ng method it hooks is overridden
once, here, and calls the parts in the order written in its body:

- :class:`~ibepsk.tls.connection.IbePsk` (IBE-PSK offer, opening and bookkeeping),
- :class:`~ibepsk.tls.early_data.EarlyData` (0-RTT),
- :class:`~ibepsk.tls.pha.PostHandshakeAuth` (post-handshake client authentication),
- :mod:`ibepsk.tls.accel` (cryptography-backed records, key exchange and signatures).

The parts hold state and decisions and override nothing; a decision that refuses
raises a :class:`~ibepsk.tls.alerts.TlsAlert`, which the hook turns into
tlslite's fatal ``_sendError``. Hook arguments are bound by name against
tlslite-ng's own signatures (:data:`HOOKED_SIGNATURES`), so a tlslite-ng release
that renames or reorders them fails in one place (tests/test_seam.py).
No hook waits on the socket: whatever reads or writes is a step of tlslite-ng's
generators. docs/architecture.md lists the hooks and why each exists.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Generator, Iterator
from typing import Any, ClassVar, TypeVar

from tlslite.constants import AlertDescription, AlertLevel, ExtensionType
from tlslite.messages import Alert, ClientHello
from tlslite.tlsconnection import TLSConnection as _TlsliteConnection

from ._crypto import mlkem
from ._crypto.kdf import ticket_key_and_iv
from .accel import (
    AcceleratedRecordLayer,
    accelerate_cert_params,
    accelerate_key,
    accelerate_peer_certificate,
    cryptography_key_exchange,
    with_cryptography_aeads,
)
from .alerts import TlsAlert
from .connection import IbePsk, binder_alert, newest_ticket_first, prefer_ibe_psk_suites
from .driving import is_waiting, run_to_completion
from .early_data import EarlyData, prefer_early_data_suite
from .pha import PostHandshakeAuth
from .psk import check_psk_entries
from .settings import HandshakeSettings

T = TypeVar("T")

#: Every tlslite-ng method TLSConnection overrides. Those whose arguments a hook reads are bound by name.
HOOKED_METHODS = (
    "__init__",
    "_getKEX",
    "handshakeClientCert",
    "_handshakeClientAsync",
    "handshakeServerAsync",
    "_clientSendClientHello",
    "_sendMsg",
    "_getMsg",
    "_sendError",
    "_clientTLS13Handshake",
    "_changeWriteState",
    "_queue_message",
    "_server_select_certificate",
    "_serverTLS13Handshake",
    "readAsync",
    "_handle_srv_pha",
    "_handle_pha",
    "_create_cert_msg",
    "_serverSendTickets",
    "_tryDecrypt",
    "_derive_key_iv",
)
HOOKED_SIGNATURES = {name: inspect.signature(getattr(_TlsliteConnection, name)) for name in HOOKED_METHODS}

#: tlslite-ng's ticket sealing and opening, run with cryptography's AEADs (same bytes; see accel).
_send_tickets_on_cryptography = with_cryptography_aeads(_TlsliteConnection._serverSendTickets)
_try_decrypt_on_cryptography = with_cryptography_aeads(_TlsliteConnection._tryDecrypt)


class _FinishedTranscript:
    """The transcript of a completed handshake: tlslite-ng hashes each post-handshake message into it, and nothing
    reads it (post-handshake authentication reads the copy taken at the client's Finished)."""

    __slots__ = ()

    def update(self, data: bytes | bytearray) -> None:
        """Nothing to do."""


_FINISHED_TRANSCRIPT = _FinishedTranscript()


def _bind(method: str, connection: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> inspect.BoundArguments:
    """A hooked call's arguments by name, tlslite-ng's defaults filled in (``bound.args`` includes ``self``)."""
    bound = HOOKED_SIGNATURES[method].bind(connection, *args, **kwargs)
    bound.apply_defaults()
    return bound


def _call_args(bound: inspect.BoundArguments) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The arguments to pass on to tlslite-ng's method (without ``self``)."""
    return bound.args[1:], bound.kwargs


class TLSConnection(IbePsk, EarlyData, PostHandshakeAuth, _TlsliteConnection):  # type: ignore[misc]
    """A tlslite-ng ``TLSConnection`` that speaks IBE-PSK (see :class:`ibepsk.HandshakeSettings`).

    After a handshake, ``handshake_mode`` says how the server was
    authenticated, ``ibe_identity`` which identity an IBE-PSK proved, and
    ``psk_key_exchange`` whether (EC)DHE was mixed in; ``early_data_status``
    what became of 0-RTT data (and, on a server, ``early_data`` holds it);
    ``client_auth`` who the client proved to be with a certificate after the
    handshake (:mod:`ibepsk.tls.pha`).
    Records, key exchange and signatures run on ``cryptography`` (:mod:`ibepsk.tls.accel`);
    a subclass with ``accelerated = False`` behaves like stock tlslite-ng there (for comparisons).
    """

    accelerated: ClassVar[bool] = True

    def __init__(self, sock: Any) -> None:
        """Hooks tlslite's constructor: upgrade its still unused record layer, a lighter write queue; set up each
        part's state."""
        super().__init__(sock)
        if self.accelerated:
            # tlslite-ng builds its RecordLayer in TLSRecordLayer.__init__ without a factory to hook.
            self._recordLayer.__class__ = AcceleratedRecordLayer
        # tlslite-ng's BufferedSocket queues writes in a deque, 760 bytes even when empty; a list does as well.
        self.sock._write_queue = []
        self._init_ibe_psk()
        self._init_early_data()
        self._init_pha()

    @classmethod
    def _getKEX(cls, group: int, version: tuple[int, int]) -> Any:
        """Hooks tlslite's key-exchange factory: groups cryptography implements use it.

        The hybrid ML-KEM groups always do: tlslite-ng's own needs the optional kyber-py.
        """
        use_cryptography = cls.accelerated or group in mlkem.GROUPS
        exchange = cryptography_key_exchange(group, version) if use_cryptography else None
        return exchange if exchange is not None else super()._getKEX(group, version)

    # --- session tickets ------------------------------------------------------------

    def _serverSendTickets(self, settings: Any) -> Iterator[Any]:
        """Hooks tlslite's _serverSendTickets: tickets sealed with cryptography, not pure-Python AES."""
        if not self.accelerated:
            return super()._serverSendTickets(settings)  # type: ignore[no-any-return]
        return _send_tickets_on_cryptography(self, settings)  # type: ignore[no-any-return]

    def _tryDecrypt(self, settings: Any, identity: Any = None, ticket: Any = None) -> Any:
        """Hooks tlslite's _tryDecrypt: a ticket opened with cryptography, not pure-Python AES."""
        if not self.accelerated:
            return super()._tryDecrypt(settings, identity, ticket)
        return _try_decrypt_on_cryptography(self, settings, identity, ticket)

    @classmethod
    def _derive_key_iv(cls, nonce: bytearray, user_key: bytearray, settings: Any) -> tuple[bytearray, bytearray]:
        """Hooks tlslite's ticket key derivation (four per resumption on an IBE-PSK server): one-shot HMACs."""
        if not cls.accelerated:
            return super()._derive_key_iv(nonce, user_key, settings)  # type: ignore[no-any-return]
        return ticket_key_and_iv(bytes(nonce), bytes(user_key), settings.ticketCipher)

    # --- after the handshake --------------------------------------------------------

    def _release_handshake_state(self) -> None:
        """Let go of what only the handshake needed (a held connection is about 10 KiB smaller): tlslite's
        transcripts — post-handshake authentication keeps the one hash it needs, if it can still happen — and the
        parts' handshake state, the IBE-PSK zeroed. tlslite still feeds post-handshake messages to its transcript,
        which no one reads any more (a new handshake starts a new one)."""
        self._pha_after_handshake()
        self._ibe_after_handshake()
        self._early_after_handshake()
        self._handshake_hash = _FINISHED_TRANSCRIPT
        self._pre_client_hello_handshake_hash = None
        self._certificate_verify_handshake_hash = None

    def release_idle_ciphers(self) -> None:
        """Free the record ciphers' OpenSSL state (about 2.5 KiB each way) while the connection waits for its peer;
        the next record keys them again (about 2 µs). For servers that hold many idle connections."""
        if self.accelerated:
            self._recordLayer.release_ciphers()

    # --- closing ------------------------------------------------------------------

    def send_close_notify(self) -> None:
        """Send close_notify and leave the socket open, to read what the peer still sends (tlslite's
        ``close()`` closes the socket right after its close_notify)."""
        run_to_completion(self.send_close_notify_async(), self.sock)

    def send_close_notify_async(self) -> Iterator[Any]:
        """:meth:`send_close_notify` as generator steps (yields 0/1 while it waits for the socket)."""
        return self._sendMsg(Alert().create(AlertDescription.close_notify, AlertLevel.warning))

    # --- client handshake -------------------------------------------------------

    def handshakeClientCert(self, *args: Any, early_data: bytes | None = None, **kwargs: Any) -> Any:
        """Hooks tlslite's handshakeClientCert to take ``early_data``, sent in the first flight over the IBE-PSK
        (and, when the server rejects it, once the handshake is done)."""
        self._early_data_to_send = early_data
        return super().handshakeClientCert(*args, **kwargs)

    def _handshakeClientAsync(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        """Hooks the entry of every tlslite client handshake: ibepsk settings for every hook, the caller's session
        left alone, the IBE-PSK and 0-RTT set up, the client key accelerated; rejected early data resent last,
        then what only the handshake needed released."""
        bound = _bind("_handshakeClientAsync", self, args, kwargs)
        settings = bound.arguments["settings"] = HandshakeSettings.of(bound.arguments["settings"])
        bound.arguments["session"] = newest_ticket_first(bound.arguments["session"])
        self._ibe_start_client(settings, bound.arguments["serverName"], bound.arguments["checker"])
        self._early_start_client(settings)
        if self.accelerated:
            bound.arguments["certParams"] = accelerate_cert_params(bound.arguments["certParams"])
        call_args, call_kwargs = _call_args(bound)
        return self._client_handshake(super()._handshakeClientAsync(*call_args, **call_kwargs), settings)

    def _client_handshake(self, handshake: Iterator[Any], settings: HandshakeSettings) -> Iterator[Any]:
        yield from handshake
        yield from self._early_resend_rejected(settings)
        self._release_handshake_state()

    def _clientSendClientHello(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        """Hooks tlslite's ClientHello sender: PHA offered for a Signer too; the IBE-PSK offered; the 0-RTT
        records right behind the ClientHello."""
        bound = _bind("_clientSendClientHello", self, args, kwargs)
        settings = bound.arguments["settings"]
        bound.arguments["certParams"] = self._pha_start_client(settings, bound.arguments["certParams"])
        self._ibe_offer_psk(settings, bound.arguments["session"], bound.arguments["serverName"])
        call_args, call_kwargs = _call_args(bound)
        for result in super()._clientSendClientHello(*call_args, **call_kwargs):
            if not is_waiting(result):
                yield from self._early_records_after(result, settings)
            yield result

    def _clientTLS13Handshake(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        """Hooks the start of tlslite's TLS 1.3 client key schedule, where the server's PSK choice is first known:
        tlslite checks neither the selected index nor the key exchange mode, nor our fallback policy."""
        bound = _bind("_clientTLS13Handshake", self, args, kwargs)
        arguments = bound.arguments
        yield from self._decided(
            self._ibe_check_server_choice, arguments["settings"], arguments["clientHello"], arguments["serverHello"]
        )
        call_args, call_kwargs = _call_args(bound)
        yield from super()._clientTLS13Handshake(*call_args, **call_kwargs)

    # --- messages and records -----------------------------------------------------

    def _sendMsg(self, msg: Any, randomizeFirstBlock: bool = True, update_hashes: bool = True) -> Iterator[Any]:
        """Hooks tlslite's message sender, the last stop before the wire: the ClientHello gets 0-RTT's extension,
        then the IBE marker and binders; the server notes its PSK choice from its ServerHello; a client's first
        message under handshake keys goes behind EndOfEarlyData."""
        if isinstance(msg, ClientHello):
            self._early_on_client_hello(msg)
        self._ibe_on_send(msg)
        yield from self._early_end_before_send()
        yield from super()._sendMsg(msg, randomizeFirstBlock, update_hashes)

    def _getMsg(self, expectedType: Any, secondaryType: Any = None, constructorType: Any = None) -> Iterator[Any]:
        """Hooks tlslite's message reader: a server reads accepted 0-RTT records first; then each message is
        checked by the parts in turn (see :meth:`_on_received`)."""
        yield from self._early_records_before_read()
        for result in super()._getMsg(expectedType, secondaryType, constructorType):
            if not is_waiting(result):
                yield from self._decided(self._on_received, result)
            yield result

    def _on_received(self, message: Any) -> None:
        # decode_error for an empty PSK identity or binder first, before tlslite's other pre_shared_key checks
        # (patches/0010); then 0-RTT's answer; the peer key accelerated before PHA validates the certificate.
        if isinstance(message, ClientHello) and not self._client:
            check_psk_entries(message)
        self._early_on_received(message)
        if self.accelerated:
            accelerate_peer_certificate(message)
        self._pha_on_received(message)

    def _sendError(self, alertDescription: int, errorStr: object = None) -> Iterator[Any]:
        """Hooks tlslite's fatal-alert sender: a ticket's or external PSK's binder that does not verify is
        decrypt_error, where tlslite says illegal_parameter (patches/0012)."""
        return super()._sendError(binder_alert(alertDescription, errorStr), errorStr)  # type: ignore[no-any-return]

    def _changeWriteState(self) -> None:
        """Hooks tlslite's write-key switches, where EndOfEarlyData enters the transcript (no I/O here)."""
        self._early_before_write_switch()
        super()._changeWriteState()
        self._early_after_write_switch()

    def _queue_message(self, msg: Any) -> None:
        """Hooks tlslite's handshake queue: the server decides on 0-RTT as EncryptedExtensions is written."""
        self._early_on_queue(msg)
        super()._queue_message(msg)

    # --- server handshake ---------------------------------------------------------

    def handshakeServerAsync(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        """Hooks the entry of tlslite's server handshake (``handshakeServer`` runs it too): ibepsk settings
        for every hook, whatever the caller passed; what only the handshake needed released once it is done."""
        bound = _bind("handshakeServerAsync", self, args, kwargs)
        bound.arguments["settings"] = HandshakeSettings.of(bound.arguments["settings"])
        call_args, call_kwargs = _call_args(bound)
        return self._server_handshake(super().handshakeServerAsync(*call_args, **call_kwargs))

    def _server_handshake(self, handshake: Iterator[Any]) -> Iterator[Any]:
        yield from handshake
        self._release_handshake_state()

    def _server_select_certificate(self, *args: Any, **kwargs: Any) -> Any:
        """Hooks tlslite's suite and certificate choice (incl. virtual hosts): with 0-RTT on offer and enabled the
        IBE-PSK's own suite first, with an IBE-PSK on offer SHA-256 suites only; the chosen key accelerated."""
        bound = _bind("_server_select_certificate", self, args, kwargs)
        settings, client_hello = bound.arguments["settings"], bound.arguments["client_hello"]
        suites = bound.arguments["cipher_suites"]
        if settings.accept_early_data and client_hello.getExtension(ExtensionType.early_data) is not None:
            suites = prefer_early_data_suite(suites)
        bound.arguments["cipher_suites"] = prefer_ibe_psk_suites(settings, client_hello, suites)
        call_args, call_kwargs = _call_args(bound)
        cipher_suite, scheme, chain, private_key = super()._server_select_certificate(*call_args, **call_kwargs)
        return cipher_suite, scheme, chain, accelerate_key(private_key) if self.accelerated else private_key

    def _serverTLS13Handshake(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        """Hooks tlslite's TLS 1.3 server handshake before its PSK lookup: PHA keeps the settings, 0-RTT the
        ClientHello transcript, the IBE part opens at most one identity (or refuses the hello); an empty ALPN
        list where tlslite would crash (patches/0001); tlslite's last word fixes the session for PHA."""
        bound = _bind("_serverTLS13Handshake", self, args, kwargs)
        arguments = bound.arguments
        settings, cipher_suite = arguments["settings"], arguments["cipherSuite"]
        self._pha_start_server(settings)
        self._early_start_server(settings, arguments["clientHello"], cipher_suite)
        has_certificate = arguments["serverCertChain"] is not None
        arguments["clientHello"] = yield from self._decided(
            self._ibe_prepare_server, settings, arguments["clientHello"], cipher_suite, has_certificate
        )
        if arguments["srv_alpns"] is None:
            arguments["srv_alpns"] = []
        call_args, call_kwargs = _call_args(bound)
        for result in super()._serverTLS13Handshake(*call_args, **call_kwargs):
            if result == "finished":  # tlslite's last word: the session exists, the caller stops iterating
                self._pha_after_server_handshake()
            yield result

    # --- post-handshake authentication ------------------------------------------------

    def readAsync(self, max: int | None = None, min: int = 1) -> Iterator[Any]:
        """Hooks tlslite's readAsync, whose scan of pending CertificateRequests dereferences a compress_certificate
        extension that our requests lack when none is configured (patches/0003)."""
        with self._pha_compression_scan():
            yield from super().readAsync(max, min)

    def _handle_srv_pha(self, cert: Any) -> Iterator[Any]:
        """Hooks tlslite's check of a client's answer (context, CertificateVerify, Finished) to add ours:
        compression as offered, certificate_required per request, chain validation, a fresh ticket."""
        pending = self._pha_pending_request(cert)
        if pending is None:  # not requested through request_client_auth: tlslite alone decides
            yield from super()._handle_srv_pha(cert)
            return
        request, required = pending
        path = yield from self._decided(self._pha_check_answer, cert, request, required)
        previous_chain = self.session.clientCertChain
        yield from super()._handle_srv_pha(cert)
        yield from self._pha_accept_answer(path, previous_chain)

    def _handle_pha(self, cert_request: Any) -> Iterator[Any]:
        """Replaces tlslite's answer to a CertificateRequest (see :meth:`PostHandshakeAuth._pha_answer`)."""
        try:
            yield from self._pha_answer(cert_request)
        except TlsAlert as alert:
            yield from self._sendError(alert.description, alert.reason)

    def _create_cert_msg(self, *args: Any, **kwargs: Any) -> Any:
        """Hooks tlslite's Certificate builder, which a TLS 1.3 client hands its own ClientHello instead of the
        server's CertificateRequest (patches/0009)."""
        bound = _bind("_create_cert_msg", self, args, kwargs)
        bound.arguments["request_msg"] = self._pha_certificate_request_for(
            bound.arguments["peer"], bound.arguments["request_msg"]
        )
        call_args, call_kwargs = _call_args(bound)
        return super()._create_cert_msg(*call_args, **call_kwargs)

    # --- decisions to alerts ---------------------------------------------------------

    def _decided(self, decide: Callable[..., T], *args: Any) -> Generator[Any, None, T]:
        """``decide(*args)``; a TlsAlert it raises is sent as tlslite's fatal alert (which raises TLSLocalAlert)."""
        try:
            return decide(*args)
        except TlsAlert as alert:
            yield from self._sendError(alert.description, alert.reason)
            raise

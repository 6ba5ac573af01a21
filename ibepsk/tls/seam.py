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

import contextlib
import functools
import inspect
from collections.abc import Callable, Generator, Iterator
from typing import Any, ClassVar, TypeVar

from tlslite.constants import AlertDescription, AlertLevel, ExtensionType
from tlslite.handshakehelpers import HandshakeHelpers
from tlslite.messages import Alert, ClientHello
from tlslite.tlsconnection import TLSConnection as _TlsliteConnection

from ._crypto import mlkem
from ._crypto.kdf import ticket_key_and_iv
from .accel import (
    AcceleratedRecordLayer,
    KeyScheduleHandshakeHelpers,
    accelerate_cert_params,
    accelerate_key,
    accelerate_peer_certificate,
    cryptography_key_exchange,
    on_cryptography,
    set_extension_fields_fast,
)
from .alerts import TlsAlert
from .connection import IbePsk, binder_alert, newest_ticket_first, prefer_ibe_psk_suites, tickets_to_issue
from .driving import is_waiting, run_to_completion
from .early_data import EarlyData, prefer_early_data_suite
from .pha import PostHandshakeAuth
from .psk import check_psk_entries, check_server_name
from .records import receive_application_data, send_application_data, sends_fast
from .settings import HandshakeSettings

T = TypeVar("T")

#: Every tlslite-ng method TLSConnection overrides.
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
    "writeAsync",
)
#: The hooked methods whose arguments a hook reads: bound by name (:func:`_bind`).
_BOUND_BY_NAME = (
    "_handshakeClientAsync",
    "_clientSendClientHello",
    "_clientTLS13Handshake",
    "handshakeServerAsync",
    "_server_select_certificate",
    "_serverTLS13Handshake",
    "_create_cert_msg",
)
HOOKED_SIGNATURES = {name: inspect.signature(getattr(_TlsliteConnection, name)) for name in HOOKED_METHODS}


class Parameters:
    """A hooked method's parameters after ``self``, in order, and their defaults, from tlslite-ng's signature.

    Binding a call costs a dict here, where ``inspect.Signature.bind`` costs about 15 µs, three times per
    handshake on each side.
    """

    def __init__(self, signature: inspect.Signature) -> None:
        parameters = list(signature.parameters.values())[1:]
        if any(parameter.kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD for parameter in parameters):
            raise TypeError(f"a hooked method must take plain parameters: {signature}")
        self.names = tuple(parameter.name for parameter in parameters)
        self.defaults = {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's arguments by name, in the signature's order, defaults filled in; TypeError as Python's."""
        if len(args) > len(self.names):
            raise TypeError(f"too many positional arguments: {len(args)} for {self.names}")
        arguments = dict(zip(self.names, args, strict=False))  # the excess was refused above
        for name, value in kwargs.items():
            if name not in self.names or name in arguments:
                raise TypeError(f"unexpected or repeated argument {name!r}")
            arguments[name] = value
        missing = [name for name in self.names if name not in arguments and name not in self.defaults]
        if missing:
            raise TypeError(f"missing arguments {missing}")
        return {name: arguments[name] if name in arguments else self.defaults[name] for name in self.names}


_PARAMETERS = {name: Parameters(HOOKED_SIGNATURES[name]) for name in _BOUND_BY_NAME}


class _FinishedTranscript:
    """The transcript of a completed handshake: tlslite-ng hashes each post-handshake message into it, and nothing
    reads it (post-handshake authentication reads the copy taken at the client's Finished)."""

    __slots__ = ()

    def update(self, data: bytes | bytearray) -> None:
        """Nothing to do."""


_FINISHED_TRANSCRIPT = _FinishedTranscript()


def _bind(method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """A hooked call's arguments by name (without ``self``), tlslite-ng's defaults filled in."""
    return _PARAMETERS[method].bind(args, kwargs)


#: tlslite-ng's own methods that seal or open tickets or run the key schedule, run with cryptography's AEADs and
#: the one-shot-HMAC key schedule (same bytes; see accel.on_cryptography).
_ON_CRYPTOGRAPHY: dict[str, Callable[..., Any]] = {
    name: on_cryptography(getattr(_TlsliteConnection, name))
    for name in (
        "_serverSendTickets",
        "_tryDecrypt",
        "_clientSendClientHello",
        "_clientTLS13Handshake",
        "_serverTLS13Handshake",
        "_handle_srv_pha",
    )
}


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
            set_extension_fields_fast()
        # tlslite-ng's BufferedSocket queues writes in a deque, 760 bytes even when empty; a list does as well.
        self.sock._write_queue = []
        self._init_ibe_psk()
        self._init_early_data()
        self._init_pha()
        self._ticket_openings: dict[bytes, Any] | None = None  # during a server handshake (see _tryDecrypt)

    @property
    def _handshake_helpers(self) -> type:
        """tlslite-ng's HandshakeHelpers as this connection's methods call them (the IBE part recomputes binders)."""
        return KeyScheduleHandshakeHelpers if self.accelerated else HandshakeHelpers

    def _tlslite(self, method: str) -> Callable[..., Any]:
        """tlslite-ng's own ``method`` of this connection, as ``super()`` has it; accelerated, run on cryptography."""
        if self.accelerated:
            return functools.partial(_ON_CRYPTOGRAPHY[method], self)
        return getattr(super(), method)  # type: ignore[no-any-return]

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
        """Hooks tlslite's _serverSendTickets: tickets sealed with cryptography, not pure-Python AES; after a
        resumption only ``resumption_ticket_count`` of them."""
        return self._tlslite("_serverSendTickets")(tickets_to_issue(settings, self.handshake_mode))  # type: ignore[no-any-return]

    def _tryDecrypt(self, settings: Any, identity: Any = None, ticket: Any = None) -> Any:
        """Hooks tlslite's _tryDecrypt: a ticket opened with cryptography, not pure-Python AES, and once per server
        handshake (the IBE part's PSK lookup opens it first, then tlslite's)."""
        openings = self._ticket_openings
        if openings is None or identity is None:
            return self._tlslite("_tryDecrypt")(settings, identity, ticket)
        key = bytes(identity.identity)
        if key not in openings:
            openings[key] = self._tlslite("_tryDecrypt")(settings, identity, ticket)
        return openings[key]

    @classmethod
    def _derive_key_iv(cls, nonce: bytearray, user_key: bytearray, settings: Any) -> tuple[bytearray, bytearray]:
        """Hooks tlslite's ticket key derivation (four per resumption on an IBE-PSK server): one-shot HMACs."""
        if not cls.accelerated:
            return super()._derive_key_iv(nonce, user_key, settings)  # type: ignore[no-any-return]
        return ticket_key_and_iv(bytes(nonce), bytes(user_key), settings.ticketCipher)

    # --- application data ----------------------------------------------------------

    def writeAsync(self, s: Any) -> Iterator[Any]:
        """Hooks tlslite's writeAsync: application data sealed and sent on the fast path (:mod:`.records`)."""
        if self.accelerated and sends_fast(self, s):
            yield from send_application_data(self, s)
        else:
            yield from super().writeAsync(s)

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
        left alone, the IBE-PSK and 0-RTT set up, the client key accelerated, record padding on (patches/0019);
        rejected early data resent last, then what only the handshake needed released."""
        arguments = _bind("_handshakeClientAsync", args, kwargs)
        settings = arguments["settings"] = HandshakeSettings.of(arguments["settings"])
        self._use_record_padding(settings)
        arguments["session"] = newest_ticket_first(arguments["session"])
        self._ibe_start_client(settings, arguments["serverName"], arguments["checker"])
        self._early_start_client(settings)
        if self.accelerated:
            arguments["certParams"] = accelerate_cert_params(arguments["certParams"])
        return self._client_handshake(super()._handshakeClientAsync(**arguments), settings)

    def _client_handshake(self, handshake: Iterator[Any], settings: HandshakeSettings) -> Iterator[Any]:
        with self._ibe_psk_zeroed_on_failure():
            yield from handshake
        yield from self._early_resend_rejected(settings)
        self._release_handshake_state()

    def _clientSendClientHello(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        """Hooks tlslite's ClientHello sender: PHA offered for a Signer too; the IBE-PSK offered; the 0-RTT
        records right behind the ClientHello."""
        arguments = _bind("_clientSendClientHello", args, kwargs)
        settings = arguments["settings"]
        arguments["certParams"] = self._pha_start_client(settings, arguments["certParams"])
        self._ibe_offer_psk(settings, arguments["session"], arguments["serverName"])
        for result in self._tlslite("_clientSendClientHello")(**arguments):
            if not is_waiting(result):
                yield from self._early_records_after(result, settings)
            yield result

    def _clientTLS13Handshake(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        """Hooks the start of tlslite's TLS 1.3 client key schedule, where the server's PSK choice is first known:
        tlslite checks neither the selected index nor the key exchange mode, nor our fallback policy."""
        arguments = _bind("_clientTLS13Handshake", args, kwargs)
        yield from self._decided(
            self._ibe_check_server_choice, arguments["settings"], arguments["clientHello"], arguments["serverHello"]
        )
        yield from self._tlslite("_clientTLS13Handshake")(**arguments)

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
            check_server_name(message)  # patches/0015
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
        for every hook, whatever the caller passed; record padding on (patches/0019); what only the handshake
        needed released once it is done."""
        arguments = _bind("handshakeServerAsync", args, kwargs)
        settings = arguments["settings"] = HandshakeSettings.of(arguments["settings"])
        self._use_record_padding(settings)
        return self._server_handshake(super().handshakeServerAsync(**arguments))

    def _use_record_padding(self, settings: HandshakeSettings) -> None:
        # RFC 8446 §5.4 padding is the record layer's padding_cb; tlslite-ng puts the settings' on its
        # BufferedSocket, where nothing reads it (patches/0019). The fast path leaves padded writes to tlslite-ng.
        self._recordLayer.padding_cb = settings.padding_cb

    def _server_handshake(self, handshake: Iterator[Any]) -> Iterator[Any]:
        with self._ibe_psk_zeroed_on_failure():
            yield from handshake
        self._release_handshake_state()

    @contextlib.contextmanager
    def _ibe_psk_zeroed_on_failure(self) -> Iterator[None]:
        """A handshake that fails (alert, timeout, closed mid-way) zeroes the IBE-PSK too, not only one that ends."""
        try:
            yield
        except BaseException:
            self._ibe_after_handshake()
            raise

    def _server_select_certificate(self, *args: Any, **kwargs: Any) -> Any:
        """Hooks tlslite's suite and certificate choice (incl. virtual hosts): with 0-RTT on offer and enabled the
        IBE-PSK's own suite first, with an IBE-PSK on offer SHA-256 suites only; the chosen key accelerated."""
        arguments = _bind("_server_select_certificate", args, kwargs)
        settings, client_hello = arguments["settings"], arguments["client_hello"]
        suites = arguments["cipher_suites"]
        if settings.accept_early_data and client_hello.getExtension(ExtensionType.early_data) is not None:
            suites = prefer_early_data_suite(suites)
        arguments["cipher_suites"] = prefer_ibe_psk_suites(settings, client_hello, suites)
        cipher_suite, scheme, chain, private_key = super()._server_select_certificate(**arguments)
        return cipher_suite, scheme, chain, accelerate_key(private_key) if self.accelerated else private_key

    def _serverTLS13Handshake(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        """Hooks tlslite's TLS 1.3 server handshake before its PSK lookup: PHA keeps the settings, 0-RTT the
        ClientHello transcript, the IBE part opens at most one identity (or refuses the hello); an empty ALPN
        list where tlslite would crash (patches/0001); tlslite's last word fixes the session for PHA."""
        arguments = _bind("_serverTLS13Handshake", args, kwargs)
        settings, cipher_suite = arguments["settings"], arguments["cipherSuite"]
        self._pha_start_server(settings)
        self._early_start_server(settings, arguments["clientHello"], cipher_suite)
        has_certificate = arguments["serverCertChain"] is not None
        self._ticket_openings = {}
        try:
            arguments["clientHello"] = yield from self._decided(
                self._ibe_prepare_server, settings, arguments["clientHello"], cipher_suite, has_certificate
            )
            if arguments["srv_alpns"] is None:
                arguments["srv_alpns"] = []
            for result in self._tlslite("_serverTLS13Handshake")(**arguments):
                if result == "finished":  # tlslite's last word: the session exists, the caller stops iterating
                    self._pha_after_server_handshake()
                yield result
        finally:
            self._ticket_openings = None

    # --- post-handshake authentication ------------------------------------------------

    def readAsync(self, max: int | None = None, min: int = 1) -> Iterator[Any]:
        """Hooks tlslite's readAsync: application data records on the fast path, other messages one at a time by
        tlslite (:mod:`.records`); its scan of pending CertificateRequests dereferences a compress_certificate
        extension that our requests lack when none is configured (patches/0003)."""
        with self._pha_compression_scan():
            if self.accelerated:
                yield from receive_application_data(self, min, functools.partial(super().readAsync, 0, 0))
            yield from super().readAsync(max, min)

    def _handle_srv_pha(self, cert: Any) -> Iterator[Any]:
        """Hooks tlslite's check of a client's answer (context, CertificateVerify, Finished) to add ours:
        compression as offered, certificate_required per request, chain validation, a fresh ticket."""
        pending = self._pha_pending_request(cert)
        if pending is None:  # not requested through request_client_auth: tlslite alone decides
            yield from self._tlslite("_handle_srv_pha")(cert)
            return
        request, required = pending
        path = yield from self._decided(self._pha_check_answer, cert, request, required)
        previous_chain = self.session.clientCertChain
        yield from self._tlslite("_handle_srv_pha")(cert)
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
        arguments = _bind("_create_cert_msg", args, kwargs)
        arguments["request_msg"] = self._pha_certificate_request_for(arguments["peer"], arguments["request_msg"])
        return super()._create_cert_msg(**arguments)

    # --- decisions to alerts ---------------------------------------------------------

    def _decided(self, decide: Callable[..., T], *args: Any) -> Generator[Any, None, T]:
        """``decide(*args)``; a TlsAlert it raises is sent as tlslite's fatal alert (which raises TLSLocalAlert)."""
        try:
            return decide(*args)
        except TlsAlert as alert:
            yield from self._sendError(alert.description, alert.reason)
            raise

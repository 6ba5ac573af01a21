"""0-RTT early data over an IBE-PSK (RFC 8446 §4.2.10), which tlslite-ng lacks.

The client sends application data right after its ClientHello, under the
client_early_traffic_secret of the IBE-PSK, and EndOfEarlyData once the server
has accepted. The server accepts only what §4.2.10 allows and only once per
ciphertext (a strike register, :mod:`ibepsk.tls.replay`); rejected early data
is skipped by tlslite-ng's record layer and the handshake completes normally.

tlslite-ng's key schedule and record layer run inside long generator methods,
so the pieces are hooked at the narrowest points that see them: the message
sender and reader, EncryptedExtensions as it is queued, and the client's switch
to handshake write keys. Early keys are installed by swapping the record
layer's connection states for the duration of the early-data records
(``patches/0008-tls13-early-traffic-keys.patch`` proposes an API for that).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from tlslite.constants import AlertDescription, CipherSuite, ContentType, ExtensionType, HandshakeType
from tlslite.extensions import TLSExtension
from tlslite.messages import ApplicationData, ClientHello, EncryptedExtensions, Message
from tlslite.utils.cryptomath import derive_secret, secureHMAC

from .driving import run_to_completion
from .psk import IBE_PSK_HASH
from .versions import TLS_1_3

log = logging.getLogger("ibepsk.early_data")

#: The suite TiigerTLS provisions with an IBE-PSK; 0-RTT data is only ever sent under it.
EARLY_DATA_SUITE = CipherSuite.TLS_AES_128_GCM_SHA256
#: RFC 8446 §5.1: no record carries more than 2^14 bytes of plaintext.
MAX_RECORD_PLAINTEXT = 1 << 14
END_OF_EARLY_DATA = bytes([HandshakeType.end_of_early_data, 0, 0, 0])
_HASH_BYTES = 32
_WOULD_BLOCK = (0, 1)

#: ``handler(conn, early_data) -> answer``: what to send back at once (0.5-RTT data), or None.
EarlyDataHandler = Callable[[Any, bytes], bytes | None]


class EarlyDataStatus(StrEnum):
    """What became of 0-RTT data on a connection."""

    NOT_OFFERED = "not-offered"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class EarlyDataRejection(StrEnum):
    """Why a server did not accept offered early data (for logs and tests)."""

    DISABLED = "disabled"
    NOT_IBE_PSK = "not-ibe-psk"
    NOT_FIRST_IDENTITY = "not-first-identity"
    WRONG_SUITE = "wrong-suite"
    AFTER_RETRY = "after-hello-retry"
    REPLAY = "replay"


def client_early_traffic_secret(psk: bytes, transcript: Any) -> bytearray:
    """RFC 8446 §7.1: Derive-Secret(HKDF-Extract(0, PSK), "c e traffic", ClientHello)."""
    early_secret = secureHMAC(bytearray(_HASH_BYTES), bytearray(psk), IBE_PSK_HASH)
    secret: bytearray = derive_secret(early_secret, bytearray(b"c e traffic"), transcript, IBE_PSK_HASH)
    return secret


@dataclass
class _ClientEarlyData:
    data: bytes = field(repr=False)
    offered: bool = False
    #: The early-key write state, kept between the 0-RTT records and EndOfEarlyData (sequence numbers run on).
    write_state: Any = None
    status: EarlyDataStatus = EarlyDataStatus.NOT_OFFERED
    #: EndOfEarlyData is in the transcript and goes out in front of the client's next message.
    end_due: bool = False


@dataclass
class _ServerEarlyData:
    settings: Any
    suite: int
    transcript: Any
    after_retry: bool
    secret: bytearray | None = field(default=None, repr=False)
    #: EndOfEarlyData is in the transcript: the early records are read before the client's next message.
    records_due: bool = False


class EarlyDataMixin:
    """0-RTT for :class:`ibepsk.TLSConnection`, mixed in before the IBE-PSK layer."""

    # Provided by tlslite-ng's TLSConnection and the IBE-PSK layer.
    _recordLayer: Any
    _handshake_hash: Any
    _client: bool
    _ibe_offer: Any
    _ibe_opened: Any
    handshake_mode: Any
    version: Any
    _server_selected_suite: int | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: What became of early data on this connection (both sides).
        self.early_data_status = EarlyDataStatus.NOT_OFFERED
        #: Server: the 0-RTT data received. Replayable by nature: act on it accordingly.
        self.early_data = b""
        #: Server: why offered early data was not accepted.
        self.early_data_rejection: EarlyDataRejection | None = None
        #: Server: whether ``early_data_handler`` answered (0.5-RTT data was sent).
        self.early_data_answered = False
        self._client_early: _ClientEarlyData | None = None
        self._server_early: _ServerEarlyData | None = None

    # --- client -------------------------------------------------------------

    def handshakeClientCert(self, *args: Any, early_data: bytes | None = None, **kwargs: Any) -> Any:
        """Hooks tlslite's handshakeClientCert to take ``early_data`` (sent in the first flight over the
        IBE-PSK) and, when the server rejects it, to send it again once the handshake is done."""
        settings = kwargs.get("settings", args[3] if len(args) > 3 else None)
        async_ = kwargs.get("async_", args[8] if len(args) > 8 else False)
        self.early_data_status = EarlyDataStatus.NOT_OFFERED
        self._client_early = _client_early_data(settings, early_data)
        result = super().handshakeClientCert(*args, **kwargs)  # type: ignore[misc]
        if async_:
            return self._then_resend_rejected(result, settings)
        run_to_completion(self._resend_rejected(settings), self.sock)  # type: ignore[attr-defined]
        return result

    def _then_resend_rejected(self, handshake: Iterator[Any], settings: Any) -> Iterator[Any]:
        yield from handshake
        yield from self._resend_rejected(settings)

    def _resend_rejected(self, settings: Any) -> Iterator[Any]:
        """Send rejected early data again as application data, as TiigerTLS does (unless settings say not to)."""
        early = self._client_early
        if (
            early is not None
            and early.status == EarlyDataStatus.REJECTED
            and getattr(settings, "early_data_resend", True)
        ):
            yield from self.writeAsync(early.data)  # type: ignore[attr-defined]

    def _sendMsg(self, msg: Any, randomizeFirstBlock: bool = True, update_hashes: bool = True) -> Iterator[Any]:
        """Hooks tlslite's message sender: offer 0-RTT in the first ClientHello, withdraw it after a retry;
        send EndOfEarlyData, under the early keys, in front of the client's first message under handshake keys."""
        early = self._client_early
        if isinstance(msg, ClientHello) and early is not None and self._ibe_offer is not None:
            if not early.offered:
                self._offer_early_data(msg, early)
            elif _drop_extension(msg, ExtensionType.early_data):
                self._set_client_status(early, EarlyDataStatus.REJECTED)  # RFC 8446 §4.1.2
        if self._client and early is not None and early.end_due:
            yield from self._send_end_of_early_data(early)
        yield from super()._sendMsg(msg, randomizeFirstBlock, update_hashes)  # type: ignore[misc]

    def _offer_early_data(self, client_hello: ClientHello, early: _ClientEarlyData) -> None:
        extension = client_hello.getExtension(ExtensionType.pre_shared_key)
        if extension.identities[0].identity != self._ibe_offer.ciphertext:
            return  # 0-RTT belongs to the first PSK, and a ticket came first (RFC 8446 §4.2.10)
        # Before pre_shared_key, which must stay last; the IBE layer recomputes the binders after us.
        client_hello.extensions.insert(len(client_hello.extensions) - 1, _early_data_extension())
        early.offered = True

    def _clientSendClientHello(self, settings: Any, session: Any, *args: Any) -> Iterator[Any]:
        """Hooks tlslite's ClientHello sender: send the 0-RTT records right behind the ClientHello."""
        for result in super()._clientSendClientHello(settings, session, *args):  # type: ignore[misc]
            early = self._client_early
            if isinstance(result, ClientHello) and early is not None and early.offered:
                yield from self._send_early_records(early, settings.cipherImplementations)
            yield result

    def _send_early_records(self, early: _ClientEarlyData, implementations: list[str]) -> Iterator[Any]:
        secret = client_early_traffic_secret(self._ibe_offer.psk, self._handshake_hash)
        early.write_state = self._early_state(secret, implementations)
        with self._using_state(write=early.write_state):
            for start in range(0, len(early.data), MAX_RECORD_PLAINTEXT):
                chunk = bytearray(early.data[start : start + MAX_RECORD_PLAINTEXT])
                yield from self._sendMsg(ApplicationData().create(chunk))
        self._set_client_status(early, EarlyDataStatus.REJECTED)  # until EncryptedExtensions says otherwise

    def _set_client_status(self, early: _ClientEarlyData, status: EarlyDataStatus) -> None:
        early.status = self.early_data_status = status

    def _getMsg(self, expectedType: Any, secondaryType: Any = None, constructorType: Any = None) -> Iterator[Any]:
        """Hooks tlslite's message reader: the client learns from EncryptedExtensions whether 0-RTT was taken;
        a server that accepted early data reads it (and EndOfEarlyData) before the client's next message."""
        server_early = self._server_early
        if not self._client and server_early is not None and server_early.records_due:
            server_early.records_due = False
            yield from self._receive_early_records(server_early)
        for result in super()._getMsg(expectedType, secondaryType, constructorType):  # type: ignore[misc]
            if isinstance(result, EncryptedExtensions) and self._client:
                problem = self._client_note_answer(result)
                if problem is not None:
                    yield from self._sendError(*problem)  # type: ignore[attr-defined]
            yield result

    def _client_note_answer(self, extensions: EncryptedExtensions) -> tuple[int, str] | None:
        accepted = extensions.getExtension(ExtensionType.early_data) is not None
        early = self._client_early
        if not accepted:
            return None
        if early is None or early.write_state is None:
            return AlertDescription.unsupported_extension, "server accepted early data that was not offered"
        # RFC 8446 §4.2.10: acceptance is only valid for the first PSK and the suite the data was sent under.
        if self.handshake_mode != "ibe-psk" or self._server_selected_suite != EARLY_DATA_SUITE:
            return AlertDescription.illegal_parameter, "server accepted early data under another PSK or suite"
        self._set_client_status(early, EarlyDataStatus.ACCEPTED)
        return None

    def _changeWriteState(self) -> None:
        """Hooks tlslite's write-key switches, where EndOfEarlyData enters the transcript (RFC 8446 §4.5).

        tlslite computes the next Finished right after this switch, with no I/O in between, so the
        transcript takes EndOfEarlyData now — its four bytes are fixed — and the I/O follows as steps of
        tlslite's generators: the client sends it with its next message (:meth:`_sendMsg`); the server,
        switching to application keys, reads the early records and EndOfEarlyData before the client's
        next message (:meth:`_getMsg`), answering them as they arrive (0.5-RTT).
        """
        early = self._client_early
        if self._client and early is not None and early.status == EarlyDataStatus.ACCEPTED and early.write_state:
            self._handshake_hash.update(END_OF_EARLY_DATA)
            early.end_due = True
        super()._changeWriteState()  # type: ignore[misc]
        server_early = self._server_early
        if not self._client and server_early is not None and server_early.secret is not None:
            self._handshake_hash.update(END_OF_EARLY_DATA)
            server_early.records_due = True

    def _send_end_of_early_data(self, early: _ClientEarlyData) -> Iterator[Any]:
        early.end_due = False
        message = Message(ContentType.handshake, bytearray(END_OF_EARLY_DATA))
        with self._using_state(write=early.write_state):
            yield from self._sendMsg(message, update_hashes=False)
        early.write_state = None

    # --- server -------------------------------------------------------------

    def _serverTLS13Handshake(self, settings: Any, clientHello: Any, cipherSuite: int, *args: Any) -> Iterator[Any]:
        """Hooks tlslite's TLS 1.3 server handshake: keep the ClientHello transcript the early keys derive from."""
        self.early_data_status, self.early_data, self.early_data_rejection = EarlyDataStatus.NOT_OFFERED, b"", None
        self.early_data_answered = False
        self._server_early = None
        if clientHello.getExtension(ExtensionType.early_data) is not None:
            # tlslite's HelloRetryRequest always carries a cookie, so a ClientHello with one is a retry.
            after_retry = clientHello.getExtension(ExtensionType.cookie) is not None
            self._server_early = _ServerEarlyData(settings, cipherSuite, self._handshake_hash.copy(), after_retry)
        yield from super()._serverTLS13Handshake(settings, clientHello, cipherSuite, *args)  # type: ignore[misc]

    def _server_select_certificate(self, settings: Any, client_hello: Any, cipher_suites: Any, *args: Any) -> Any:
        """Hooks tlslite's suite choice: with 0-RTT on offer and enabled, prefer the IBE-PSK's own suite."""
        offered = client_hello.getExtension(ExtensionType.early_data) is not None
        enabled = bool(getattr(settings, "accept_early_data", 0))
        if offered and enabled:
            cipher_suites = prefer_early_data_suite(cipher_suites)
        return super()._server_select_certificate(settings, client_hello, cipher_suites, *args)  # type: ignore[misc]

    def _queue_message(self, msg: Any) -> None:
        """Hooks tlslite's handshake queue: decide on 0-RTT as EncryptedExtensions is written."""
        if isinstance(msg, EncryptedExtensions) and not self._client and self._server_early is not None:
            self._server_decide(msg, self._server_early)
        super()._queue_message(msg)  # type: ignore[misc]

    def _server_decide(self, extensions: EncryptedExtensions, early: _ServerEarlyData) -> None:
        rejection = self._rejection(early)
        self.early_data_rejection = rejection
        if rejection is not None:
            self.early_data_status = EarlyDataStatus.REJECTED
            return  # tlslite's record layer skips the records (RFC 8446 §4.2.10)
        extensions.extensions = [*(extensions.extensions or []), _early_data_extension()]
        early.secret = client_early_traffic_secret(self._ibe_opened.psk, early.transcript)
        self._recordLayer.early_data_ok = False  # accepted records must decrypt: a failure is bad_record_mac
        self.early_data_status = EarlyDataStatus.ACCEPTED

    def _rejection(self, early: _ServerEarlyData) -> EarlyDataRejection | None:  # noqa: PLR0911 - one per condition
        """RFC 8446 §4.2.10's conditions, cheapest first; the strike register is consulted last."""
        settings = early.settings
        if not getattr(settings, "accept_early_data", 0):
            return EarlyDataRejection.DISABLED
        if early.after_retry:
            return EarlyDataRejection.AFTER_RETRY
        if self._ibe_opened is None or self.handshake_mode != "ibe-psk":
            return EarlyDataRejection.NOT_IBE_PSK
        if self._ibe_opened.index != 0:
            return EarlyDataRejection.NOT_FIRST_IDENTITY
        if early.suite != EARLY_DATA_SUITE:
            return EarlyDataRejection.WRONG_SUITE
        if not settings.replay_store.first_use(self._ibe_opened.ciphertext):
            return EarlyDataRejection.REPLAY
        return None

    def _receive_early_records(self, early: _ServerEarlyData) -> Iterator[Any]:
        """Read the accepted 0-RTT records up to EndOfEarlyData, answering each as it arrives."""
        assert early.secret is not None
        limit = early.settings.accept_early_data
        handler: EarlyDataHandler | None = getattr(early.settings, "early_data_handler", None)
        read_state = self._early_state(early.secret, early.settings.cipherImplementations)
        received = bytearray()
        while True:
            with self._using_state(read=read_state):
                header, parser = yield from self._next_record()
            if header.type == ContentType.change_cipher_spec and bytes(parser.bytes) == b"\x01":
                continue  # middlebox compatibility (RFC 8446 §5): TiigerTLS sends one before its 0-RTT record
            if header.type == ContentType.handshake and bytes(parser.bytes) == END_OF_EARLY_DATA:
                break  # already in the transcript (see _changeWriteState)
            if header.type != ContentType.application_data or len(received) + len(parser.bytes) > limit:
                reason = "too much early data" if header.type == ContentType.application_data else "not EOED"
                yield from self._sendError(AlertDescription.unexpected_message, reason)  # type: ignore[attr-defined]
            received += parser.bytes
            self.early_data = bytes(received)
            answer = yield from self._ask_handler(handler, bytes(parser.bytes))
            if answer:
                # The server's application keys are on: this is RFC 8446's 0.5-RTT data.
                yield from self._sendMsg(ApplicationData().create(bytearray(answer)))
                self.early_data_answered = True
        early.secret = None

    def _ask_handler(self, handler: EarlyDataHandler | None, chunk: bytes) -> Generator[int, None, bytes | None]:
        """The application's 0.5-RTT answer; a handler that fails ends the connection with internal_error."""
        if handler is None:
            return None
        try:
            return handler(self, chunk)
        except Exception as exc:  # the application's bug must not reach the peer as a bare reset
            log.exception("early_data_handler failed")
            yield from self._sendError(AlertDescription.internal_error, f"early data handler: {exc}")  # type: ignore[attr-defined]
            raise

    def _next_record(self) -> Generator[int, None, tuple[Any, Any]]:
        """tlslite's next (header, parser), passing its would-block signals through."""
        for result in self._getNextRecord():  # type: ignore[attr-defined]
            if result not in _WOULD_BLOCK:
                header, parser = result
                return header, parser
            yield result
        raise AssertionError("tlslite's record reader ended without a record")

    # --- record-layer states ----------------------------------------------------

    def _early_state(self, secret: bytearray, implementations: list[str]) -> Any:
        """A record-layer state keyed with client_early_traffic_secret, leaving tlslite's states as they were."""
        layer = self._recordLayer
        saved = (layer._pendingReadState, layer._pendingWriteState)
        try:
            layer.calcTLS1_3PendingState(EARLY_DATA_SUITE, secret, secret, implementations)
            return layer._pendingWriteState if self._client else layer._pendingReadState
        finally:
            layer._pendingReadState, layer._pendingWriteState = saved

    @contextlib.contextmanager
    def _using_state(self, read: Any = None, write: Any = None) -> Iterator[None]:
        """Read or write TLS 1.3 records with the given state (its sequence number runs on), then put tlslite's back."""
        layer = self._recordLayer
        saved, version = (layer._readState, layer._writeState), self.version
        layer._readState, layer._writeState = read or saved[0], write or saved[1]
        self.version = TLS_1_3
        try:
            yield
        finally:
            layer._readState, layer._writeState = saved
            self.version = version


def prefer_early_data_suite(cipher_suites: list[int]) -> list[int]:
    """The server's suites with EARLY_DATA_SUITE first, if they hold it.

    tlslite's list holds only the suites the settings enable for the negotiated version, so a TLS 1.2
    handshake, or settings without AES-128-GCM, leave it as it is (adding the suite would pick a TLS 1.3
    suite for TLS 1.2, or one the operator excluded). tlslite still takes the first one the client offers.
    """
    if EARLY_DATA_SUITE not in cipher_suites:
        return cipher_suites
    return [EARLY_DATA_SUITE, *(suite for suite in cipher_suites if suite != EARLY_DATA_SUITE)]


def _client_early_data(settings: Any, early_data: bytes | None) -> _ClientEarlyData | None:
    if not early_data:
        return None
    if getattr(settings, "ibe_public_params", None) is None:
        raise ValueError("early data needs an IBE-PSK (settings.ibe_public_params)")
    limit = getattr(settings, "ibe_max_early_data", MAX_RECORD_PLAINTEXT)
    if len(early_data) > limit:
        raise ValueError(f"{len(early_data)} bytes of early data exceed the limit of {limit}")
    return _ClientEarlyData(bytes(early_data))


def _drop_extension(message: Any, extension_type: int) -> bool:
    extension = message.getExtension(extension_type)
    if extension is None:
        return False
    message.extensions.remove(extension)
    return True


def _early_data_extension() -> TLSExtension:
    return TLSExtension(extType=ExtensionType.early_data).create(bytearray())

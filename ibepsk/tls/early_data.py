"""0-RTT early data over an IBE-PSK (RFC 8446 §4.2.10), which tlslite-ng lacks.

The client sends application data right after its ClientHello, under the
client_early_traffic_secret of the IBE-PSK, and EndOfEarlyData once the server
has accepted. The server accepts only what §4.2.10 allows and only once per
ciphertext (a strike register, :mod:`ibepsk.tls.replay`); rejected early data
is skipped by tlslite-ng's record layer and the handshake completes normally.

tlslite-ng's key schedule and record layer run inside long generator methods,
so :mod:`ibepsk.tls.seam` calls these pieces from the narrowest points that see
them: the message sender and reader, EncryptedExtensions as it is queued, and
the write-key switches. Every step that reads or writes is a step of
tlslite-ng's generators, so 0-RTT works on non-blocking sockets. Early keys are installed by swapping the record
layer's connection states for the duration of the early-data records
(``patches/0008-tls13-early-traffic-keys.patch`` proposes an API for that).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tlslite.constants import AlertDescription, CipherSuite, ContentType, ExtensionType, HandshakeType
from tlslite.extensions import TLSExtension
from tlslite.messages import ApplicationData, ClientHello, EncryptedExtensions, Message

from ._crypto.kdf import secure_hmac, tlslite_derive_secret
from .alerts import AlertIllegalParameter, AlertUnsupportedExtension
from .psk import IBE_PSK_HASH, OpenedIbePsk, offered_scheme
from .versions import TLS_1_3

if TYPE_CHECKING:
    from .settings import HandshakeSettings

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
    early_secret = secure_hmac(bytearray(_HASH_BYTES), bytearray(psk), IBE_PSK_HASH)
    secret: bytearray = tlslite_derive_secret(early_secret, bytearray(b"c e traffic"), transcript, IBE_PSK_HASH)
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
    settings: HandshakeSettings
    suite: int
    transcript: Any
    after_retry: bool
    secret: bytearray | None = field(default=None, repr=False)
    #: EndOfEarlyData is in the transcript: the early records are read before the client's next message.
    records_due: bool = False


def early_data_rejection(  # noqa: PLR0911 - one return per condition
    settings: HandshakeSettings, after_retry: bool, opened: OpenedIbePsk | None, suite: int
) -> EarlyDataRejection | None:
    """The server's verdict on offered early data: RFC 8446 §4.2.10's conditions, cheapest first; the strike
    register is consulted last (and only then records the first flight)."""
    if not settings.accept_early_data:
        return EarlyDataRejection.DISABLED
    if after_retry:
        return EarlyDataRejection.AFTER_RETRY
    if opened is None:
        return EarlyDataRejection.NOT_IBE_PSK
    if opened.index != 0:
        return EarlyDataRejection.NOT_FIRST_IDENTITY
    if suite != EARLY_DATA_SUITE:
        return EarlyDataRejection.WRONG_SUITE
    assert settings.replay_store is not None  # validate() provides the default one
    if not settings.replay_store.first_use(opened.ciphertext):
        return EarlyDataRejection.REPLAY
    return None


def check_early_data_answer(
    extensions: EncryptedExtensions, offered: bool, ibe_psk_chosen: bool, suite: int | None
) -> bool:
    """The client's reading of EncryptedExtensions: whether the server accepted its early data (or the alert)."""
    if extensions.getExtension(ExtensionType.early_data) is None:
        return False
    if not offered:
        raise AlertUnsupportedExtension("server accepted early data that was not offered")
    # RFC 8446 §4.2.10: acceptance is only valid for the first PSK and the suite the data was sent under.
    if not ibe_psk_chosen or suite != EARLY_DATA_SUITE:
        raise AlertIllegalParameter("server accepted early data under another PSK or suite")
    return True


class EarlyData:
    """The 0-RTT state of :class:`ibepsk.TLSConnection` and the steps the seam calls, in its order."""

    # Provided by tlslite-ng's TLSConnection and the IBE-PSK part (see ibepsk.tls.seam).
    _recordLayer: Any
    _handshake_hash: Any
    _client: bool
    _ibe_offer: Any
    _ibe_opened: Any
    handshake_mode: Any
    version: Any
    _server_selected_suite: int | None
    _sendMsg: Any
    _sendError: Any
    _getNextRecord: Any
    writeAsync: Any

    def _init_early_data(self) -> None:
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
        self._early_data_to_send: bytes | None = None

    # --- client -------------------------------------------------------------

    def _early_start_client(self, settings: HandshakeSettings) -> None:
        """Take the ``early_data`` given to the handshake call (sent in the first flight over the IBE-PSK)."""
        self.early_data_status = EarlyDataStatus.NOT_OFFERED
        self._client_early = _client_early_data(settings, self._early_data_to_send)
        self._early_data_to_send = None

    def _early_resend_rejected(self, settings: HandshakeSettings) -> Iterator[Any]:
        """Send rejected early data again as application data, as TiigerTLS does (unless settings say not to)."""
        early = self._client_early
        if early is not None and early.status == EarlyDataStatus.REJECTED and settings.early_data_resend:
            yield from self.writeAsync(early.data)

    def _early_on_client_hello(self, client_hello: ClientHello) -> None:
        """Offer 0-RTT in the first ClientHello, withdraw it after a retry (before the IBE part's binders)."""
        early = self._client_early
        if early is None or self._ibe_offer is None:
            return
        if not early.offered:
            self._offer_early_data(client_hello, early)
        elif _drop_extension(client_hello, ExtensionType.early_data):
            self._set_client_status(early, EarlyDataStatus.REJECTED)  # RFC 8446 §4.1.2

    def _offer_early_data(self, client_hello: ClientHello, early: _ClientEarlyData) -> None:
        extension = client_hello.getExtension(ExtensionType.pre_shared_key)
        if extension.identities[0].identity != self._ibe_offer.ciphertext:
            return  # 0-RTT belongs to the first PSK, and a ticket came first (RFC 8446 §4.2.10)
        # Before pre_shared_key, which must stay last; the IBE part recomputes the binders after us.
        client_hello.extensions.insert(len(client_hello.extensions) - 1, _early_data_extension())
        early.offered = True

    def _early_records_after(self, result: Any, settings: HandshakeSettings) -> Iterator[Any]:
        """The 0-RTT records, right behind the ClientHello."""
        early = self._client_early
        if isinstance(result, ClientHello) and early is not None and early.offered:
            yield from self._send_early_records(early, settings.cipherImplementations)

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

    def _early_on_received(self, message: Any) -> None:
        """The client learns from EncryptedExtensions whether 0-RTT was taken."""
        if not (isinstance(message, EncryptedExtensions) and self._client):
            return
        early = self._client_early
        offered = early is not None and early.write_state is not None
        if check_early_data_answer(message, offered, self.handshake_mode == "ibe-psk", self._server_selected_suite):
            assert early is not None
            self._set_client_status(early, EarlyDataStatus.ACCEPTED)

    def _early_before_write_switch(self) -> None:
        """Client, switching to handshake keys: EndOfEarlyData enters the transcript now (RFC 8446 §4.5).

        tlslite computes the next Finished right after this switch, with no I/O in between, so the
        transcript takes EndOfEarlyData here — its four bytes are fixed — and :meth:`_early_end_before_send`
        sends it, as a step of tlslite's generators, in front of the client's next message.
        """
        early = self._client_early
        if self._client and early is not None and early.status == EarlyDataStatus.ACCEPTED and early.write_state:
            self._handshake_hash.update(END_OF_EARLY_DATA)
            early.end_due = True

    def _early_end_before_send(self) -> Iterator[Any]:
        early = self._client_early
        if not (self._client and early is not None and early.end_due):
            return
        early.end_due = False
        message = Message(ContentType.handshake, bytearray(END_OF_EARLY_DATA))
        with self._using_state(write=early.write_state):
            yield from self._sendMsg(message, update_hashes=False)
        early.write_state = None

    # --- server -------------------------------------------------------------

    def _early_start_server(self, settings: HandshakeSettings, client_hello: Any, cipher_suite: int) -> None:
        """Keep the ClientHello transcript the early keys derive from."""
        self.early_data_status, self.early_data, self.early_data_rejection = EarlyDataStatus.NOT_OFFERED, b"", None
        self.early_data_answered = False
        self._server_early = None
        if client_hello.getExtension(ExtensionType.early_data) is not None:
            # tlslite's HelloRetryRequest always carries a cookie, so a ClientHello with one is a retry.
            after_retry = client_hello.getExtension(ExtensionType.cookie) is not None
            self._server_early = _ServerEarlyData(settings, cipher_suite, self._handshake_hash.copy(), after_retry)

    def _early_on_queue(self, msg: Any) -> None:
        """Decide on 0-RTT as EncryptedExtensions is written."""
        if isinstance(msg, EncryptedExtensions) and not self._client and self._server_early is not None:
            self._server_decide(msg, self._server_early)

    def _server_decide(self, extensions: EncryptedExtensions, early: _ServerEarlyData) -> None:
        opened = self._ibe_opened if self.handshake_mode == "ibe-psk" else None
        rejection = early_data_rejection(early.settings, early.after_retry, opened, early.suite)
        self.early_data_rejection = rejection
        if rejection is not None:
            self.early_data_status = EarlyDataStatus.REJECTED
            return  # tlslite's record layer skips the records (RFC 8446 §4.2.10)
        extensions.extensions = [*(extensions.extensions or []), _early_data_extension()]
        early.secret = client_early_traffic_secret(self._ibe_opened.psk, early.transcript)
        self._recordLayer.early_data_ok = False  # accepted records must decrypt: a failure is bad_record_mac
        self.early_data_status = EarlyDataStatus.ACCEPTED

    def _early_after_write_switch(self) -> None:
        """Server, switching to application keys: EndOfEarlyData enters the transcript now (see
        :meth:`_early_before_write_switch`); :meth:`_early_records_before_read` reads the records."""
        server_early = self._server_early
        if not self._client and server_early is not None and server_early.secret is not None:
            self._handshake_hash.update(END_OF_EARLY_DATA)
            server_early.records_due = True

    def _early_records_before_read(self) -> Iterator[Any]:
        """A server that accepted early data reads it (and EndOfEarlyData) before the client's next message,
        answering as it arrives (0.5-RTT)."""
        early = self._server_early
        if not self._client and early is not None and early.records_due:
            early.records_due = False
            yield from self._receive_early_records(early)

    def _receive_early_records(self, early: _ServerEarlyData) -> Iterator[Any]:
        """Read the accepted 0-RTT records up to EndOfEarlyData, answering each as it arrives."""
        assert early.secret is not None
        limit = early.settings.accept_early_data
        handler = early.settings.early_data_handler
        read_state = self._early_state(early.secret, early.settings.cipherImplementations)
        received = bytearray()
        while True:
            with self._using_state(read=read_state):
                header, parser = yield from self._next_record()
            if header.type == ContentType.change_cipher_spec and bytes(parser.bytes) == b"\x01":
                continue  # middlebox compatibility (RFC 8446 §5): TiigerTLS sends one before its 0-RTT record
            if header.type == ContentType.handshake and bytes(parser.bytes) == END_OF_EARLY_DATA:
                break  # already in the transcript (see _early_after_write_switch)
            if header.type != ContentType.application_data or len(received) + len(parser.bytes) > limit:
                reason = "too much early data" if header.type == ContentType.application_data else "not EOED"
                yield from self._sendError(AlertDescription.unexpected_message, reason)
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
            yield from self._sendError(AlertDescription.internal_error, f"early data handler: {exc}")
            raise

    def _next_record(self) -> Generator[int, None, tuple[Any, Any]]:
        """tlslite's next (header, parser), passing its would-block signals through."""
        for result in self._getNextRecord():
            if result not in _WOULD_BLOCK:
                header, parser = result
                return header, parser
            yield result
        raise AssertionError("tlslite's record reader ended without a record")

    # --- once the handshake is over ------------------------------------------------

    def _early_after_handshake(self) -> None:
        """0-RTT is over once the handshake is (rejected data was resent, accepted data read): let go of its keys,
        settings and transcript copy; ``early_data_status``, ``early_data`` and ``early_data_rejection`` stay."""
        self._server_early = None
        self._client_early = None

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


def _client_early_data(settings: HandshakeSettings, early_data: bytes | None) -> _ClientEarlyData | None:
    if not early_data:
        return None
    if offered_scheme(settings) is None:
        raise ValueError("early data needs an IBE-PSK (settings.ibe_public_params, or the lattice TA's)")
    if len(early_data) > settings.ibe_max_early_data:
        raise ValueError(f"{len(early_data)} bytes of early data exceed the limit of {settings.ibe_max_early_data}")
    return _ClientEarlyData(bytes(early_data))


def _drop_extension(message: Any, extension_type: int) -> bool:
    extension = message.getExtension(extension_type)
    if extension is None:
        return False
    message.extensions.remove(extension)
    return True


def _early_data_extension() -> TLSExtension:
    return TLSExtension(extType=ExtensionType.early_data).create(bytearray())

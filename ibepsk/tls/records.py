"""A fast path for TLS 1.3 application data records protected by cryptography's AEADs.

tlslite-ng sends and receives each record through a chain of generators (``writeAsync`` →
``_sendMsg`` → ``_sendMsgThroughSocket`` → ``sendRecord`` → ``_encryptThenSeal``, one socket send
per record; ``readAsync`` → ``_getMsg`` → ``_getNextRecord`` → ``recvRecord`` → ``_sockRecvAll``,
with a message object per record). For the records bulk transfer is made of — application data
under the current TLS 1.3 traffic keys, sealed with :mod:`ibepsk.tls._crypto.aead` — the seam
(``writeAsync``, ``readAsync``) runs the functions here instead. The bytes on the wire are
tlslite-ng's (RFC 8446 §5.2: header ``17 03 03 length``, inner plaintext data ‖ 0x17, no padding,
since tlslite-ng pads only when its record layer has a ``padding_cb`` — and then this path stays
out), and each record advances the sequence number in tlslite-ng's own connection state, so
whatever tlslite-ng sends or reads next (KeyUpdate, alerts, NewSessionTicket, post-handshake
authentication) carries on from the right nonce.

Reading takes a record only once all of it is in tlslite-ng's ``BufferedSocket`` buffer, opens and
recognises it as application data: then, and only then, the record leaves the buffer and the
sequence number advances. Any other record (a handshake message, an alert, a record that does not
authenticate, a CCS, one too long) stays in the buffer, untouched, for tlslite-ng's own read, which
sees exactly what it would have seen without this path. Socket reads follow ``BufferedSocket``'s
rule (ask for at least 4 KiB, or what the record still needs), so the bytes held in Python memory
— which ``select()`` on the socket cannot see — are the same as with stock tlslite-ng: raw bytes
of at most the current record plus under 4 KiB, and decrypted data that a ``read(max=...)`` left.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from cryptography.exceptions import InvalidTag
from tlslite.bufferedsocket import BufferedSocket

from ._crypto.aead import CryptographyAead
from .driving import is_waiting

APPLICATION_DATA = 0x17
HEADER_LENGTH = 5
_LEGACY_VERSION = (3, 3)
_HEADER_START = bytes((APPLICATION_DATA, *_LEGACY_VERSION))
_INNER_TYPE = bytes((APPLICATION_DATA,))
#: TLSCiphertext may exceed the plaintext limit by at most 256 bytes (RFC 8446 §5.2).
_MAX_EXPANSION = 256
#: tlslite-ng's BufferedSocket asks the socket for at least this much.
_READ_SIZE = 4096
#: Records sealed before each socket send of a large write (bounds the memory one write takes).
_RECORDS_PER_SEND = 16
#: Near the end of the 64-bit sequence number space tlslite-ng's own path takes over (and refuses to wrap); the
#: margin covers the records of any one write.
_LAST_FAST_SEQUENCE_NUMBER = 2**64 - 2**32
_WAITING_TO_READ = 0
_WAITING_TO_WRITE = 1


# --- decisions ------------------------------------------------------------------------------


def _on_cryptography_tls13(conn: Any, state: Any) -> bool:
    return (
        bool(conn._recordLayer._is_tls13_plus())
        and isinstance(state.encContext, CryptographyAead)
        and state.seqnum < _LAST_FAST_SEQUENCE_NUMBER
    )


def sends_fast(conn: Any, data: object) -> bool:
    """Whether a write of ``data`` can go out on the fast path: bytes, TLS 1.3 established, our AEAD, nothing
    queued, no padding."""
    layer = conn._recordLayer
    return (
        isinstance(data, bytes | bytearray)
        and not conn.closed
        and _on_cryptography_tls13(conn, layer._writeState)
        and layer.padding_cb is None
        and conn._buffer_content_type is None
        and isinstance(conn.sock, BufferedSocket)
        and not conn.sock.buffer_writes
    )


def reads_fast(conn: Any) -> bool:
    """Whether reads may take records on the fast path: TLS 1.3 established, our AEAD."""
    return not conn.closed and _on_cryptography_tls13(conn, conn._recordLayer._readState)


def _next_record_is_a_message_start(conn: Any) -> bool:
    """No handshake message half read (its rest comes next) and no rejected 0-RTT to skip."""
    return not any(conn._defragmenter.buffers.values()) and not conn._recordLayer.early_data_ok


# --- records --------------------------------------------------------------------------------


def _nonce(state: Any) -> bytes:
    """The next record's nonce: the IV XOR the sequence number (RFC 8446 §5.3)."""
    sequence: int = state.seqnum
    return (int.from_bytes(state.fixedNonce, "big") ^ sequence).to_bytes(len(state.fixedNonce), "big")


def seal_records(state: Any, data: memoryview, record_size: int) -> bytes:
    """``data`` as application data records of at most ``record_size`` bytes each (one record if empty, as
    tlslite-ng sends it), the sequence number advanced by one per record."""
    aead: CryptographyAead = state.encContext
    overhead = 1 + aead.tagLength
    pieces: list[bytes] = []
    start = 0
    while True:
        fragment = data[start : start + record_size]
        header = _HEADER_START + (len(fragment) + overhead).to_bytes(2, "big")
        pieces += (header, aead.primitive.encrypt(_nonce(state), b"".join((fragment, _INNER_TYPE)), header))
        state.seqnum += 1
        start += record_size
        if start >= len(data):
            return b"".join(pieces)


def declared_length(header: bytes | bytearray) -> int:
    """The length, header included, that a record header (5 bytes at least) declares, whatever its type."""
    return HEADER_LENGTH + ((header[3] << 8) | header[4])


def record_length(header: bytearray, plaintext_limit: int) -> int | None:
    """The length, header included, of the record ``header`` starts (5 bytes at least); None when it is no
    application data record of a sane length, for tlslite-ng to deal with."""
    if header[0] != APPLICATION_DATA or (header[1], header[2]) != _LEGACY_VERSION:
        return None
    length = declared_length(header)
    return length if length <= HEADER_LENGTH + plaintext_limit + _MAX_EXPANSION else None


def open_application_data(state: Any, pending: bytearray, length: int, plaintext_limit: int) -> bytes | None:
    """The data of the ``length`` bytes long record at the start of ``pending`` if it is application data, which
    then leaves ``pending`` (and the sequence number advances); None otherwise, with nothing changed."""
    aead: CryptographyAead = state.encContext
    try:
        with memoryview(pending) as record:
            inner = aead.primitive.decrypt(_nonce(state), record[HEADER_LENGTH:length], record[:HEADER_LENGTH])
    except InvalidTag:
        return None  # tlslite-ng reads it again and sends bad_record_mac
    if len(inner) > plaintext_limit + 1 or inner[-1:] != _INNER_TYPE:
        return None  # too long, padded, or another content type
    del pending[:length]
    state.seqnum += 1
    return inner[:-1]


# --- I/O: steps of tlslite-ng's generators (yield 0 to wait for reading, 1 for writing) ---------------


def send_application_data(conn: Any, data: bytes | bytearray) -> Iterator[int]:
    """``conn.writeAsync(data)`` on the fast path (``sends_fast(conn, data)`` holds)."""
    record_size = conn.recordSize
    try:
        with memoryview(data) as view:
            step = record_size * _RECORDS_PER_SEND
            start = 0
            while True:
                wire = seal_records(conn._recordLayer._writeState, view[start : start + step], record_size)
                yield from _send_all(conn.sock, wire)
                start += step
                if start >= len(view):
                    return
    except Exception:
        conn._shutdown(conn.ignoreAbruptClose)  # as tlslite-ng's writeAsync does
        raise


def _send_all(sock: BufferedSocket, wire: bytes) -> Iterator[int]:
    sent = 0
    with memoryview(wire) as view:
        while sent < len(wire):
            try:
                sent += sock.send(view[sent:])
            except BlockingIOError:
                yield _WAITING_TO_WRITE


def receive_application_data(
    conn: Any, min_length: int, read_one_message: Callable[[], Iterator[Any]]
) -> Iterator[int]:
    """Read into ``conn._readBuffer`` until it holds ``min_length`` bytes (at least one): application data
    records on the fast path, any other message through ``read_one_message`` (tlslite-ng's ``readAsync(0, 0)``,
    which reads one message and handles it as tlslite-ng does). With ``min_length`` 0, one message at most:
    tlslite-ng's caller reads it if it is not application data."""
    wanted = max(min_length, 1)
    while len(conn._readBuffer) < wanted and reads_fast(conn):
        if _next_record_is_a_message_start(conn):
            try:
                yield from _receive(conn, wanted)
            except Exception:
                conn._shutdown(False)  # as tlslite-ng's readAsync does
                raise
            if len(conn._readBuffer) >= wanted:
                return
        if min_length == 0:
            return
        yield from _tlslite_message(conn, read_one_message)


def _tlslite_message(conn: Any, read_one_message: Callable[[], Iterator[Any]]) -> Iterator[int]:
    # readAsync(0, 0) reads a message only while its buffer is empty: ours waits aside meanwhile.
    kept, conn._readBuffer = conn._readBuffer, b""
    try:
        for step in read_one_message():
            if is_waiting(step):
                yield step
    finally:
        conn._readBuffer = kept + conn._readBuffer


def _receive(conn: Any, wanted: int) -> Iterator[int]:
    """Application data records into ``conn._readBuffer`` until it holds ``wanted`` bytes, the next record is
    tlslite-ng's or the peer closed the socket (tlslite-ng then reads what is left and reports it). Each socket
    read asks, as the BufferedSocket does, for at least 4 KiB or what the record still lacks."""
    buffered: BufferedSocket = conn.sock
    pending: bytearray = buffered._read_buffer
    limit = conn._recordLayer.recv_record_limit
    length: int | None = 0  # of the record at the start of ``pending``, once its header is there
    while len(conn._readBuffer) < wanted:
        if not length and len(pending) >= HEADER_LENGTH:
            length = record_length(pending, limit)
            if length is None:
                return
        if length and len(pending) >= length:
            data = open_application_data(conn._recordLayer._readState, pending, length, limit)
            if data is None:
                return
            conn._readBuffer += data
            length = 0
            continue
        try:
            received = buffered.socket.recv(max(_READ_SIZE, (length or HEADER_LENGTH) - len(pending)))
        except BlockingIOError:
            yield _WAITING_TO_READ
            continue
        if not received:
            return
        pending += received

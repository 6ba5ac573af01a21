"""Post-handshake client authentication (RFC 8446 §4.6.2) for ``ibepsk.TLSConnection``.

An IBE-PSK handshake authenticates the server (only the holder of the
identity key can open the PSK) but says nothing about the client. The server
asks for a certificate afterwards, whenever it needs to know who is there.

Server: ``settings.client_auth_anchors``, then ``conn.request_client_auth()``
and ``conn.wait_for_client_auth()``; the result is ``conn.client_auth``. The same
anchors validate a certificate requested inside a TLS 1.3 certificate handshake
(``handshakeServer(reqCert=True)``), which tlslite-ng accepts unchecked.
Client: ``settings.client_auth_signer`` (any :class:`~ibepsk.tls.signer.Signer`)
or the certChain/privateKey given to ``handshakeClientCert``.

tlslite-ng has the messages; this part adds the policy around them (called from
:mod:`ibepsk.tls.seam`) and works around the tlslite-ng bugs fixed upstream by
``patches/0002`` to ``0006`` and ``patches/0009``. See docs/pha.md.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import secrets
from collections import Counter
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from cryptography import x509
from tlslite.constants import (
    AlertDescription,
    CertificateCompressionAlgorithm,
    CertificateType,
    ExtensionType,
)
from tlslite.extensions import CompressedCertificateExtension
from tlslite.messages import (
    Certificate,
    CertificateRequest,
    CertificateVerify,
    ClientHello,
    CompressedCertificate,
    Finished,
)
from tlslite.x509certchain import X509CertChain

from ._crypto.kdf import secure_hmac, tlslite_hkdf_expand_label
from .alerts import (
    AlertBadCertificate,
    AlertCertificateRequired,
    AlertDecodeError,
    AlertIllegalParameter,
    AlertMissingExtension,
    AlertUnexpectedMessage,
    TlsAlert,
)
from .driving import is_waiting, run_to_completion
from .errors import ClientCertificateError, PostHandshakeAuthError
from .signer import (
    SignatureScheme,
    Signer,
    SignerError,
    TlsliteKeySigner,
    certificates_from_tlslite,
    certificates_to_tlslite,
)
from .versions import TLS_1_3

if TYPE_CHECKING:
    from .settings import HandshakeSettings

CONTEXT_BYTES = 32
#: What a client's CertificateVerify signs before the transcript hash (RFC 8446 §4.4.3).
CLIENT_SIGNATURE_PREFIX = b" " * 64 + b"TLS 1.3, client CertificateVerify\x00"


class ClientAuthMethod(StrEnum):
    """How the client's identity reached this connection."""

    HANDSHAKE = "handshake"
    POST_HANDSHAKE = "post-handshake"
    RESUMPTION = "resumption"


@dataclass(frozen=True)
class ClientAuthentication:
    """Who the client proved to be: the validated chain (leaf first, trust anchor last), when, and how."""

    chain: tuple[x509.Certificate, ...]
    authenticated_at: datetime.datetime
    method: ClientAuthMethod

    @property
    def certificate(self) -> x509.Certificate:
        return self.chain[0]

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string()


class ClientChainVerifier(Protocol):
    """What ``settings.client_auth_anchors`` must do (:class:`~ibepsk.tls.certs.TrustAnchors` does)."""

    def verify_client(self, chain: Sequence[x509.Certificate]) -> list[x509.Certificate]:
        """Return the validated path, or raise ClientCertificateError with the alert to send."""


class _Placeholder:
    """A key no received context can equal (contexts are bytes)."""


_COMPRESSION_SCAN_KEY = _Placeholder()


class PostHandshakeAuth:
    """Post-handshake client authentication: the state of :class:`ibepsk.TLSConnection`, its public API, and
    the steps the seam calls.

    Server side: :meth:`request_client_auth`, :meth:`wait_for_client_auth`,
    :attr:`client_auth` (each with a generator twin for non-blocking sockets).
    Client side: counters ``certificate_requests_received`` / ``certificate_requests_answered``.
    """

    # Provided by tlslite-ng's TLSConnection (see ibepsk.tls.seam).
    _client: bool
    _pha_supported: Any
    _client_keypair: Any
    _cert_requests: dict[Any, Any]
    _first_handshake_hashes: Any
    _sendMsg: Any
    _sendMsgs: Any
    _sendError: Any
    _create_cert_msg: Any
    _getPRFParams: Any
    _serverSendTickets: Any
    _sigHashesToList: Any
    closed: bool
    version: Any
    session: Any
    serverSigAlg: Any
    sock: Any
    readAsync: Any
    unread: Any

    def _init_pha(self) -> None:
        self._first_handshake_hashes = None  # tlslite-ng sets it as a TLS 1.3 handshake ends
        self.client_auth: ClientAuthentication | None = None
        self.certificate_requests_received = 0
        self.certificate_requests_answered = 0
        self._pha_settings: HandshakeSettings | None = None
        self._pha_signer: Signer | None = None
        self._pha_required: dict[bytes, bool] = {}
        self._pha_last_answer: ClientAuthentication | None = None
        self._last_certificate_request: Any = None
        self._handshake_client_path: list[x509.Certificate] | None = None
        #: Called with each answer to :meth:`request_client_auth` once it is accepted (None: the client declined),
        #: as it is processed — e.g. to log it. It runs inside a read, so it must not block.
        self.on_client_auth: Callable[[ClientAuthentication | None], None] | None = None

    # --- server: public API ---------------------------------------------------

    @property
    def post_handshake_auth_offered(self) -> bool:
        """Whether the client offered post_handshake_auth: only then may a server ask it for a certificate."""
        return bool(self._pha_supported)

    @property
    def client_auth_pending(self) -> bool:
        """Whether a request sent by :meth:`request_client_auth` is still unanswered."""
        return bool(self._pha_required)

    def request_client_auth(self, *, required: bool = True) -> bytes:
        """Ask the client for a certificate now; returns the request's 32-byte context.

        The answer is processed by a later ``read()`` or by
        :meth:`wait_for_client_auth`. A ``required`` request that the client
        declines ends the connection with certificate_required; otherwise a
        declined request leaves :attr:`client_auth` as it was. Raises
        PostHandshakeAuthError when the client cannot be asked (it did not offer
        post_handshake_auth, no ``client_auth_anchors``, not TLS 1.3).
        """
        context: bytes = run_to_completion(self.request_client_auth_async(required=required), self.sock)
        return context

    def request_client_auth_async(self, *, required: bool = True) -> Iterator[Any]:
        """:meth:`request_client_auth` as generator steps, like tlslite's ``readAsync``: yields 0/1 while it
        waits for the socket, then the context. PostHandshakeAuthError is raised at once, by the call."""
        request = self._certificate_request(self._settings_for_request())
        context = bytes(request.certificate_request_context)
        self._cert_requests[context] = request
        self._pha_required[context] = required
        return self._then_yield(self._sendMsg(request), context)

    def abort_with_alert(self, description: int, reason: str) -> None:
        """Send a fatal alert (under the current keys) and close; raises the ``TLSLocalAlert`` that was sent."""
        run_to_completion(self.abort_with_alert_async(description, reason), self.sock)

    def abort_with_alert_async(self, description: int, reason: str) -> Iterator[Any]:
        """:meth:`abort_with_alert` as generator steps (yields 0/1, then raises the ``TLSLocalAlert``)."""
        return self._sendError(description, reason)  # type: ignore[no-any-return]

    def wait_for_client_auth(self) -> ClientAuthentication | None:
        """Read until the client has answered every pending request; return the last answer (None: declined).

        Application data that arrives first stays readable. A refused answer
        raises the ``TLSLocalAlert`` that was sent to the client.
        """
        answer: ClientAuthentication | None = run_to_completion(self.wait_for_client_auth_async(), self.sock)
        return answer

    def wait_for_client_auth_async(self) -> Iterator[Any]:
        """:meth:`wait_for_client_auth` as generator steps: yields 0/1 while it waits, then the last answer.
        PostHandshakeAuthError for no pending request is raised at once, by the call."""
        if not self._pha_required:
            raise PostHandshakeAuthError("no certificate request is pending")
        return self._reading_client_auth()

    def _reading_client_auth(self) -> Iterator[Any]:
        arrived = bytearray()
        while self._pha_required:
            if self.closed:
                raise PostHandshakeAuthError("the client closed the connection before answering")
            for step in self.readAsync(min=0):
                if is_waiting(step):
                    yield step
                else:
                    arrived += step
        if arrived:
            self.unread(bytes(arrived))
        yield self._pha_last_answer

    @staticmethod
    def _then_yield(steps: Iterator[Any], result: Any) -> Iterator[Any]:
        yield from steps
        yield result

    def _settings_for_request(self) -> HandshakeSettings:
        if self._client:
            raise PostHandshakeAuthError("only a server can request client authentication")
        if self.closed or self.version != TLS_1_3:
            raise PostHandshakeAuthError("post-handshake authentication needs an established TLS 1.3 connection")
        if not self._pha_supported:
            raise PostHandshakeAuthError("the client did not offer post_handshake_auth, so it cannot be asked")
        if self._pha_settings is None or self._pha_settings.client_auth_anchors is None:
            raise PostHandshakeAuthError("set HandshakeSettings.client_auth_anchors to validate client chains")
        return self._pha_settings

    def _certificate_request(self, settings: HandshakeSettings) -> Any:
        """A CertificateRequest with a fresh context, the TLS 1.3 schemes we verify (patches/0004), and a
        compress_certificate extension only when an algorithm is configured (patches/0003)."""
        schemes = tls13_schemes(self, settings)
        if not schemes:
            raise PostHandshakeAuthError("the settings enable no TLS 1.3 signature scheme")
        algorithms = [
            getattr(CertificateCompressionAlgorithm, name) for name in settings.certificate_compression_receive
        ]
        extensions = [CompressedCertificateExtension().create(algorithms)] if algorithms else []
        return CertificateRequest(self.version).create(
            context=secrets.token_bytes(CONTEXT_BYTES),
            sig_algs=[scheme.tlslite for scheme in schemes],
            extensions=extensions,
        )

    # --- server: steps the seam calls ------------------------------------------

    def _pha_start_server(self, settings: HandshakeSettings) -> None:
        """Keep the handshake's settings for PHA."""
        self._pha_settings = settings
        self._handshake_client_path = None

    def _pha_after_server_handshake(self) -> None:
        """tlslite's last word ("finished"): the session exists; fix it and note how the client is known."""
        if self._handshake_client_path is not None:  # its CertificateVerify and Finished passed too
            self.client_auth = ClientAuthentication(
                tuple(self._handshake_client_path), datetime.datetime.now(datetime.UTC), ClientAuthMethod.HANDSHAKE
            )
        if self.serverSigAlg is not None:
            return  # the server signed: a certificate handshake
        # A PSK handshake sends no certificate, whatever tlslite was given (patches/0006).
        self.session.serverCertChain = None
        self._restore_client_identity()

    def _restore_client_identity(self) -> None:
        """A resumed ticket that carries a client chain (issued after PHA) authenticates the client again."""
        chain = self.session.clientCertChain
        anchors = self._pha_settings.client_auth_anchors if self._pha_settings is not None else None
        if not chain or not chain.getNumCerts() or anchors is None:
            return
        try:
            path = anchors.verify_client(certificates_from_tlslite(chain))
        except ClientCertificateError:
            self.session.clientCertChain = None  # expired or no longer trusted since the ticket was issued
            return
        self.client_auth = ClientAuthentication(
            tuple(path), datetime.datetime.now(datetime.UTC), ClientAuthMethod.RESUMPTION
        )

    def _pha_compression_scan(self) -> contextlib.AbstractContextManager[None]:
        """tlslite's readAsync dereferences a compress_certificate extension of the pending CertificateRequests
        that ours lack when none is configured (patches/0003): while no pending request offers compression, the
        scan also sees a placeholder that does; a CompressedCertificate is then refused by
        :meth:`_pha_check_answer`, since no request offered it."""
        if self._client or not self._cert_requests or self._a_pending_request_offers_compression():
            return contextlib.nullcontext()
        return self._with_compression_placeholder()

    @contextlib.contextmanager
    def _with_compression_placeholder(self) -> Iterator[None]:
        self._cert_requests[_COMPRESSION_SCAN_KEY] = _compression_placeholder()
        try:
            yield
        finally:
            self._cert_requests.pop(_COMPRESSION_SCAN_KEY, None)

    def _a_pending_request_offers_compression(self) -> bool:
        return any(
            request.getExtension(ExtensionType.compress_certificate) is not None
            for request in self._cert_requests.values()
        )

    def _pha_pending_request(self, cert: Any) -> tuple[Any, bool] | None:
        """The request ``cert`` answers and whether it was required; None when tlslite alone decides (not
        requested through request_client_auth)."""
        context = bytes(cert.certificate_request_context)
        required = self._pha_required.pop(context, None)
        return None if required is None else (self._cert_requests[context], required)

    def _pha_check_answer(self, cert: Any, request: Any, required: bool) -> list[x509.Certificate] | None:
        """The validated path of the client's chain (None: declined), or the alert that refuses the answer."""
        check_compression(cert, request)
        if _has_certificates(cert.cert_chain):
            return self._validate_client_chain(cert.cert_chain)
        if required:
            raise AlertCertificateRequired("the client declined a required certificate request")
        return None

    def _pha_accept_answer(self, path: list[x509.Certificate] | None, previous_chain: Any) -> Iterator[Any]:
        """After tlslite checked the answer's CertificateVerify and Finished: record who the client is."""
        if path is None:
            self.session.clientCertChain = previous_chain  # declining leaves the identity as it was
            self._pha_last_answer = None
            self._report_client_auth(None)
            return
        self.client_auth = self._pha_last_answer = ClientAuthentication(
            tuple(path), datetime.datetime.now(datetime.UTC), ClientAuthMethod.POST_HANDSHAKE
        )
        self._report_client_auth(self.client_auth)
        yield from self._send_ticket_with_client_identity()

    def _report_client_auth(self, answer: ClientAuthentication | None) -> None:
        if self.on_client_auth is not None:
            self.on_client_auth(answer)

    def _pha_on_received(self, message: Any) -> None:
        """A client remembers the last CertificateRequest (see :meth:`_pha_certificate_request_for`); a server
        validates a client's Certificate in a TLS 1.3 handshake as it arrives, which tlslite does not."""
        if isinstance(message, CertificateRequest):
            self._last_certificate_request = message
        elif self._is_handshake_client_certificate(message):
            self._handshake_client_path = self._check_handshake_certificate(message)

    def _is_handshake_client_certificate(self, message: Any) -> bool:
        # During the handshake tlslite keeps the connection "closed"; afterwards readAsync hands a client's
        # Certificate to _handle_srv_pha.
        return not self._client and self.closed and isinstance(message, Certificate | CompressedCertificate)

    def _check_handshake_certificate(self, cert: Any) -> list[x509.Certificate] | None:
        """The validated path of a Certificate requested in the handshake, or its alert; None when tlslite alone
        decides (no ``client_auth_anchors``, or not TLS 1.3)."""
        if self._pha_settings is None or self._pha_settings.client_auth_anchors is None or self.version != TLS_1_3:
            return None
        if not _has_certificates(cert.cert_chain):  # the anchors make the requested certificate required
            raise AlertCertificateRequired("the client sent no certificate in the handshake")
        return self._validate_client_chain(cert.cert_chain)

    def _validate_client_chain(self, chain: X509CertChain) -> list[x509.Certificate]:
        assert self._pha_settings is not None and self._pha_settings.client_auth_anchors is not None
        anchors: ClientChainVerifier = self._pha_settings.client_auth_anchors
        try:
            return anchors.verify_client(certificates_from_tlslite(chain))
        except ClientCertificateError as exc:
            raise TlsAlert.of(exc.alert, exc.reason) from None
        except ValueError as exc:  # DER that tlslite accepted and cryptography does not
            raise AlertBadCertificate(f"unreadable client certificate: {exc}") from None

    def _send_ticket_with_client_identity(self) -> Iterator[Any]:
        """One NewSessionTicket that records the client's chain: resuming with it restores the identity."""
        settings = self._pha_settings
        if settings is None or not settings.ticketKeys:
            return
        one_ticket = copy.copy(settings)
        # exactly one, also after a resumption (resumption_ticket_count limits the handshake's tickets only)
        one_ticket.ticket_count = one_ticket.resumption_ticket_count = 1
        yield from self._serverSendTickets(one_ticket)

    # --- both sides: once the handshake is over -----------------------------------

    def _pha_after_handshake(self) -> None:
        """Keep what post-handshake authentication still needs, and only while it can still happen: a server
        whose client offered post_handshake_auth, a client that offered it (RFC 8446 §4.6.2). Then the transcript
        is one hash, not tlslite's six and the transcript's bytes; a server keeps its settings only with
        ``client_auth_anchors`` (without them :meth:`request_client_auth` refuses anyway)."""
        if not self._pha_still_possible():
            self._first_handshake_hashes = None
            self._pha_settings = None
            return
        prf_name, _ = self._getPRFParams(self.session.cipherSuite)
        self._first_handshake_hashes = TranscriptHash.of(self._first_handshake_hashes, prf_name)
        if not self._client and self._pha_settings is not None and self._pha_settings.client_auth_anchors is None:
            self._pha_settings = None

    def _pha_still_possible(self) -> bool:
        if self.closed or self.version != TLS_1_3 or self._first_handshake_hashes is None:
            return False
        return bool(self._client_keypair if self._client else self._pha_supported)

    # --- client: steps the seam calls -----------------------------------------

    def _pha_certificate_request_for(self, peer: str, request_msg: Any) -> Any:
        """tlslite's Certificate builder gets a TLS 1.3 client's own ClientHello instead of the server's
        CertificateRequest, and compressed whenever it could itself receive compressed certificates, whatever
        the server offered (patches/0009): hand it the CertificateRequest."""
        if peer == "client" and isinstance(request_msg, ClientHello):
            return self._last_certificate_request
        return request_msg

    def _pha_start_client(self, settings: HandshakeSettings, cert_params: Any) -> Any:
        """tlslite offers post_handshake_auth for a truthy private key: offer it for the configured Signer too.
        Returns the certParams tlslite should see."""
        self._pha_settings = settings
        self._pha_signer = settings.client_auth_signer or _tlslite_signer(cert_params)
        if self._pha_signer is not None and cert_params is not None:
            return (cert_params[0], self._pha_signer)
        return cert_params

    def _pha_answer(self, cert_request: Any) -> Iterator[Any]:
        """The client's answer to a CertificateRequest, replacing tlslite's (tlsrecordlayer._handle_pha).

        An empty context gets illegal_parameter (patches/0005). The signer
        answers the first ``client_auth_answer_limit`` requests with a scheme
        the settings, the key and the request all allow; otherwise an empty
        Certificate and a Finished decline politely (patches/0002).
        Compression follows ``settings.certificate_compression_send``.
        """
        check_certificate_request(cert_request)
        flight = yield from self._client_auth_flight(cert_request)
        yield from self._sendMsgs(flight)

    def _client_auth_flight(self, cert_request: Any) -> Generator[Any, None, list[Any]]:
        """Certificate, CertificateVerify (unless declining) and Finished answering ``cert_request``."""
        assert self._pha_settings is not None
        self.certificate_requests_received += 1
        scheme = answering_scheme(
            self._pha_signer,
            self._pha_settings.client_auth_answer_limit,
            self.certificate_requests_received,
            cert_request,
            tls13_schemes(self, self._pha_settings),
        )
        signer = self._pha_signer if scheme is not None else None
        transcript = self._first_handshake_hashes.copy()  # never earlier PHA exchanges
        transcript.update(cert_request.write())
        certificate = self._create_cert_msg(
            "client",
            cert_request,
            self._pha_settings.certificate_compression_send,
            certificates_to_tlslite(signer.certificate_chain) if signer is not None else X509CertChain(),
            CertificateType.x509,
            cert_request.certificate_request_context,
            self.version,
        )
        transcript.update(certificate.write())
        flight = [certificate]
        if scheme is not None:
            signature = yield from self._client_signature(scheme, transcript)
            flight.append(CertificateVerify(self.version).create(signature, scheme.tlslite))
            transcript.update(flight[-1].write())
            self.certificate_requests_answered += 1
        flight.append(self._client_finished(transcript))
        return flight

    def _client_signature(self, scheme: SignatureScheme, transcript: Any) -> Generator[Any, None, bytearray]:
        prf_name, _ = self._getPRFParams(self.session.cipherSuite)
        assert self._pha_signer is not None
        try:
            signature = self._pha_signer.sign(scheme, CLIENT_SIGNATURE_PREFIX + bytes(transcript.digest(prf_name)))
        except Exception as exc:  # a key store fails in its own ways; the server still gets an alert
            yield from self._sendError(AlertDescription.internal_error, f"the client's signer failed: {exc}")
        return bytearray(signature)

    def _client_finished(self, transcript: Any) -> Any:
        prf_name, prf_size = self._getPRFParams(self.session.cipherSuite)
        finished_key = tlslite_hkdf_expand_label(self.session.cl_app_secret, b"finished", b"", prf_size, prf_name)
        verify_data = secure_hmac(finished_key, transcript.digest(prf_name), prf_name)
        return Finished(TLS_1_3, prf_size).create(verify_data)


class TranscriptHash:
    """The handshake transcript as post-handshake authentication reads it (``copy``, ``update``, ``digest`` of
    tlslite-ng's ``HandshakeHashes``), kept in the suite's PRF hash alone: about 0.3 KiB where tlslite-ng keeps six
    hashes (about 1.7 KiB of OpenSSL state) and every byte of the transcript."""

    __slots__ = ("_hash", "name")

    def __init__(self, name: str, state: Any) -> None:
        self.name = name
        self._hash = state

    @classmethod
    def of(cls, hashes: Any, prf_name: str) -> TranscriptHash:
        """The ``prf_name`` hash (TLS 1.3's are sha256 and sha384) of tlslite-ng's ``HandshakeHashes``."""
        state = hashes._handshakeSHA384 if prf_name == "sha384" else hashes._handshakeSHA256
        return cls(prf_name, state.copy())

    def update(self, data: bytes | bytearray) -> None:
        self._hash.update(data)

    def copy(self) -> TranscriptHash:
        return TranscriptHash(self.name, self._hash.copy())

    def digest(self, digest: str | None = None) -> bytes:
        if digest != self.name:
            raise ValueError(f"the transcript was kept in {self.name} only, not {digest}")
        return self._hash.digest()  # type: ignore[no-any-return]


def answering_scheme(
    signer: Signer | None,
    answer_limit: int | None,
    requests_received: int,
    cert_request: Any,
    enabled: Sequence[SignatureScheme],
) -> SignatureScheme | None:
    """The client's PHA answer policy: the scheme to answer ``cert_request`` with, or None to decline."""
    if signer is None or (answer_limit is not None and requests_received > answer_limit):
        return None
    requested = {SignatureScheme.from_tlslite(tuple(alg)) for alg in cert_request.supported_signature_algs}
    possible = set(signer.signature_schemes)
    return next((s for s in enabled if s in requested and s in possible), None)


def tls13_schemes(connection: Any, settings: Any) -> list[SignatureScheme]:
    """The TLS 1.3 signature schemes ``settings`` enable, in their order of preference."""
    enabled = (SignatureScheme.from_tlslite(alg) for alg in connection._sigHashesToList(settings, version=TLS_1_3))
    return [scheme for scheme in enabled if scheme is not None]


def check_certificate_request(cert_request: Any) -> None:
    """Raise the alert for an unacceptable post-handshake CertificateRequest."""
    if not cert_request.certificate_request_context:
        raise AlertIllegalParameter("post-handshake CertificateRequest with an empty context")
    repeated = [ext for ext, count in Counter(e.extType for e in cert_request.extensions or []).items() if count > 1]
    if repeated:
        raise AlertIllegalParameter(f"CertificateRequest repeats extension {repeated[0]}")
    if not cert_request.supported_signature_algs:
        raise AlertMissingExtension("CertificateRequest without signature_algorithms")
    compression = cert_request.getExtension(ExtensionType.compress_certificate)
    if compression is not None and not compression.algorithms:
        raise AlertDecodeError("empty algorithm list in compress_certificate")


def check_compression(cert: Any, request: Any) -> None:
    """A CompressedCertificate is acceptable only with an algorithm its request offered (RFC 8879 §4)."""
    if not isinstance(cert, CompressedCertificate):
        return
    offer = request.getExtension(ExtensionType.compress_certificate)
    if offer is None:
        raise AlertUnexpectedMessage("CompressedCertificate although no compression was offered")
    if cert.compression_algo not in offer.algorithms:
        raise AlertIllegalParameter("certificate compressed with an algorithm that was not offered")


def _compression_placeholder() -> Any:
    offer = CompressedCertificateExtension().create([CertificateCompressionAlgorithm.zlib])
    return CertificateRequest(TLS_1_3).create(context=b"", sig_algs=[], extensions=[offer])


def _tlslite_signer(cert_params: Any) -> Signer | None:
    """The certChain/privateKey given to handshakeClientCert as a Signer, if TLS 1.3 can sign with it."""
    if not cert_params or not cert_params[1]:
        return None
    try:
        return TlsliteKeySigner(*cert_params)
    except SignerError:
        return None  # e.g. a DSA key: usable in TLS 1.2 handshakes, never in a TLS 1.3 CertificateVerify


def _has_certificates(chain: Any) -> bool:
    return bool(chain and chain.getNumCerts())


ConnectionT = TypeVar("ConnectionT", bound=PostHandshakeAuth)


def client_auth_to_request(conn: PostHandshakeAuth, *, required: bool) -> bool:
    """Whether a server application asks the client for a certificate right after the handshake (the wrappers
    below and those of :mod:`ibepsk.aio.server` decide here).

    Not a client known already from its ticket, nor one that cannot answer (it offered no post_handshake_auth, or
    the connection is not TLS 1.3): when the certificate is ``required``, that one is refused.
    """
    if conn.client_auth is not None:
        return False
    if conn.post_handshake_auth_offered and conn.version == TLS_1_3:
        return True
    if required:
        raise AlertCertificateRequired("client cannot do post-handshake auth")
    return False


def requiring_client_auth(application: Callable[[ConnectionT], None]) -> Callable[[ConnectionT], None]:
    """Wrap a server application: authenticate the client right after the handshake, serve it only then.

    A client that resumed with a ticket issued after its authentication is
    known already (``conn.client_auth.method == "resumption"``) and is not asked again.
    """

    def authenticated_application(conn: ConnectionT) -> None:
        try:
            asking = client_auth_to_request(conn, required=True)
        except TlsAlert as alert:
            conn.abort_with_alert(alert.description, alert.reason)  # raises the TLSLocalAlert it sent
            return
        if asking:
            conn.request_client_auth(required=True)
            conn.wait_for_client_auth()
        application(conn)

    return authenticated_application


def requesting_client_auth(application: Callable[[ConnectionT], None]) -> Callable[[ConnectionT], None]:
    """Wrap a server application: ask for a certificate right after the handshake, serve the client either way.

    Only a TLS 1.3 client that offered post_handshake_auth is asked, and not one
    already known from its ticket; the others are served unasked. The answer is
    processed by the application's reads (``TLSServer`` also reads one still in
    flight when the application is done); ``conn.client_auth`` says who the
    client is once it has answered (None if it declined or was not asked).
    """

    def asking_application(conn: ConnectionT) -> None:
        if client_auth_to_request(conn, required=False):
            conn.request_client_auth(required=False)
        application(conn)

    return asking_application

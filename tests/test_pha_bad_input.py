"""Hostile post-handshake authentication: the RFC's alert, the connection closes, everyone else is served.

Clients answer a CertificateRequest with a flight built by ibepsk and then
damaged; servers send CertificateRequests ibepsk clients must refuse.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tlslite.constants import AlertDescription, ContentType
from tlslite.errors import TLSLocalAlert, TLSRemoteAlert
from tlslite.extensions import CompressedCertificateExtension, TLSExtension
from tlslite.messages import ApplicationData, CertificateRequest, Message

import ibepsk.client
from ibepsk import HandshakeSettings, IbeKeyring, KeySigner, TLSConnection, TrustAnchors
from ibepsk.client import ClientConfig, connect
from ibepsk.keys import TAMasterKey
from ibepsk.server import TLSServer
from ibepsk.tls import SignatureScheme

from pki import Issued, issue, make_ca
from tls_support import TIMEOUT, AuthenticatingApplication, converse, running_server

Flight = list[Any]
Attack = Callable[[Flight], Flight]

# Offsets in a TLS 1.3 Certificate message: header (4), context length (1), context (32), list length (3).
CERTIFICATE_LIST_LENGTH = slice(37, 40)
FIRST_CERTIFICATE_DER = 43
# In a CertificateVerify: header (4), scheme (2), signature length (2).
SIGNATURE_LENGTH = slice(6, 8)


@pytest.fixture(scope="module")
def client_cert() -> tuple[Issued, Issued]:
    ca = make_ca()
    return ca, issue(ca, "client", server=False)


@pytest.fixture(scope="module")
def server(ta: TAMasterKey, client_cert: tuple[Issued, Issued]) -> Iterator[TLSServer]:
    ca, _ = client_cert
    settings = HandshakeSettings()
    settings.ibe_keyring = IbeKeyring([ta.extract("localhost")])
    settings.client_auth_anchors = TrustAnchors([ca.certificate])
    with running_server(settings, AuthenticatingApplication()) as (running, _):
        yield running


@pytest.fixture()
def app(server: TLSServer) -> AuthenticatingApplication:
    """A fresh application on the shared server for each test: its outcomes are this test's connections'."""
    server.application = AuthenticatingApplication()
    return server.application


def client_config(ta: TAMasterKey, client_cert: tuple[Issued, Issued]) -> ClientConfig:
    _, client = client_cert
    settings = HandshakeSettings()
    settings.ibe_public_params = ta.public
    settings.client_auth_signer = KeySigner([client.certificate], client.key)
    settings.certificate_compression_send = []  # the attacks edit a plain Certificate message
    return ClientConfig(settings, server_name="localhost")


def attacking_client(attack: Attack) -> type[TLSConnection]:
    class AttackingClient(TLSConnection):
        def _handle_pha(self, cert_request: Any) -> Iterator[Any]:
            flight = yield from self._client_auth_flight(cert_request)
            for message in attack(flight):
                yield from self._sendMsg(message)  # one record each

    return AttackingClient


def handshake(raw: bytes | bytearray) -> Message:
    return Message(ContentType.handshake, bytearray(raw))


def with_length(raw: bytearray, where: slice, delta: int) -> bytearray:
    length = int.from_bytes(raw[where], "big") + delta
    raw[where] = length.to_bytes(where.stop - where.start, "big")
    return raw


# --- attacks on the client's answer -------------------------------------------------------------------


def malformed_certificate(flight: Flight) -> Flight:
    return [handshake(with_length(flight[0].write(), CERTIFICATE_LIST_LENGTH, 1)), *flight[1:]]


def certificate_that_is_not_der(flight: Flight) -> Flight:
    raw = flight[0].write()
    raw[FIRST_CERTIFICATE_DER] = 0x04  # an OCTET STRING where the Certificate SEQUENCE starts
    return [handshake(raw), *flight[1:]]


def malformed_certificate_verify(flight: Flight) -> Flight:
    return [flight[0], handshake(with_length(flight[1].write(), SIGNATURE_LENGTH, 1)), flight[2]]


def relabelled_scheme(scheme: tuple[int, int]) -> Attack:
    def attack(flight: Flight) -> Flight:
        flight[1].signatureAlgorithm = scheme
        return flight

    return attack


def flipped_signature(flight: Flight) -> Flight:
    flight[1].signature[-1] ^= 0x01
    return flight


def flipped_finished(flight: Flight) -> Flight:
    flight[2].verify_data[0] ^= 0x01
    return flight


def short_finished(flight: Flight) -> Flight:
    raw = flight[2].write()[:-1]
    return [*flight[:2], handshake(with_length(raw, slice(1, 4), -1))]


def unknown_context(flight: Flight) -> Flight:
    flight[0].certificate_request_context = bytes(32)
    return flight


def certificate_again(flight: Flight) -> Flight:
    return [*flight, flight[0]]  # a second Certificate, which nothing requested


def application_data_inside_the_flight(flight: Flight) -> Flight:
    return [flight[0], ApplicationData().create(bytearray(b"GET /")), *flight[1:]]


def application_data_inside_a_message(flight: Flight) -> Flight:
    raw = flight[0].write()
    return [handshake(raw[:50]), ApplicationData().create(bytearray(b"GET /")), handshake(raw[50:]), *flight[1:]]


@pytest.mark.parametrize(
    ("attack", "expected"),
    [
        pytest.param(malformed_certificate, AlertDescription.decode_error, id="malformed-certificate"),
        pytest.param(certificate_that_is_not_der, AlertDescription.bad_certificate, id="certificate-not-der"),
        pytest.param(malformed_certificate_verify, AlertDescription.decode_error, id="malformed-certificate-verify"),
        pytest.param(
            relabelled_scheme(SignatureScheme.RSA_PSS_RSAE_SHA256.tlslite),
            AlertDescription.illegal_parameter,
            id="scheme-of-another-key-type",
        ),
        pytest.param(relabelled_scheme((2, 3)), AlertDescription.illegal_parameter, id="scheme-not-requested"),
        pytest.param(flipped_signature, AlertDescription.decrypt_error, id="bad-signature"),
        pytest.param(flipped_finished, AlertDescription.decrypt_error, id="bad-finished"),
        pytest.param(short_finished, AlertDescription.decode_error, id="short-finished"),
        pytest.param(unknown_context, AlertDescription.illegal_parameter, id="unknown-context"),
        pytest.param(certificate_again, AlertDescription.unexpected_message, id="certificate-without-request"),
        pytest.param(
            application_data_inside_the_flight, AlertDescription.unexpected_message, id="data-between-messages"
        ),
        pytest.param(
            application_data_inside_a_message, AlertDescription.unexpected_message, id="data-inside-a-message"
        ),
    ],
)
def test_damaged_answer(
    ta: TAMasterKey,
    client_cert: tuple[Issued, Issued],
    server: TLSServer,
    app: AuthenticatingApplication,
    monkeypatch: pytest.MonkeyPatch,
    attack: Attack,
    expected: int,
) -> None:
    with monkeypatch.context() as patched:
        patched.setattr(ibepsk.client, "TLSConnection", attacking_client(attack))
        conn = connect(*server.address, client_config(ta, client_cert))
    with pytest.raises(TLSRemoteAlert) as raised:
        converse(conn)
        converse(conn)  # the server may only notice at its next read, when the flight itself was fine
    outcome = app.next_outcome()
    assert AlertDescription.toRepr(raised.value.description) == AlertDescription.toRepr(expected)
    if attack is not certificate_again:  # that one authenticated first: the alert comes from a later read
        assert outcome.sent_alert == expected and outcome.client_auth is None
    assert_good_client_served(ta, client_cert, server, app)


def assert_good_client_served(
    ta: TAMasterKey, client_cert: tuple[Issued, Issued], server: TLSServer, app: AuthenticatingApplication
) -> None:
    conn = connect(*server.address, client_config(ta, client_cert))
    assert converse(conn) == b"echo:ping"
    conn.close()
    assert app.next_outcome().client_auth is not None


def test_replayed_answer(ta: TAMasterKey, client_cert: tuple[Issued, Issued], monkeypatch: pytest.MonkeyPatch) -> None:
    # Two requests outstanding; the client answers the first one twice.
    ca, _ = client_cert
    settings = HandshakeSettings()
    settings.ibe_keyring = IbeKeyring([ta.extract("localhost")])
    settings.client_auth_anchors = TrustAnchors([ca.certificate])
    pipelined = AuthenticatingApplication(requests=2, pipelined=True)
    monkeypatch.setattr(ibepsk.client, "TLSConnection", attacking_client(lambda flight: [*flight, *flight]))
    with running_server(settings, pipelined) as (running, _):
        conn = connect(*running.address, client_config(ta, client_cert))
        try:
            converse(conn)
            while conn.read():  # the reply may come before the server reads the replayed answer
                pass
        except TLSRemoteAlert as alert:
            assert alert.description == AlertDescription.illegal_parameter
        # The server's outcome is what counts: its alert can be lost to a TCP reset, since the client's
        # answer to the second request is still unread when the server closes.
        assert pipelined.next_outcome().sent_alert == AlertDescription.illegal_parameter


# --- hostile CertificateRequests -------------------------------------------------------------------------


def request(context: bytes = b"\x01" * 32, sig_algs: Any = ((4, 3),), extensions: Any = ()) -> CertificateRequest:
    return CertificateRequest((3, 4)).create(
        context=context, sig_algs=list(sig_algs) if sig_algs else None, extensions=list(extensions)
    )


@pytest.mark.parametrize(
    ("certificate_request", "expected"),
    [
        pytest.param(request(context=b""), AlertDescription.illegal_parameter, id="empty-context"),  # patches/0005
        pytest.param(request(sig_algs=None), AlertDescription.missing_extension, id="no-signature-algorithms"),
        pytest.param(
            request(extensions=[CompressedCertificateExtension().create([])]),
            AlertDescription.decode_error,
            id="empty-compression-list",
        ),
        pytest.param(
            request(extensions=[TLSExtension(extType=0xFF01).create(b""), TLSExtension(extType=0xFF01).create(b"")]),
            AlertDescription.illegal_parameter,
            id="repeated-extension",
        ),
    ],
)
def test_client_refuses_a_hostile_request(
    ta: TAMasterKey, client_cert: tuple[Issued, Issued], certificate_request: CertificateRequest, expected: int
) -> None:
    server_saw: queue.Queue[BaseException] = queue.Queue()

    def hostile(conn: TLSConnection) -> None:
        for _ in conn._sendMsg(certificate_request):
            pass
        try:
            conn.read()
        except TLSRemoteAlert as exc:
            server_saw.put(exc)

    settings = HandshakeSettings()
    settings.ibe_keyring = IbeKeyring([ta.extract("localhost")])
    with running_server(settings, hostile) as (running, _):
        conn = connect(*running.address, client_config(ta, client_cert))
        with pytest.raises(TLSLocalAlert) as raised:
            conn.read()
    assert raised.value.description == expected
    assert getattr(server_saw.get(timeout=TIMEOUT), "description", None) == expected
    assert conn.certificate_requests_received == 0, "nothing was signed"


def test_request_to_a_client_that_did_not_offer_pha(ta: TAMasterKey) -> None:
    def hostile(conn: TLSConnection) -> None:
        for _ in conn._sendMsg(request()):
            pass
        conn.read()

    settings = HandshakeSettings()
    settings.ibe_keyring = IbeKeyring([ta.extract("localhost")])
    client = HandshakeSettings()
    client.ibe_public_params = ta.public
    with running_server(settings, hostile) as (running, _):
        conn = connect(*running.address, ClientConfig(client, server_name="localhost"))
        with pytest.raises(TLSLocalAlert) as raised:
            conn.read()
    assert raised.value.description == AlertDescription.unexpected_message

"""Post-handshake client authentication between ibepsk clients and servers over real sockets."""

from __future__ import annotations

import copy
import datetime
import queue
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from tlslite.constants import AlertDescription
from tlslite.errors import TLSLocalAlert, TLSRemoteAlert

import ibepsk.client
from ibepsk import HandshakeMode, HandshakeSettings, IbeKeyring, KeySigner, TLSConnection, TrustAnchors
from ibepsk.client import ClientConfig, connect
from ibepsk.keys import IdentityKey, TAMasterKey
from ibepsk.tls import ClientAuthMethod, PostHandshakeAuthError, SignatureScheme, requesting_client_auth
from ibepsk.tls.certs import ServerCertificateChecker

from pki import Issued, issue, make_ca
from tls_support import (
    TIMEOUT,
    AuthenticatingApplication,
    AuthOutcome,
    converse,
    running_server,
    tlslite_chain,
    tlslite_key,
)

KINDS = ("p256", "rsa2048", "ed25519")


@dataclass
class Pki:
    ca: Issued
    clients: dict[str, Issued]

    @property
    def anchors(self) -> TrustAnchors:
        return TrustAnchors([self.ca.certificate])

    def signer(self, kind: str = "p256") -> KeySigner:
        client = self.clients[kind]
        return KeySigner([client.certificate], client.key)


@pytest.fixture(scope="module")
def pki() -> Pki:
    ca = make_ca()
    return Pki(ca, {kind: issue(ca, f"client-{kind}", kind=kind, server=False) for kind in KINDS})


@pytest.fixture(scope="module")
def identity_key(ta: TAMasterKey) -> IdentityKey:
    return ta.extract("localhost")


@pytest.fixture()
def server(identity_key: IdentityKey, pki: Pki) -> ServerFactory:
    return ServerFactory(identity_key, pki)


@dataclass
class ServerFactory:
    identity_key: IdentityKey
    pki: Pki

    def settings(self, **fields: Any) -> HandshakeSettings:
        settings = HandshakeSettings()
        settings.ibe_keyring = IbeKeyring([self.identity_key])
        settings.client_auth_anchors = self.pki.anchors
        for name, value in fields.items():
            setattr(settings, name, value)
        return settings

    def run(
        self, config: ClientConfig, app: AuthenticatingApplication | None = None, **fields: Any
    ) -> tuple[TLSConnection, bytes, AuthOutcome]:
        """One connection to a server asking for client certificates: the client, what it read, what the server saw."""
        app = app or AuthenticatingApplication()
        with running_server(self.settings(**fields), app) as (running, _):
            conn = connect(*running.address, config)
            try:
                reply = converse(conn)
            finally:
                conn.close()
        return conn, reply, app.next_outcome()

    def run_refused(
        self, config: ClientConfig, app: AuthenticatingApplication | None = None, **fields: Any
    ) -> tuple[int, AuthOutcome]:
        """Like run() for a client the server refuses: the alert the client received, what the server saw."""
        app = app or AuthenticatingApplication()
        with pytest.raises(TLSRemoteAlert) as raised:
            self.run(config, app, **fields)
        return raised.value.description, app.next_outcome()


def client_config(ta: TAMasterKey, signer: Any = None, **fields: Any) -> ClientConfig:
    settings = HandshakeSettings()
    settings.ibe_public_params = ta.public
    settings.client_auth_signer = signer
    for name, value in fields.items():
        setattr(settings, name, value)
    return ClientConfig(settings, server_name="localhost")


def der(issued: Issued) -> bytes:
    return issued.certificate.public_bytes(Encoding.DER)


# --- the IBE-PSK flow: the PSK authenticates the server, PHA the client ------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_ibe_psk_handshake_then_client_certificate(ta: TAMasterKey, pki: Pki, server: ServerFactory, kind: str) -> None:
    before = datetime.datetime.now(datetime.UTC)
    conn, reply, outcome = server.run(client_config(ta, pki.signer(kind)))
    assert conn.handshake_mode == HandshakeMode.IBE_PSK
    assert reply == b"echo:ping"
    auth = outcome.answers[0]
    assert auth is not None and auth == outcome.client_auth
    assert auth.subject == f"CN=client-{kind}"
    assert auth.chain == (pki.clients[kind].certificate, pki.ca.certificate), "the path up to the anchor"
    assert auth.method == ClientAuthMethod.POST_HANDSHAKE
    assert before <= auth.authenticated_at <= datetime.datetime.now(datetime.UTC)
    assert bytes(outcome.session_chain.x509List[0].bytes) == der(pki.clients[kind])
    assert (conn.certificate_requests_received, conn.certificate_requests_answered) == (1, 1)


def test_after_a_certificate_handshake(pki: Pki) -> None:
    settings = HandshakeSettings()
    settings.client_auth_anchors = pki.anchors
    client_settings = HandshakeSettings()
    client_settings.client_auth_signer = pki.signer()
    config = ClientConfig(client_settings, server_name="localhost")
    config.checker = ServerCertificateChecker(pki.anchors, "localhost")
    app = AuthenticatingApplication()
    with running_server(settings, app, cert=issue(pki.ca, "localhost")) as (running, _):
        conn = connect(*running.address, config)
        assert converse(conn) == b"echo:ping"
        conn.close()
    assert conn.handshake_mode == HandshakeMode.CERTIFICATE
    auth = app.next_outcome().client_auth
    assert auth is not None and auth.subject == "CN=client-p256"


def test_intermediate_ca_in_the_client_chain(ta: TAMasterKey, pki: Pki, server: ServerFactory) -> None:
    intermediate = make_ca("ibepsk intermediate", issuer=pki.ca)
    leaf = issue(intermediate, "client-below", server=False)
    _, _, outcome = server.run(client_config(ta, KeySigner([leaf.certificate, intermediate.certificate], leaf.key)))
    assert outcome.client_auth is not None
    assert outcome.client_auth.chain == (leaf.certificate, intermediate.certificate, pki.ca.certificate)


def test_certificate_and_key_given_to_the_handshake(ta: TAMasterKey, pki: Pki, server: ServerFactory) -> None:
    # tlslite-ng's own way to configure a client certificate answers PHA too.
    config = client_config(ta)
    config.cert_chain, config.private_key = tlslite_chain(pki.clients["p256"]), tlslite_key(pki.clients["p256"])
    _, _, outcome = server.run(config)
    assert outcome.client_auth is not None and outcome.client_auth.subject == "CN=client-p256"


class TokenSigner:
    """A Signer that is not a KeySigner, as a PKCS#11 token would provide; ``removed`` makes it fail."""

    def __init__(self, issued: Issued) -> None:
        assert isinstance(issued.key, ec.EllipticCurvePrivateKey)
        self._key, self.certificate_chain = issued.key, [issued.certificate]
        self.signature_schemes = [SignatureScheme.ECDSA_SECP256R1_SHA256]
        self.signed: list[SignatureScheme] = []
        self.removed = False

    def sign(self, scheme: SignatureScheme, message: bytes) -> bytes:
        self.signed.append(scheme)
        if self.removed:
            raise RuntimeError("token removed")
        return self._key.sign(message, ec.ECDSA(hashes.SHA256()))


def test_any_signer_object(ta: TAMasterKey, pki: Pki, server: ServerFactory) -> None:
    signer = TokenSigner(pki.clients["p256"])
    _, _, outcome = server.run(client_config(ta, signer))
    assert signer.signed == [SignatureScheme.ECDSA_SECP256R1_SHA256]
    assert outcome.client_auth is not None


def test_a_failing_signer_sends_internal_error(ta: TAMasterKey, pki: Pki, server: ServerFactory) -> None:
    signer = TokenSigner(pki.clients["p256"])
    signer.removed = True
    app = AuthenticatingApplication()
    with pytest.raises(TLSLocalAlert, match="signer failed: token removed") as raised:
        server.run(client_config(ta, signer), app)
    assert raised.value.description == AlertDescription.internal_error
    error = app.next_outcome().error
    assert isinstance(error, TLSRemoteAlert) and error.description == AlertDescription.internal_error


# --- when the server may not ask ----------------------------------------------------------------------


def test_a_client_that_did_not_offer_pha_cannot_be_asked(ta: TAMasterKey, server: ServerFactory) -> None:
    _, reply, outcome = server.run(client_config(ta))
    assert isinstance(outcome.error, PostHandshakeAuthError)
    assert "did not offer post_handshake_auth" in str(outcome.error)
    assert reply == b"", "the application refused the client"


def test_a_server_without_trust_anchors_does_not_ask(ta: TAMasterKey, pki: Pki, server: ServerFactory) -> None:
    _, _, outcome = server.run(client_config(ta, pki.signer()), client_auth_anchors=None)
    assert isinstance(outcome.error, PostHandshakeAuthError)
    assert "client_auth_anchors" in str(outcome.error)


def test_a_client_closing_instead_of_answering(ta: TAMasterKey, pki: Pki, server: ServerFactory) -> None:
    app = AuthenticatingApplication()
    with running_server(server.settings(), app) as (running, _):
        conn = connect(*running.address, client_config(ta, pki.signer()))
        conn.closeSocket = False  # close_notify only: the server must see it, not a reset
        with pytest.raises(TLSLocalAlert, match="unexpected_message"):
            conn.close()  # tlslite-ng then waits for the server's close_notify and gets the request
        outcome = app.next_outcome()
        conn.sock.close()
    assert isinstance(outcome.error, PostHandshakeAuthError) and "closed the connection" in str(outcome.error)


def test_requesting_serves_clients_that_decline(ta: TAMasterKey, pki: Pki, server: ServerFactory) -> None:
    seen: queue.Queue[Any] = queue.Queue()

    def echo(conn: TLSConnection) -> None:
        data = conn.read()
        seen.put(conn.client_auth)
        conn.write(b"echo:" + data)

    with running_server(server.settings(), requesting_client_auth(echo)) as (running, _):
        conn = connect(*running.address, client_config(ta, pki.signer(), client_auth_answer_limit=0))
        assert converse(conn) == b"echo:ping"
        conn.close()
    assert seen.get(timeout=TIMEOUT) is None
    assert conn.certificate_requests_received == 1


# --- the client's policy: the first request only, unless configured --------------------------------


def test_later_requests_are_declined_by_default(ta: TAMasterKey, pki: Pki, server: ServerFactory) -> None:
    app = AuthenticatingApplication(requests=2, required=False)
    conn, reply, outcome = server.run(client_config(ta, pki.signer()), app)
    first, second = outcome.answers
    assert first is not None and second is None
    assert outcome.client_auth == first, "declining leaves the identity as it was"
    assert reply == b"echo:ping"
    assert (conn.certificate_requests_received, conn.certificate_requests_answered) == (2, 1)


def test_a_declined_required_request_ends_with_certificate_required(
    ta: TAMasterKey, pki: Pki, server: ServerFactory
) -> None:
    alert, outcome = server.run_refused(client_config(ta, pki.signer()), AuthenticatingApplication(requests=2))
    assert alert == outcome.sent_alert == AlertDescription.certificate_required
    assert outcome.answers[0] is not None and len(outcome.answers) == 1


def test_two_authentications_when_the_policy_allows_them(ta: TAMasterKey, pki: Pki, server: ServerFactory) -> None:
    # Each CertificateVerify and Finished covers the main handshake and its own request only.
    app = AuthenticatingApplication(requests=2)
    conn, reply, outcome = server.run(client_config(ta, pki.signer(), client_auth_answer_limit=2), app)
    first, second = outcome.answers
    assert reply == b"echo:ping"
    assert first is not None and second is not None and first.subject == second.subject
    assert first.authenticated_at <= second.authenticated_at
    assert (conn.certificate_requests_received, conn.certificate_requests_answered) == (2, 2)


def test_an_empty_certificate_when_required(ta: TAMasterKey, pki: Pki, server: ServerFactory) -> None:
    alert, outcome = server.run_refused(client_config(ta, pki.signer(), client_auth_answer_limit=0))
    assert alert == outcome.sent_alert == AlertDescription.certificate_required
    assert outcome.client_auth is None


# --- the server's checks of the client's chain ---------------------------------------------------------


@pytest.mark.parametrize(
    ("make_client", "expected"),
    [
        pytest.param(lambda ca: issue(make_ca("other CA"), "stranger", server=False), "unknown_ca", id="untrusted"),
        pytest.param(
            lambda ca: issue(ca, "old", server=False, not_before_days=-10, valid_days=-1),
            "certificate_expired",
            id="expired",
        ),
        pytest.param(
            lambda ca: issue(ca, "early", server=False, not_before_days=1), "certificate_expired", id="not-yet-valid"
        ),
        pytest.param(lambda ca: issue(ca, "a-server", server=True), "bad_certificate", id="server-auth-only"),
    ],
)
def test_chains_the_anchors_do_not_accept(
    ta: TAMasterKey, pki: Pki, server: ServerFactory, make_client: Any, expected: str
) -> None:
    client = make_client(pki.ca)
    alert, outcome = server.run_refused(client_config(ta, KeySigner([client.certificate], client.key)))
    assert AlertDescription.toRepr(alert) == expected
    assert outcome.sent_alert == alert
    assert outcome.client_auth is None


def test_missing_intermediate_is_an_unknown_ca(ta: TAMasterKey, pki: Pki, server: ServerFactory) -> None:
    leaf = issue(make_ca("ibepsk intermediate", issuer=pki.ca), "client-below", server=False)
    alert, _ = server.run_refused(client_config(ta, KeySigner([leaf.certificate], leaf.key)))
    assert alert == AlertDescription.unknown_ca


# --- tickets: the identity survives resumption only with a ticket issued after PHA -----------------


def test_ticket_issued_after_pha_restores_the_client_identity(ta: TAMasterKey, pki: Pki, server: ServerFactory) -> None:
    seen: list[tuple[Any, Any, Any]] = []

    def application(conn: TLSConnection) -> None:
        if conn.handshake_mode != HandshakeMode.RESUMPTION:
            conn.request_client_auth()
            conn.wait_for_client_auth()
        seen.append((conn.handshake_mode, conn.client_auth, conn.session.clientCertChain))
        conn.write(b"echo:" + conn.read())

    settings = server.settings(ticketKeys=[bytearray(32)], ticket_count=1)
    config = client_config(ta, pki.signer())
    with running_server(settings, application) as (running, _):
        first = connect(*running.address, config)
        converse(first)
        first.close()
        before_pha, after_pha = first.session.tickets
        for ticket in (before_pha, after_pha, after_pha):
            if len(seen) == 3:  # the last time, the server no longer trusts the client's CA
                settings.client_auth_anchors = TrustAnchors([make_ca("another CA").certificate])
            session = copy.copy(first.session)
            session.tickets = [ticket]
            conn = connect(*running.address, config, session=session)
            converse(conn)
            conn.close()
            assert conn.resumed
    (_, authenticated, _), before, after, untrusted = seen
    assert before[0] == after[0] == untrusted[0] == HandshakeMode.RESUMPTION
    assert before[1:] == (None, None), "a ticket from before PHA carries no identity"
    assert after[1] is not None and after[1].method == ClientAuthMethod.RESUMPTION
    assert after[1].chain == authenticated.chain
    assert bytes(after[2].x509List[0].bytes) == der(pki.clients["p256"])
    assert untrusted[1:] == (None, None), "the identity is validated again when resumed"


@pytest.mark.parametrize("resumption_ticket_count", [1, 0])
def test_pha_on_a_resumed_connection_issues_its_identity_ticket(
    ta: TAMasterKey, pki: Pki, server: ServerFactory, resumption_ticket_count: int
) -> None:
    """The identity ticket PHA issues is its own, whatever limits the tickets that end a resumption."""
    seen: list[tuple[Any, Any]] = []

    def application(conn: TLSConnection) -> None:
        if conn.handshake_mode == HandshakeMode.RESUMPTION:
            conn.request_client_auth()
            conn.wait_for_client_auth()
        seen.append((conn.handshake_mode, conn.client_auth))
        conn.write(b"echo:" + conn.read())

    settings = server.settings(ticketKeys=[bytearray(32)], ticket_count=1)
    settings.resumption_ticket_count = resumption_ticket_count
    config = client_config(ta, pki.signer())
    with running_server(settings, application) as (running, _):
        first = connect(*running.address, config)
        converse(first)
        first.close()
        second = connect(*running.address, config, session=first.session)
        converse(second)
        second.close()
    assert second.resumed and seen[1][0] == HandshakeMode.RESUMPTION and seen[1][1] is not None
    assert len(second.session.tickets) == resumption_ticket_count + 1  # the handshake's, then PHA's


# --- tlslite-ng bugs, fixed in ibepsk -----------------------------------------------------------------


def test_psk_session_names_no_server_certificate(ta: TAMasterKey, pki: Pki, server: ServerFactory) -> None:
    # patches/0006-psk-server-cert-chain.patch
    chains: list[Any] = []

    def application(conn: TLSConnection) -> None:
        chains.append(conn.session.serverCertChain)
        conn.write(b"echo:" + conn.read())

    certificate_client = ClientConfig(HandshakeSettings(), server_name="localhost")
    certificate_client.checker = ServerCertificateChecker(pki.anchors, "localhost")
    with running_server(server.settings(), application, cert=issue(pki.ca, "localhost")) as (running, _):
        for config in (client_config(ta), certificate_client):
            conn = connect(*running.address, config)
            converse(conn)
            conn.close()
    assert chains[0] is None, "IBE-PSK handshake"
    assert chains[1] is not None and chains[1].getNumCerts() == 1, "certificate handshake"


def test_no_common_signature_scheme_declines(ta: TAMasterKey, pki: Pki, server: ServerFactory) -> None:
    # patches/0002-pha-no-common-signature-scheme.patch: an ECDSA client asked for RSA-PSS only
    rsa_only = {"ecdsaSigHashes": [], "more_sig_schemes": []}
    app = AuthenticatingApplication(required=False)
    conn, reply, outcome = server.run(client_config(ta, pki.signer("p256")), app, **rsa_only)
    assert outcome.answers == [None] and reply == b"echo:ping"
    assert (conn.certificate_requests_received, conn.certificate_requests_answered) == (1, 0)
    alert, _ = server.run_refused(client_config(ta, pki.signer("p256")), **rsa_only)
    assert alert == AlertDescription.certificate_required
    _, _, outcome = server.run(client_config(ta, pki.signer("rsa2048")), **rsa_only)
    assert outcome.client_auth is not None


@pytest.mark.parametrize(
    ("server_receives", "client_sends", "compressed"),
    [
        pytest.param(["zlib"], ["zlib"], True, id="both-zlib"),
        pytest.param([], ["zlib"], False, id="server-none"),  # patches/0003-pha-empty-certificate-compression.patch
        pytest.param(["zlib"], [], False, id="client-none"),
    ],
)
def test_certificate_compression(
    ta: TAMasterKey,
    pki: Pki,
    server: ServerFactory,
    server_receives: list[str],
    client_sends: list[str],
    compressed: bool,
) -> None:
    config = client_config(ta, pki.signer(), certificate_compression_send=client_sends)
    _, _, outcome = server.run(config, certificate_compression_receive=server_receives)
    assert outcome.client_auth is not None
    assert (outcome.compression is not None) == compressed


class RecordingClient(TLSConnection):
    """Keeps every CertificateRequest it answers."""

    def __init__(self, sock: Any) -> None:
        super().__init__(sock)
        self.requests: list[Any] = []

    def _handle_pha(self, cert_request: Any) -> Any:
        self.requests.append(cert_request)
        return super()._handle_pha(cert_request)


def test_request_lists_only_tls13_schemes_with_a_fresh_context(
    ta: TAMasterKey, pki: Pki, server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # patches/0004-pha-certificate-request-signature-list.patch
    monkeypatch.setattr(ibepsk.client, "TLSConnection", RecordingClient)
    config = client_config(ta, pki.signer(), client_auth_answer_limit=2)
    conn, _, outcome = server.run(config, AuthenticatingApplication(requests=2))
    assert isinstance(conn, RecordingClient) and len(conn.requests) == 2 and outcome.client_auth is not None
    contexts = {bytes(r.certificate_request_context) for r in conn.requests}
    assert len(contexts) == 2 and all(len(c) == 32 for c in contexts)
    for request in conn.requests:
        offered = [SignatureScheme.from_tlslite(alg) for alg in request.supported_signature_algs]
        assert None not in offered, f"not a TLS 1.3 client signature scheme: {request.supported_signature_algs}"
        assert SignatureScheme.ED25519 in offered and SignatureScheme.RSA_PSS_RSAE_SHA256 in offered

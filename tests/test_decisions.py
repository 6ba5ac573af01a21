"""The protocol decisions as plain code: values in, values or typed alerts out, no sockets, no servers."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from tlslite.constants import AlertDescription, CipherSuite, ExtensionType
from tlslite.constants import SignatureScheme as TlsliteScheme
from tlslite.extensions import (
    CompressedCertificateExtension,
    PreSharedKeyExtension,
    PskIdentity,
    SrvPreSharedKeyExtension,
    SupportedVersionsExtension,
    TLSExtension,
)
from tlslite.messages import CertificateRequest, ClientHello, EncryptedExtensions, ServerHello
from tlslite.session import Session

from ibepsk import HandshakeSettings, KeySigner
from ibepsk.keys import TAMasterKey
from ibepsk.pki import issue, make_ca
from ibepsk.tls.alerts import (
    AlertDecodeError,
    AlertHandshakeFailure,
    AlertIllegalParameter,
    AlertMissingExtension,
    AlertUnknownCa,
    AlertUnsupportedExtension,
    TlsAlert,
)
from ibepsk.tls.connection import HandshakeMode, check_server_choice, newest_ticket_first
from ibepsk.tls.early_data import EARLY_DATA_SUITE, EarlyDataRejection, check_early_data_answer, early_data_rejection
from ibepsk.tls.pha import answering_scheme, check_certificate_request
from ibepsk.tls.psk import OpenedIbePsk, check_certificate_handshake_possible, check_psk_entries, make_offer
from ibepsk.tls.replay import MemoryReplayStore
from ibepsk.tls.signer import SignatureScheme
from ibepsk.tls.versions import TLS_1_3

CIPHERTEXT = b"c" * 161


def client_hello(identities: list[bytes], binders: list[bytes] | None = None, *extensions: Any) -> ClientHello:
    psk = PreSharedKeyExtension().create(
        [PskIdentity().create(bytearray(identity), 1) for identity in identities],
        [bytearray(binder) for binder in binders or [b"b" * 32] * len(identities)],
    )
    versions = SupportedVersionsExtension().create([TLS_1_3])
    return ClientHello().create(
        (3, 3), bytearray(32), bytearray(), [EARLY_DATA_SUITE], extensions=[versions, *extensions, psk]
    )


def server_hello(selected: int | None) -> ServerHello:
    extensions = [] if selected is None else [SrvPreSharedKeyExtension().create(selected)]
    return ServerHello().create((3, 3), bytearray(32), bytearray(), EARLY_DATA_SUITE, extensions=extensions)


def test_an_alert_carries_its_description() -> None:
    alert = TlsAlert.of(AlertDescription.unknown_ca, "who signed this?")
    assert isinstance(alert, AlertUnknownCa) and alert.description == AlertDescription.unknown_ca
    assert alert.reason == "who signed this?"


@pytest.mark.parametrize(("identities", "binders"), [([b""], None), ([b"x"], [b""])])
def test_empty_psk_identity_or_binder_is_decode_error(identities: list[bytes], binders: list[bytes] | None) -> None:
    with pytest.raises(AlertDecodeError):
        check_psk_entries(client_hello(identities, binders))
    check_psk_entries(client_hello([b"x"]))


def test_a_certificate_handshake_needs_signature_algorithms_and_key_share() -> None:
    with pytest.raises(AlertMissingExtension, match="signature_algorithms and key_share") as raised:
        check_certificate_handshake_possible(client_hello([b"x"]))
    assert raised.value.description == AlertDescription.missing_extension


def test_the_servers_psk_choice(ta: TAMasterKey) -> None:
    settings = HandshakeSettings()
    offer = make_offer(ta.public, "gateway")
    hello = client_hello([bytes(offer.ciphertext), b"ticket"])
    with pytest.raises(AlertHandshakeFailure):
        check_server_choice(settings, hello, server_hello(None), offer, fallback=False)
    assert (
        check_server_choice(settings, hello, server_hello(None), offer, fallback=True)[0] == HandshakeMode.CERTIFICATE
    )
    with pytest.raises(AlertIllegalParameter, match="not offered"):
        check_server_choice(settings, hello, server_hello(2), offer, fallback=False)
    with pytest.raises(AlertIllegalParameter, match="psk_ke"):  # no key_share in the ServerHello
        check_server_choice(settings, hello, server_hello(0), offer, fallback=False)
    settings.psk_modes = ["psk_ke"]
    assert check_server_choice(settings, hello, server_hello(0), offer, False) == ("ibe-psk", "gateway", "psk_ke")
    assert check_server_choice(settings, hello, server_hello(1), offer, False) == ("resumption", None, "psk_ke")


def test_the_early_data_verdict() -> None:
    settings = HandshakeSettings()
    first = OpenedIbePsk("gateway", 0, CIPHERTEXT, b"k" * 32)
    assert early_data_rejection(settings, False, first, EARLY_DATA_SUITE) == EarlyDataRejection.DISABLED
    settings.accept_early_data, settings.replay_store = 1024, MemoryReplayStore(window_seconds=60)
    assert early_data_rejection(settings, True, first, EARLY_DATA_SUITE) == EarlyDataRejection.AFTER_RETRY
    assert early_data_rejection(settings, False, None, EARLY_DATA_SUITE) == EarlyDataRejection.NOT_IBE_PSK
    second = OpenedIbePsk("gateway", 1, CIPHERTEXT, b"k" * 32)
    assert early_data_rejection(settings, False, second, EARLY_DATA_SUITE) == EarlyDataRejection.NOT_FIRST_IDENTITY
    other_suite = CipherSuite.TLS_AES_256_GCM_SHA384
    assert early_data_rejection(settings, False, first, other_suite) == EarlyDataRejection.WRONG_SUITE
    assert early_data_rejection(settings, False, first, EARLY_DATA_SUITE) is None
    assert early_data_rejection(settings, False, first, EARLY_DATA_SUITE) == EarlyDataRejection.REPLAY


def test_the_clients_reading_of_the_early_data_answer() -> None:
    accepted = EncryptedExtensions().create([TLSExtension(extType=ExtensionType.early_data).create(bytearray())])
    assert not check_early_data_answer(EncryptedExtensions().create([]), True, True, EARLY_DATA_SUITE)
    assert check_early_data_answer(accepted, True, True, EARLY_DATA_SUITE)
    with pytest.raises(AlertUnsupportedExtension):
        check_early_data_answer(accepted, False, True, EARLY_DATA_SUITE)
    with pytest.raises(AlertIllegalParameter):
        check_early_data_answer(accepted, True, False, EARLY_DATA_SUITE)


def certificate_request(context: bytes = b"x" * 32, algorithms: Any = (TlsliteScheme.ecdsa_secp256r1_sha256,)) -> Any:
    return CertificateRequest(TLS_1_3).create(context=context, sig_algs=list(algorithms), extensions=[])


def test_the_pha_answer_policy() -> None:
    ca = make_ca()
    client = issue(ca, "device", server=False)
    signer = KeySigner([client.certificate], client.key)
    enabled = [SignatureScheme.ED25519, SignatureScheme.ECDSA_SECP256R1_SHA256]
    request = certificate_request()
    assert answering_scheme(signer, 1, 1, request, enabled) == SignatureScheme.ECDSA_SECP256R1_SHA256
    assert answering_scheme(signer, 1, 2, request, enabled) is None, "past the answer limit"
    assert answering_scheme(signer, None, 9, request, enabled) is not None, "no limit"
    assert answering_scheme(None, 1, 1, request, enabled) is None
    assert answering_scheme(signer, 1, 1, certificate_request(algorithms=[TlsliteScheme.ed25519]), enabled) is None


def test_unacceptable_certificate_requests() -> None:
    with pytest.raises(AlertIllegalParameter, match="empty context"):
        check_certificate_request(certificate_request(context=b""))
    with pytest.raises(AlertMissingExtension):
        check_certificate_request(certificate_request(algorithms=[]))
    empty = CertificateRequest(TLS_1_3).create(
        context=b"x", sig_algs=[TlsliteScheme.ed25519], extensions=[CompressedCertificateExtension().create([])]
    )
    with pytest.raises(AlertDecodeError):
        check_certificate_request(empty)
    check_certificate_request(certificate_request())


def test_validate_leaves_the_callers_settings_alone_and_shares_the_default_replay_store() -> None:
    settings = HandshakeSettings()
    settings.accept_early_data = 1024
    before = dict(vars(settings))
    first, second = settings.validate(), settings.validate()
    assert vars(settings) == before and settings.replay_store is None
    assert isinstance(first, HandshakeSettings) and first.accept_early_data == 1024
    assert first.replay_store is not None and first.replay_store is second.replay_store
    assert HandshakeSettings().validate().replay_store is None, "no early data, no register"


def test_the_callers_session_keeps_its_ticket_order() -> None:
    session = Session()
    older, newer = SimpleNamespace(time=1.0), SimpleNamespace(time=2.0)
    session.tickets = tickets = [older, newer]
    resumed = newest_ticket_first(session)
    assert resumed.tickets == [newer, older]
    assert session.tickets is tickets and tickets == [older, newer]

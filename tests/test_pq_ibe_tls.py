"""Every IBE-PSK scheme in real TLS handshakes: Boneh–Franklin (marker 1), TiigerTLS's hybrid (3), and ibepsk's
post-quantum lattice (0xFFFFFF02) and hybrid (0xFFFFFF03) ones, with 0-RTT, replay refusal, resumption and
post-handshake client authentication; refusals of our markers without the keys, garbled, or carrying TiigerTLS's
ciphertexts.

The lattice keys are TiigerTLS's demo TA and ``localhost`` key (tests/vectors/tiiger-pq-ibe.json): its key format
is the same for both lattice KEMs. ibepsk's own lattice TA is run end to end in test_cli_pq_ibe.py.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest
from test_early_data import REQUEST, EarlySeen, echo_rest
from test_tiiger_hybrid_tls import early_settings
from tlslite.constants import AlertDescription, ExtensionType, GroupName

from ibepsk import HandshakeMode, HandshakeSettings, IbeKeyring, TLSConnection
from ibepsk.client import ClientConfig, connect
from ibepsk.ibe import Encapsulator
from ibepsk.ibe.hybrid import tiiger_hybrid_encapsulate
from ibepsk.ibe.lattice import TiigerLatticeEncapsulator
from ibepsk.keys import TAMasterKey
from ibepsk.netem import FirstFlightRecorder
from ibepsk.tls.certs import TrustAnchors
from ibepsk.tls.early_data import EarlyDataStatus
from ibepsk.tls.psk import IbeScheme
from ibepsk.tls.settings import IBE_SCHEMES
from ibepsk.tls.signer import KeySigner

from pki import issue, make_ca
from pq_support import demo_lattice_key, demo_lattice_public
from tls_support import (
    TIMEOUT,
    AuthenticatingApplication,
    alert_description,
    capture_client_hello,
    converse,
    exchange,
    parse_server_hello,
    psk_extension,
    read_record,
    running_server,
    send_and_read_first_record,
    settings_with,
    wait_for,
)

#: What each scheme's ClientHello carries: marker, identity length, and its one key share.
WIRE = {
    "bf": (1, 161, GroupName.x25519),
    "tiiger-hybrid": (3, 4161, GroupName.x25519mlkem768),
    "lattice": (0xFFFFFF02, 3968, GroupName.x25519mlkem768),
    "hybrid": (0xFFFFFF03, 4129, GroupName.x25519mlkem768),
}


def scheme_keyring(scheme: str, ta: TAMasterKey) -> IbeKeyring:
    """A server keyring with the keys ``scheme`` needs, and no others (ibepsk's lattice needs no BF key)."""
    bf_keys = [] if scheme == "lattice" else [ta.extract("localhost")]
    if scheme == "bf":
        return IbeKeyring(bf_keys)
    if scheme == "tiiger-hybrid":
        return IbeKeyring(
            bf_keys, tiiger_lattice_keys=[demo_lattice_key()], tiiger_lattice_public=demo_lattice_public()
        )
    return IbeKeyring(bf_keys, lattice_keys=[demo_lattice_key()], lattice_public=demo_lattice_public())


def scheme_config(scheme: str, ta: TAMasterKey, **fields: Any) -> ClientConfig:
    """A client of ``scheme``: ibepsk's lattice one knows the lattice TA alone."""
    settings = settings_with(ibe_scheme=scheme, ibe_lattice_public_params=demo_lattice_public(), **fields)
    settings.ibe_public_params = None if scheme == "lattice" else ta.public
    return ClientConfig(settings, server_name="localhost")


def test_every_scheme_is_tested() -> None:
    assert set(WIRE) == set(IBE_SCHEMES)


@pytest.mark.parametrize("scheme", list(WIRE))
def test_client_hello_marker_size_and_key_share(scheme: str, ta: TAMasterKey) -> None:
    hello = capture_client_hello(scheme_config(scheme, ta).settings, "localhost").hello
    (identity,) = psk_extension(hello).identities
    marker, size, group = WIRE[scheme]
    assert (identity.obfuscated_ticket_age, len(identity.identity)) == (marker, size)
    assert [share.group for share in hello.getExtension(ExtensionType.key_share).client_shares] == [group]


@pytest.mark.parametrize("scheme", list(WIRE))
def test_early_data_replay_refusal_and_resumption(scheme: str, ta: TAMasterKey) -> None:
    seen = EarlySeen()
    ring = scheme_keyring(scheme, ta)
    config = scheme_config(scheme, ta)
    with running_server(early_settings(ring, seen), echo_rest) as (server, _):
        recorder = FirstFlightRecorder(socket.create_connection(server.address, timeout=TIMEOUT))
        conn = TLSConnection(recorder)
        conn.handshakeClientCert(settings=config.settings, serverName="localhost", early_data=REQUEST)
        try:
            assert conn.early_data_status == EarlyDataStatus.ACCEPTED
            assert (conn.handshake_mode, conn.ibe_identity) == (HandshakeMode.IBE_PSK, "localhost")
            assert conn.ecdhCurve == WIRE[scheme][2]
            assert conn.read() == b"0.5-rtt:" + REQUEST
            conn.write(b"more")
            assert conn.read() == b"echo:more"
            session = conn.session
        finally:
            conn.close()
        with socket.create_connection(server.address, timeout=TIMEOUT) as replay:
            replay.sendall(bytes(recorder.first_flight))
            parse_server_hello(read_record(replay))  # the server still answers the handshake
        wait_for(lambda: server.stats.early_data["replay"] == 1)
        resumed = exchange(server, config, session=session)
    assert resumed.mode == HandshakeMode.RESUMPTION
    assert seen.chunks == [REQUEST], "the replayed early data must never reach the application"
    assert ring.decapsulations == 2, "the first flight and its replay are opened; the resumption needs no key"


@pytest.mark.parametrize("scheme", list(WIRE))
def test_post_handshake_client_authentication(scheme: str, ta: TAMasterKey) -> None:
    ca = make_ca()
    client = issue(ca, "client-device", server=False)
    settings = early_settings(scheme_keyring(scheme, ta))
    settings.client_auth_anchors = TrustAnchors([ca.certificate])
    app = AuthenticatingApplication()
    signer = KeySigner([client.certificate], client.key)
    config = scheme_config(scheme, ta, client_auth_signer=signer)
    with running_server(settings, app) as (server, _):
        conn = connect(*server.address, config)
        try:
            assert conn.handshake_mode == HandshakeMode.IBE_PSK
            assert converse(conn) == b"echo:ping"
        finally:
            conn.close()
        outcome = app.next_outcome()
    assert outcome.error is None and outcome.client_auth is not None
    assert outcome.client_auth.subject == "CN=client-device"


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["lattice", "hybrid"])
def test_server_without_the_lattice_key_refuses_our_markers(scheme: str, ta: TAMasterKey) -> None:
    ring = IbeKeyring([ta.extract("localhost")])
    hello = capture_client_hello(scheme_config(scheme, ta).settings, "localhost").resign()
    with running_server(early_settings(ring)) as (server, _):
        answer = send_and_read_first_record(server.address, hello)
    assert alert_description(answer) == AlertDescription.unknown_psk_identity
    assert ring.decapsulations == 0


def test_tiiger_keys_open_no_ibepsk_hybrid(ta: TAMasterKey) -> None:
    """A keyring with TiigerTLS's lattice keys opens marker 3 only: ibepsk's markers need lattice_keys."""
    ring = scheme_keyring("tiiger-hybrid", ta)
    assert ring.schemes == {IbeScheme.BONEH_FRANKLIN, IbeScheme.HYBRID}
    hello = capture_client_hello(scheme_config("hybrid", ta).settings, "localhost").resign()
    with running_server(early_settings(ring)) as (server, _):
        answer = send_and_read_first_record(server.address, hello)
    assert alert_description(answer) == AlertDescription.unknown_psk_identity


def every_key(ta: TAMasterKey) -> IbeKeyring:
    """A server that opens TiigerTLS's hybrid and ibepsk's lattice and hybrid identities to localhost."""
    return IbeKeyring(
        [ta.extract("localhost")],
        tiiger_lattice_keys=[demo_lattice_key()],
        tiiger_lattice_public=demo_lattice_public(),
        lattice_keys=[demo_lattice_key()],
        lattice_public=demo_lattice_public(),
    )


#: (scheme, byte to flip in the identity): the lattice body, and the BF half of the hybrid.
GARBLED = [("lattice", 100), ("hybrid", 100), ("hybrid", 3968 + 100)]


@pytest.mark.parametrize(("scheme", "offset"), GARBLED)
def test_garbled_ciphertext_gets_decrypt_error(scheme: str, offset: int, ta: TAMasterKey) -> None:
    """A garbled lattice half opens to another key (implicit rejection), so its binder fails; a garbled BF half
    does not open. Both are decrypt_error, as for marker 1."""
    ring = every_key(ta)
    captured = capture_client_hello(scheme_config(scheme, ta).settings, "localhost")
    identity = psk_extension(captured.hello).identities[0]
    identity.identity[offset] ^= 0x01
    captured.psk_configs = [(identity.identity, captured.psk_configs[0][1], "sha256")]  # the sender's PSK
    with running_server(early_settings(ring)) as (server, _):
        answer = send_and_read_first_record(server.address, captured.resign())
    assert alert_description(answer) == AlertDescription.decrypt_error
    assert ring.decapsulations == 1


def tiiger_identities(ta: TAMasterKey) -> dict[str, tuple[bytes, bytes]]:
    """TiigerTLS-format identities to localhost and their PSKs: its lattice KEM alone, and its hybrid."""
    lattice = TiigerLatticeEncapsulator("localhost", demo_lattice_public().h)
    alone = lattice.encapsulate()
    hybrid = tiiger_hybrid_encapsulate(lattice, Encapsulator("localhost", ta.public.public_key))
    return {"lattice": (alone.ciphertext, alone.psk), "hybrid": (hybrid.ciphertext, hybrid.psk)}


@pytest.mark.parametrize(
    ("marker", "kind", "cut", "alert"),
    [
        # our hybrid marker on TiigerTLS's hybrid identity: the length is not ours, so it is no IBE identity
        (IbeScheme.IBEPSK_HYBRID, "hybrid", None, AlertDescription.unknown_psk_identity),
        # our lattice marker on TiigerTLS's lattice identity, whole (wrong length) and without σ (our length)
        (IbeScheme.IBEPSK_LATTICE, "lattice", None, AlertDescription.unknown_psk_identity),
        (IbeScheme.IBEPSK_LATTICE, "lattice", 3968, AlertDescription.decrypt_error),
    ],
)
def test_our_markers_refuse_tiiger_ciphertexts(
    marker: IbeScheme,
    kind: str,
    cut: int | None,
    alert: int,
    ta: TAMasterKey,
) -> None:
    """Marker confusion: a TiigerTLS-format ciphertext under ibepsk's marker never opens to TiigerTLS's PSK, so the
    server refuses it with the RFC alert (its re-encryption under our coins fails: another key, a failed binder)."""
    ciphertext, psk = tiiger_identities(ta)[kind]
    captured = capture_client_hello(scheme_config("hybrid", ta).settings, "localhost")
    identity = psk_extension(captured.hello).identities[0]
    identity.identity, identity.obfuscated_ticket_age = bytearray(ciphertext[:cut]), marker
    captured.psk_configs = [(identity.identity, bytearray(psk), "sha256")]
    with running_server(early_settings(every_key(ta))) as (server, _):
        answer = send_and_read_first_record(server.address, captured.resign())
    assert alert_description(answer) == alert


# --- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scheme", "message"),
    [
        ("lattice", "'lattice' needs ibe_lattice_public_params"),
        ("hybrid", "'hybrid' needs ibe_public_params and ibe_lattice_public_params"),
        ("kyber", "ibe_scheme must be one of bf, tiiger-hybrid, lattice, hybrid"),
    ],
)
def test_schemes_need_their_ta(scheme: str, message: str, ta: TAMasterKey) -> None:
    settings = HandshakeSettings()
    settings.ibe_public_params, settings.ibe_scheme = ta.public, scheme
    with pytest.raises(ValueError, match=message):
        settings.validate()


def test_lattice_keyring_without_its_ta_is_refused() -> None:
    with pytest.raises(ValueError, match="lattice_public"):
        IbeKeyring([], lattice_keys=[demo_lattice_key()])

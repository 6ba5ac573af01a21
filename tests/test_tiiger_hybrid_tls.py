"""TiigerTLS's hybrid IBE-PSK (marker 3) and lattice-only IBE-PSK (marker 2) in real TLS handshakes.

The lattice keys are TiigerTLS's demo lattice TA and its ``localhost`` key (tests/vectors/tiiger-pq-ibe.json).
Marker 3's PSK is only as secret as its BF half: these tests check interop and refusals, not secrecy.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest
from test_early_data import EarlySeen
from tlslite.constants import AlertDescription, ExtensionType, GroupName

from ibepsk import HandshakeSettings, IbeKeyring
from ibepsk.client import ClientConfig
from ibepsk.ibe.lattice import TiigerLatticeEncapsulator
from ibepsk.keys import IdentityKey, LatticeIdentityKey, LatticeTAPublicParams, TAMasterKey, TAPublicParams
from ibepsk.tls.psk import IbeScheme
from ibepsk.tls.replay import MemoryReplayStore

from pq_support import demo_lattice_key, demo_lattice_public, demo_secret_key, pq_vectors
from tls_support import (
    TIMEOUT,
    alert_description,
    capture_client_hello,
    ibe_client_config,
    parse_server_hello,
    psk_extension,
    read_record,
    running_server,
    send_and_read_first_record,
)


@pytest.fixture(scope="module")
def lattice_public() -> LatticeTAPublicParams:
    return demo_lattice_public()


@pytest.fixture(scope="module")
def lattice_key() -> LatticeIdentityKey:
    return demo_lattice_key()


def keyring(
    bf_key: IdentityKey,
    lattice_key: LatticeIdentityKey | None,
    lattice_public: LatticeTAPublicParams,
    insecure: bool = False,
) -> IbeKeyring:
    return IbeKeyring(
        [bf_key],
        tiiger_lattice_keys=[lattice_key] if lattice_key else [],
        tiiger_lattice_public=lattice_public,
        allow_insecure_tiiger_lattice_only=insecure,
    )


def early_settings(ring: IbeKeyring, seen: EarlySeen | None = None) -> HandshakeSettings:
    settings = HandshakeSettings()
    settings.ibe_keyring = ring
    settings.accept_early_data = 1024
    settings.replay_store = MemoryReplayStore(window_seconds=3600)
    settings.ticketKeys = [bytearray(32)]
    if seen is not None:
        settings.early_data_handler = seen.handler
    return settings


# --- TiigerTLS's captured POST_QUANTUM first flight --------------------------------------------


def demo_bf_key(vectors: dict[str, str]) -> IdentityKey:
    public = TAPublicParams.from_bytes(bytes.fromhex(vectors["ta_public_key_g1"]))
    return IdentityKey.from_bytes("localhost", bytes.fromhex(vectors["identity_key_g2"]), public)


def test_captured_post_quantum_flight_opens_and_its_early_data_decrypts(
    vectors: dict[str, str], lattice_key: LatticeIdentityKey, lattice_public: LatticeTAPublicParams
) -> None:
    flight = pq_vectors()["captured_first_flight"]
    seen = EarlySeen()
    ring = keyring(demo_bf_key(vectors), lattice_key, lattice_public)
    with running_server(early_settings(ring, seen)) as (server, _):
        with socket.create_connection(server.address, timeout=TIMEOUT) as sock:
            sock.sendall(bytes.fromhex(flight["records_hex"]))
            server_hello = parse_server_hello(read_record(sock))
            assert seen.arrived.wait(TIMEOUT), "the server never decrypted the 0-RTT record"
    assert server_hello.getExtension(ExtensionType.pre_shared_key).selected == 0
    assert server_hello.getExtension(ExtensionType.key_share).server_share.group == GroupName.x25519mlkem768
    assert seen.chunks == [bytes.fromhex(flight["early_data_plaintext_hex"])]
    assert ring.decapsulations == 1


def test_captured_flight_needs_the_lattice_key(vectors: dict[str, str], lattice_public: LatticeTAPublicParams) -> None:
    """A server with the BF key alone does not take marker 3 (and has no certificate to fall back to)."""
    flight = bytes.fromhex(pq_vectors()["captured_first_flight"]["records_hex"])
    ring = keyring(demo_bf_key(vectors), None, lattice_public)
    with running_server(early_settings(ring)) as (server, _):
        answer = send_and_read_first_record(server.address, flight)
    assert alert_description(answer) == AlertDescription.unknown_psk_identity
    assert ring.decapsulations == 0


# --- marker 2: refused unless explicitly allowed -----------------------------------------------


def marker_2_hello(ta: TAMasterKey, lattice_public: LatticeTAPublicParams) -> bytes:
    """A lean ClientHello whose IBE-PSK is TiigerTLS's lattice-only one, with a valid binder."""
    captured = capture_client_hello(ibe_client_config(ta.public).settings, "localhost")
    encapsulation = TiigerLatticeEncapsulator("localhost", lattice_public.h).encapsulate()
    identity = psk_extension(captured.hello).identities[0]
    identity.identity, identity.obfuscated_ticket_age = bytearray(encapsulation.ciphertext), IbeScheme.LATTICE
    captured.psk_configs = [(identity.identity, bytearray(encapsulation.psk), "sha256")]
    return captured.resign()


@pytest.mark.parametrize("insecure", [False, True])
def test_marker_2_only_with_the_insecure_setting(
    ta: TAMasterKey, lattice_key: LatticeIdentityKey, lattice_public: LatticeTAPublicParams, insecure: bool
) -> None:
    ring = keyring(ta.extract("localhost"), lattice_key, lattice_public, insecure=insecure)
    with running_server(early_settings(ring)) as (server, _):
        answer = send_and_read_first_record(server.address, marker_2_hello(ta, lattice_public))
    if insecure:
        assert parse_server_hello(answer).getExtension(ExtensionType.pre_shared_key).selected == 0
    else:
        assert alert_description(answer) == AlertDescription.unknown_psk_identity
        assert ring.decapsulations == 0


def test_lattice_key_without_a_bf_key_is_refused(ta: TAMasterKey, lattice_public: LatticeTAPublicParams) -> None:
    other = LatticeIdentityKey.from_coefficients("localhost", demo_secret_key(), lattice_public)
    with pytest.raises(ValueError, match="marker 3 needs both"):
        IbeKeyring([ta.extract("gateway")], tiiger_lattice_keys=[other], tiiger_lattice_public=lattice_public)


# --- ibepsk client and server ------------------------------------------------------------------


def hybrid_config(ta: TAMasterKey, lattice_public: LatticeTAPublicParams, **fields: Any) -> ClientConfig:
    return ibe_client_config(ta.public, ibe_scheme="tiiger-hybrid", ibe_lattice_public_params=lattice_public, **fields)


def test_client_sends_marker_3_with_x25519mlkem768_alone(
    ta: TAMasterKey, lattice_public: LatticeTAPublicParams
) -> None:
    settings = hybrid_config(ta, lattice_public).settings
    hello = capture_client_hello(settings, "localhost").hello
    assert settings.eccCurves == HandshakeSettings().eccCurves, "the caller's settings stay as they were"
    (identity,) = psk_extension(hello).identities
    assert (identity.obfuscated_ticket_age, len(identity.identity)) == (3, 4161)
    assert hello.getExtension(ExtensionType.supported_groups).groups == [GroupName.x25519mlkem768]
    assert [share.group for share in hello.getExtension(ExtensionType.key_share).client_shares] == [0x11EC]


def test_tiiger_hybrid_needs_both_public_keys(ta: TAMasterKey) -> None:
    settings = HandshakeSettings()
    settings.ibe_public_params, settings.ibe_scheme = ta.public, "tiiger-hybrid"
    with pytest.raises(ValueError, match="needs ibe_public_params and ibe_lattice_public_params"):
        settings.validate()


# 0-RTT, replay refusal, resumption and PHA: test_pq_ibe_tls.py, for every scheme.

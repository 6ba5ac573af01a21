"""X25519MLKEM768 and SecP256r1MLKEM768 key shares on cryptography's ML-KEM.

tlslite-ng 0.8.2 and 0.9.0b2 both name the groups and run them on the pure-Python kyber-py, an
optional dependency: the tests against tlslite-ng's own implementation need kyber-py installed;
ibepsk's own handshakes do not.
"""

from __future__ import annotations

import os

import pytest
import tlslite
from test_accel import (
    Credentials,
    assert_data_both_ways,
    assert_group_handshake,
    handshake,
)
from tlslite.constants import GroupName
from tlslite.errors import TLSIllegalParameterException
from tlslite.keyexchange import KEMKeyExchange
from tlslite.messages import ServerHello
from tlslite.utils.compat import ML_KEM_AVAILABLE

from ibepsk import HandshakeMode, HandshakeSettings, IbeKeyring, TLSConnection
from ibepsk.keys import TAMasterKey
from ibepsk.tls._crypto import mlkem

from pki import Issued
from tls_support import (
    Pair,
    capture_client_hello,
    exchange,
    ibe_client_config,
    parse_server_hello,
    running_server,
    send_and_read_first_record,
)

#: tox's kyber082/kyber090 environments install kyber-py and set this, so there these tests run or fail, never skip.
KYBER_PY_REQUIRED = os.environ.get("IBEPSK_REQUIRE_KYBER_PY") == "1"
needs_kyber_py = pytest.mark.skipif(
    not ML_KEM_AVAILABLE and not KYBER_PY_REQUIRED,
    reason="tlslite-ng's own ML-KEM groups need kyber-py (pip install kyber-py; tox -e kyber082,kyber090)",
)

HYBRIDS = ["x25519mlkem768", "secp256r1mlkem768"]
#: (client share, server share) lengths: ML-KEM-768 encapsulation key / ciphertext and the ECDH share.
SHARE_LENGTHS = {"x25519mlkem768": (1184 + 32, 1088 + 32), "secp256r1mlkem768": (1184 + 65, 1088 + 65)}
HELLO_RETRY_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")


def ours(group: str) -> mlkem.HybridKemKeyExchange:
    exchange = mlkem.key_exchange_for(getattr(GroupName, group), (3, 4))
    assert exchange is not None
    return exchange


# --- the key exchange objects ------------------------------------------------------------------


@pytest.mark.parametrize("group", HYBRIDS)
def test_ibepsk_uses_cryptography_for_the_hybrid_groups(group: str) -> None:
    assert isinstance(TLSConnection._getKEX(getattr(GroupName, group), (3, 4)), mlkem.HybridKemKeyExchange)


@pytest.mark.parametrize("group", HYBRIDS)
def test_shares_and_secrets_between_two_of_ours(group: str) -> None:
    client, server = ours(group), ours(group)
    private = client.get_random_private_key()
    client_share = client.calc_public_value(private)
    secret, server_share = server.encapsulate_key(client_share)
    assert (len(client_share), len(server_share)) == SHARE_LENGTHS[group]
    assert client.calc_shared_key(private, server_share) == secret
    assert len(secret) == 32 + 32


def test_x25519mlkem768_puts_ml_kem_first() -> None:
    """draft-ietf-tls-ecdhe-mlkem: encapsulation key ‖ X25519 share, ciphertext ‖ X25519 share, secrets likewise."""
    exchange = ours("x25519mlkem768")
    private = exchange.get_random_private_key()
    ml_kem_key, x25519_key = private
    share = bytes(exchange.calc_public_value(private))
    assert share == ml_kem_key.public_key().public_bytes_raw() + x25519_key.public_key().public_bytes_raw()
    secret, server_share = ours("x25519mlkem768").encapsulate_key(bytearray(share))
    assert secret[:32] == ml_kem_key.decapsulate(bytes(server_share[:1088]))


@needs_kyber_py
@pytest.mark.parametrize("group", HYBRIDS)
def test_our_client_share_with_tlslite_server(group: str) -> None:
    client, stock = ours(group), KEMKeyExchange(getattr(GroupName, group), (3, 4))
    private = client.get_random_private_key()
    secret, server_share = stock.encapsulate_key(client.calc_public_value(private))
    assert client.calc_shared_key(private, server_share) == secret


@needs_kyber_py
@pytest.mark.parametrize("group", HYBRIDS)
def test_tlslite_client_share_with_our_server(group: str) -> None:
    stock = KEMKeyExchange(getattr(GroupName, group), (3, 4))
    private = stock.get_random_private_key()
    secret, server_share = ours(group).encapsulate_key(stock.calc_public_value(private))
    assert stock.calc_shared_key(private, server_share) == secret


BAD_CLIENT_SHARES = [
    ("x25519mlkem768", bytes(1215)),
    ("x25519mlkem768", b"\xff" * 1184 + os.urandom(32)),  # coefficients >= q: FIPS 203's modulus check
    ("x25519mlkem768", bytes(1184) + bytes(32)),  # X25519 all-zero share (low order)
    ("secp256r1mlkem768", bytes(1184 + 65)),  # not a point
]


@pytest.mark.parametrize(("group", "share"), BAD_CLIENT_SHARES)
def test_bad_client_share_raises_what_tlslite_raises(group: str, share: bytes) -> None:
    with pytest.raises(TLSIllegalParameterException):
        ours(group).encapsulate_key(bytearray(share))


@pytest.mark.parametrize("length", [0, 1088 + 31, 1088 + 33])
def test_bad_server_share_length_raises_what_tlslite_raises(length: int) -> None:
    exchange = ours("x25519mlkem768")
    with pytest.raises(TLSIllegalParameterException):
        exchange.calc_shared_key(exchange.get_random_private_key(), bytearray(length))


# --- settings ----------------------------------------------------------------------------------


def test_defaults_lead_with_the_hybrid_groups_and_validate() -> None:
    checked = HandshakeSettings().validate()
    assert checked.eccCurves[:2] == HYBRIDS
    assert checked.keyShares == ["x25519mlkem768", "x25519"]  # no P-256 share: a generation per handshake saved


def test_a_hybrid_key_share_must_be_an_enabled_group() -> None:
    settings = HandshakeSettings()
    settings.eccCurves = ["x25519"]
    with pytest.raises(ValueError, match="not enabled"):
        settings.validate()


# --- handshakes --------------------------------------------------------------------------------


def test_certificate_handshake_between_ibepsk_ends_uses_x25519mlkem768(server_cert: Issued, pairs: list[Pair]) -> None:
    pair = handshake(TLSConnection, TLSConnection, server=Credentials.of(server_cert))
    pairs.append(pair)
    assert pair.client.ecdhCurve == pair.server.ecdhCurve == GroupName.x25519mlkem768
    assert_data_both_ways(pair)


def test_server_prefers_x25519mlkem768_without_hello_retry(server_cert: Issued) -> None:
    client = HandshakeSettings()
    client.keyShares = ["x25519", "x25519mlkem768"]  # the client's own preference comes first
    hello = capture_client_hello(client, "localhost")
    with running_server(HandshakeSettings(), cert=server_cert) as (server, _):
        answer: ServerHello = parse_server_hello(send_and_read_first_record(server.address, hello.unsigned()))
    assert bytes(answer.random) != HELLO_RETRY_RANDOM
    assert answer.getExtension(tlslite.constants.ExtensionType.key_share).server_share.group == 0x11EC


def test_ibe_psk_handshake_with_x25519mlkem768(ta: TAMasterKey) -> None:
    settings = HandshakeSettings()
    settings.ibe_keyring = IbeKeyring([ta.extract("localhost")])
    with running_server(settings) as (server, _):
        result = exchange(server, ibe_client_config(ta.public, keyShares=["x25519mlkem768"]))
    assert (result.mode, result.psk_key_exchange) == (HandshakeMode.IBE_PSK, "psk_dhe_ke")
    assert result.group == "x25519mlkem768"


@needs_kyber_py
@pytest.mark.parametrize("direction", ["ibepsk-client", "ibepsk-server"])
@pytest.mark.parametrize("group", HYBRIDS)
def test_with_stock_tlslite(group: str, direction: str, server_cert: Issued, pairs: list[Pair]) -> None:
    assert_group_handshake(group, direction, server_cert, pairs)

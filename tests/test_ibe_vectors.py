"""Known-answer tests against the values TiigerTLS's own code produced."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from ibepsk.ibe import Decapsulator, Encapsulator, available_backends, get_backend
from ibepsk.ibe.encoding import decode_g1, decode_g2, encode_g1, encode_g2
from ibepsk.ibe.h3 import h3
from ibepsk.ibe.hashes import h1, h4
from ibepsk.ibe.kem import CIPHERTEXT_BYTES, tiiger_sigma_and_message

BACKENDS = available_backends()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Any:
    return get_backend(request.param)


def test_arkworks_is_always_available() -> None:
    assert "arkworks" in BACKENDS


def test_h1_localhost(backend: Any, vectors: dict[str, Any]) -> None:
    point = h1(backend, vectors["h1"]["identity"].encode())
    assert encode_g2(backend, point).hex() == vectors["h1"]["point_g2"]


def test_h3_and_r_times_p1(backend: Any, vectors: dict[str, Any]) -> None:
    r = h3(bytes.fromhex(vectors["h3"]["sigma"]), bytes.fromhex(vectors["h3"]["m"]))
    assert r.to_bytes(32, "big").hex() == vectors["h3"]["r"]
    u = backend.g1_mul(backend.g1_generator(), r)
    assert encode_g1(backend, u).hex() == vectors["h3"]["r_times_p1_g1"]


def test_h4(vectors: dict[str, Any]) -> None:
    assert h4(bytes.fromhex(vectors["h4"]["input"])).hex() == vectors["h4"]["output"]


def test_gt_serialisation_matches_miracl(backend: Any, vectors: dict[str, Any]) -> None:
    key = decode_g2(backend, bytes.fromhex(vectors["identity_key_g2"]))
    u = decode_g1(backend, bytes.fromhex(vectors["encapsulations"][0]["ciphertext"])[:97])
    z = backend.gt_to_bytes(backend.pairing(key, u))
    assert z.hex() == vectors["gt_of_first_decapsulation"]["z"]


def test_point_codecs_round_trip(backend: Any, vectors: dict[str, Any]) -> None:
    for field, decode, encode in (
        ("ta_public_key_g1", decode_g1, encode_g1),
        ("identity_key_g2", decode_g2, encode_g2),
    ):
        raw = bytes.fromhex(vectors[field])
        assert encode(backend, decode(backend, raw)) == raw


@pytest.mark.parametrize("index", [0, 1, 2])
def test_encapsulations_reproduced_bit_for_bit(backend: Any, vectors: dict[str, Any], index: int) -> None:
    vector = vectors["encapsulations"][index]
    sigma, message = tiiger_sigma_and_message(bytes.fromhex(vector["r32"]))
    encapsulator = Encapsulator(vectors["identity"], bytes.fromhex(vectors["ta_public_key_g1"]), backend)
    result = encapsulator.encapsulate_with(sigma, message)
    assert result.ciphertext.hex() == vector["ciphertext"]
    assert result.psk.hex() == vector["psk"]


@pytest.mark.parametrize("index", [0, 1, 2])
def test_decapsulations(backend: Any, vectors: dict[str, Any], index: int) -> None:
    vector = vectors["encapsulations"][index]
    decapsulator = Decapsulator(bytes.fromhex(vectors["identity_key_g2"]), backend)
    assert decapsulator.decapsulate(bytes.fromhex(vector["ciphertext"])).hex() == vector["psk"]


def _leading_handshake_bytes(records: bytes) -> bytes:
    """The payloads of the handshake records the flight starts with, joined (a ClientHello may span several)."""
    assert records[0] == 0x16, "first record must be a handshake record"
    payloads, pos = [], 0
    while pos < len(records) and records[pos] == 0x16:
        length = struct.unpack(">H", records[pos + 3 : pos + 5])[0]
        payloads.append(records[pos + 5 : pos + 5 + length])
        pos += 5 + length
    return b"".join(payloads)


def _captured_psk_identity(records: bytes) -> tuple[bytes, int]:
    """Walk the captured ClientHello to the pre_shared_key extension's first identity."""
    hello = _leading_handshake_bytes(records)
    assert hello[0] == 1, "first handshake message must be a ClientHello"
    pos = 4 + 2 + 32
    pos += 1 + hello[pos]  # legacy_session_id
    pos += 2 + struct.unpack(">H", hello[pos : pos + 2])[0]  # cipher_suites
    pos += 1 + hello[pos]  # legacy_compression_methods
    end = pos + 2 + struct.unpack(">H", hello[pos : pos + 2])[0]
    pos += 2
    while pos < end:
        ext_type, ext_len = struct.unpack(">HH", hello[pos : pos + 4])
        body = hello[pos + 4 : pos + 4 + ext_len]
        if ext_type == 41:  # pre_shared_key
            identity_len = struct.unpack(">H", body[2:4])[0]
            identity = body[4 : 4 + identity_len]
            (age,) = struct.unpack(">I", body[4 + identity_len : 8 + identity_len])
            return identity, age
        pos += 4 + ext_len
    raise AssertionError("no pre_shared_key extension in the captured ClientHello")


def test_captured_tiiger_client_hello_decapsulates(backend: Any, vectors: dict[str, Any]) -> None:
    flight = vectors["captured_first_flight"]
    identity, age = _captured_psk_identity(bytes.fromhex(flight["records_hex"]))
    assert len(identity) == CIPHERTEXT_BYTES
    assert age == flight["obfuscated_ticket_age"] == 1
    decapsulator = Decapsulator(bytes.fromhex(vectors["identity_key_g2"]), backend)
    assert decapsulator.decapsulate(identity).hex() == flight["psk"]

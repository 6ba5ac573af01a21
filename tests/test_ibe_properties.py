"""Round trips, backend agreement, and the rejection of every malformed ciphertext."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ibepsk.ibe import (
    BackendUnavailableError,
    Decapsulator,
    Encapsulator,
    IbeDecapsulationError,
    available_backends,
    get_backend,
)
from ibepsk.ibe.backend import FIELD_PRIME
from ibepsk.ibe.encoding import G1_BYTES, encode_g1
from ibepsk.ibe.kem import CIPHERTEXT_BYTES
from ibepsk.keys import TAMasterKey

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def setup(vectors: dict[str, Any]) -> dict[str, Any]:
    key = bytes.fromhex(vectors["identity_key_g2"])
    ciphertext = bytes.fromhex(vectors["encapsulations"][0]["ciphertext"])
    return {"decapsulator": Decapsulator(key), "ciphertext": ciphertext}


def test_round_trip_with_fresh_ta() -> None:
    master = TAMasterKey.generate()
    key = master.extract("device-gateway.example")
    encapsulation = Encapsulator("device-gateway.example", master.public.public_key).encapsulate()
    assert len(encapsulation.ciphertext) == CIPHERTEXT_BYTES
    assert Decapsulator(key.key).decapsulate(encapsulation.ciphertext) == encapsulation.psk


def test_every_encapsulation_is_fresh(vectors: dict[str, Any]) -> None:
    encapsulator = Encapsulator("localhost", bytes.fromhex(vectors["ta_public_key_g1"]))
    first, second = encapsulator.encapsulate(), encapsulator.encapsulate()
    assert first.ciphertext != second.ciphertext and first.psk != second.psk


def test_wrong_identity_key_rejects() -> None:
    master = TAMasterKey.generate()
    ciphertext = Encapsulator("alice", master.public.public_key).encapsulate().ciphertext
    with pytest.raises(IbeDecapsulationError):
        Decapsulator(master.extract("bob").key).decapsulate(ciphertext)


def test_psk_is_not_in_repr(vectors: dict[str, Any]) -> None:
    encapsulation = Encapsulator("localhost", bytes.fromhex(vectors["ta_public_key_g1"])).encapsulate()
    assert encapsulation.psk.hex() not in repr(encapsulation)


@pytest.mark.skipif(len(available_backends()) < 2, reason="pymcl is not installed")
def test_backends_agree_byte_for_byte(vectors: dict[str, Any]) -> None:
    ark, mcl = get_backend("arkworks"), get_backend("pymcl")
    ppub = bytes.fromhex(vectors["ta_public_key_g1"])
    for _ in range(5):
        sigma, message = os.urandom(32), os.urandom(32)
        a = Encapsulator("localhost", ppub, ark).encapsulate_with(sigma, message)
        b = Encapsulator("localhost", ppub, mcl).encapsulate_with(sigma, message)
        assert a.ciphertext == b.ciphertext
        z_ark = ark.gt_to_bytes(ark.pairing(ark.g2_generator(), ark.g1_generator()))
        z_mcl = mcl.gt_to_bytes(mcl.pairing(mcl.g2_generator(), mcl.g1_generator()))
        assert z_ark == z_mcl


def test_unknown_backend_is_a_clear_error() -> None:
    with pytest.raises(BackendUnavailableError, match="unknown pairing backend"):
        get_backend("no-such-backend")


@FAST
@given(data=st.binary(min_size=0, max_size=400))
def test_random_bytes_of_any_length_are_rejected(setup: dict[str, Any], data: bytes) -> None:
    with pytest.raises(IbeDecapsulationError):
        setup["decapsulator"].decapsulate(data)


def test_every_length_0_to_400_is_rejected(setup: dict[str, Any]) -> None:
    for length in range(401):
        with pytest.raises(IbeDecapsulationError):
            setup["decapsulator"].decapsulate(os.urandom(length))


@FAST
@given(index=st.integers(G1_BYTES, CIPHERTEXT_BYTES - 1), flip=st.integers(1, 255))
def test_flipped_v_or_w_byte_is_rejected(setup: dict[str, Any], index: int, flip: int) -> None:
    tampered = bytearray(setup["ciphertext"])
    tampered[index] ^= flip
    with pytest.raises(IbeDecapsulationError):
        setup["decapsulator"].decapsulate(bytes(tampered))


def _with_u(ciphertext: bytes, encoded_u: bytes) -> bytes:
    return encoded_u + ciphertext[G1_BYTES:]


def _coordinates(x: int, y: int) -> bytes:
    return b"\x04" + x.to_bytes(48, "big") + y.to_bytes(48, "big")


def _point_outside_subgroup() -> bytes:
    """A point on y^2 = x^3 + 4 whose order is not q (the cofactor is ~2^126)."""
    x = 0
    while True:
        x += 1
        rhs = (x**3 + 4) % FIELD_PRIME
        if pow(rhs, (FIELD_PRIME - 1) // 2, FIELD_PRIME) == 1:
            return _coordinates(x, pow(rhs, (FIELD_PRIME + 1) // 4, FIELD_PRIME))


@pytest.mark.parametrize(
    "encoded_u",
    [
        pytest.param(_coordinates(1, 1), id="off-curve"),
        pytest.param(bytes(G1_BYTES), id="all-zero"),
        pytest.param(_coordinates(0, 0), id="infinity-as-zero-coordinates"),
        pytest.param(_point_outside_subgroup(), id="outside-subgroup"),
        pytest.param(b"\x02" + bytes(96), id="compressed-prefix"),
        pytest.param(b"\x04" + b"\xff" * 96, id="coordinates-above-p"),
    ],
)
@pytest.mark.parametrize("backend_name", available_backends())
def test_bad_u_is_rejected(setup: dict[str, Any], vectors: dict[str, Any], encoded_u: bytes, backend_name: str) -> None:
    decapsulator = Decapsulator(bytes.fromhex(vectors["identity_key_g2"]), get_backend(backend_name))
    with pytest.raises(IbeDecapsulationError):
        decapsulator.decapsulate(_with_u(setup["ciphertext"], encoded_u))


@pytest.mark.parametrize("backend_name", available_backends())
def test_coordinate_plus_p_is_rejected(setup: dict[str, Any], vectors: dict[str, Any], backend_name: str) -> None:
    # The same point with x written as x + p: equal modulo p, but not canonical.
    backend = get_backend(backend_name)
    encoded = encode_g1(backend, backend.g1_generator())
    x = int.from_bytes(encoded[1:49], "big") + FIELD_PRIME
    y = int.from_bytes(encoded[49:], "big")
    decapsulator = Decapsulator(bytes.fromhex(vectors["identity_key_g2"]), backend)
    with pytest.raises(IbeDecapsulationError):
        decapsulator.decapsulate(_with_u(setup["ciphertext"], _coordinates(x, y)))


def test_valid_u_but_foreign_v_w_is_rejected(setup: dict[str, Any]) -> None:
    backend = get_backend()
    u = encode_g1(backend, backend.g1_mul(backend.g1_generator(), 12345))
    with pytest.raises(IbeDecapsulationError):
        setup["decapsulator"].decapsulate(_with_u(setup["ciphertext"], u))

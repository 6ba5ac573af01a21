"""Known-answer tests of TiigerTLS's lattice IBE-KEM and its hybrid IBE-PSK (values TiigerTLS's own code produced)."""

from __future__ import annotations

import hashlib
import math
from typing import Any

import pytest

from ibepsk.ibe import Decapsulator, Encapsulator
from ibepsk.ibe._ring import PSI, Q, Ring, brv10
from ibepsk.ibe.hybrid import TIIGER_HYBRID_IDENTITY_BYTES, tiiger_hybrid_decapsulate, tiiger_hybrid_encapsulate_with
from ibepsk.ibe.lattice import (
    MONTGOMERY_R,
    TIIGER_CIPHERTEXT_BYTES,
    TIIGER_REJECTION_MESSAGE,
    TiigerLatticeDecapsulator,
    TiigerLatticeEncapsulator,
    decapsulate,
    expand_randomness,
    hash_identity,
    prf,
    recover_tiiger_key,
    stored_ta_public_key,
    ta_public_key_from_stored,
)

from pq_support import EVERY_RING, demo_secret_key, demo_ta_public_key, pq_vectors
from test_ibe_vectors import _captured_psk_identity

PQ = pq_vectors()


def _sha256_be4(values: list[int]) -> str:
    return hashlib.sha256(b"".join(x.to_bytes(4, "big") for x in values)).hexdigest()


def _centred(values: list[int]) -> list[int]:
    return [x - Q if x > Q // 2 else x for x in values]


def _localhost(ring: Ring) -> tuple[TiigerLatticeEncapsulator, TiigerLatticeDecapsulator]:
    h = demo_ta_public_key()
    return TiigerLatticeEncapsulator("localhost", h, ring), TiigerLatticeDecapsulator(
        "localhost", demo_secret_key(), h, ring
    )


def test_parameters() -> None:
    parameters = PQ["parameters"]
    assert (parameters["q"], parameters["n"], parameters["psi"]) == (Q, 1024, PSI)
    assert parameters["montgomery_R_mod_q"] == MONTGOMERY_R
    assert parameters["ciphertext_bytes"] == TIIGER_CIPHERTEXT_BYTES
    assert pow(PSI, 1024, Q) == Q - 1, "ψ is a primitive 2048-th root of unity"


@EVERY_RING
def test_hash_identity(ring: Ring) -> None:
    coefficients = ring.to_ints(hash_identity(ring, b"localhost"))
    assert coefficients == PQ["hash_id_localhost"]["coefficients"]
    assert _sha256_be4(coefficients) == PQ["hash_id_localhost"]["sha256_be4"]
    other = PQ["other_identity_encapsulation"]
    assert ring.to_ints(hash_identity(ring, other["identity"].encode()))[:16] == other["hash_id_first16"]


@EVERY_RING
def test_ntt_is_evaluation_at_the_odd_powers_of_psi_in_bit_reversed_order(ring: Ring) -> None:
    coefficients = PQ["hash_id_localhost"]["coefficients"]
    evaluations = ring.to_ints(ring.ntt(ring.from_ints(coefficients)))
    assert evaluations[:8] == PQ["ntt_check"]["first8"]
    for i in (0, 1, 513, 1023):
        point = pow(PSI, 2 * brv10(i) + 1, Q)
        assert evaluations[i] == sum(c * pow(point, j, Q) for j, c in enumerate(coefficients)) % Q
    assert ring.to_ints(ring.intt(ring.ntt(ring.from_ints(coefficients)))) == coefficients


@EVERY_RING
def test_stored_ta_public_key_format(ring: Ring) -> None:
    stored, h = PQ["ta_public_key"]["stored_ntt_montgomery"], PQ["ta_public_key"]["coefficients"]
    assert _sha256_be4(stored) == PQ["ta_public_key"]["stored_sha256_be4"]
    assert _sha256_be4(h) == PQ["ta_public_key"]["coefficients_sha256_be4"]
    assert ta_public_key_from_stored(stored, ring) == h
    assert stored_ta_public_key(h, ring) == stored
    assert h[:8] == [52424332, 86419331, 100281829, 26092113, 31425049, 44501326, 22753073, 25911274]


@EVERY_RING
def test_identity_key_satisfies_s1_plus_s_h_equals_hash_of_identity(ring: Ring) -> None:
    """The vectors' s1 = H(ID) - s·h, so s·h is our ring product with a signed key; and spec §3's figures."""
    s, s1 = PQ["identity_secret_key_s"], PQ["identity_short_s1"]
    s_times_h = ring.intt(ring.pointwise(ring.ntt(ring.from_ints(s)), ring.ntt(ring.from_ints(demo_ta_public_key()))))
    t = ring.to_ints(hash_identity(ring, b"localhost"))
    assert _centred([(a - b) % Q for a, b in zip(t, ring.to_ints(s_times_h), strict=True)]) == s1
    assert max(map(abs, s)) == 29638 and max(map(abs, s1)) == 40021
    assert sum(map(abs, s)) + sum(map(abs, s1)) == 17_247_069
    assert math.isqrt(sum(x * x for x in s + s1)) == 474_551


def test_rejection_constant() -> None:
    assert TIIGER_REJECTION_MESSAGE.hex() == PQ["implicit_rejection_rkey"]


@EVERY_RING
def test_intermediates_of_the_first_encapsulation(ring: Ring) -> None:
    steps = PQ["intermediates_of_encapsulation0"]
    message = expand_randomness(bytes.fromhex(PQ["encapsulations"][0]["r32"]))
    sigma = hashlib.sha3_256(message).digest()
    assert (message.hex(), sigma.hex()) == (steps["ikey"], steps["sigma"])
    for domain, name in enumerate(("r", "e1", "e2")):
        assert _centred(ring.to_ints(ring.ternary(prf(sigma, domain))))[:16] == steps[f"{name}_first16"]
    ciphertext = TiigerLatticeEncapsulator("localhost", demo_ta_public_key(), ring).encapsulate_with(
        bytes.fromhex(PQ["encapsulations"][0]["r32"])
    )
    u, v = (ring.to_ints(part) for part in ring.unpack(ciphertext.ciphertext[: TIIGER_CIPHERTEXT_BYTES - 32]))
    assert u[:16] == steps["u_first16"] and _sha256_be4(u) == steps["u_sha256_be4"]
    assert v[:32] == steps["v_compressed_first32"] and _sha256_be4(v) == steps["v_sha256_be4"]
    assert {str(c): v.count(c) for c in range(5)} == steps["v_value_histogram"]
    assert ciphertext.ciphertext[-32:] == sigma, "the tail is σ, the seed of all the randomness (spec §8)"


@EVERY_RING
@pytest.mark.parametrize("index", range(5))
def test_encapsulations_reproduced_bit_for_bit_and_decapsulated(ring: Ring, index: int) -> None:
    vector = PQ["encapsulations"][index]
    encapsulator, decapsulator = _localhost(ring)
    result = encapsulator.encapsulate_with(bytes.fromhex(vector["r32"]))
    assert result.ciphertext.hex() == vector["ciphertext"]
    assert result.psk.hex() == vector["key"]
    assert decapsulator.decapsulate(bytes.fromhex(vector["ciphertext"])).hex() == vector["key"]


@EVERY_RING
def test_other_identity_encapsulation(ring: Ring) -> None:
    other = PQ["other_identity_encapsulation"]
    result = TiigerLatticeEncapsulator(other["identity"], demo_ta_public_key(), ring).encapsulate_with(
        bytes.fromhex(other["r32"])
    )
    assert (result.ciphertext.hex(), result.psk.hex()) == (other["ciphertext"], other["key"])


@EVERY_RING
def test_second_identity_key(ring: Ring) -> None:
    second = PQ["second_identity_key"]
    vector = second["encapsulations"][0]
    h = demo_ta_public_key()
    result = TiigerLatticeEncapsulator(second["identity"], h, ring).encapsulate_with(bytes.fromhex(vector["r32"]))
    assert (result.ciphertext.hex(), result.psk.hex()) == (vector["ciphertext"], vector["key"])
    key = decapsulate(second["identity"], second["identity_secret_key_s"], bytes.fromhex(vector["ciphertext"]), h, ring)
    assert key.hex() == vector["key"]


@EVERY_RING
@pytest.mark.parametrize("index", range(4))
def test_decapsulation_edge_cases(ring: Ring, index: int) -> None:
    case = PQ["decapsulation_edge_cases"]["cases"][index]
    ciphertext = bytes.fromhex(case["ciphertext"])
    key = _localhost(ring)[1].decapsulate(ciphertext)
    assert key.hex() == case["key"], case["case"]
    rejected = hashlib.sha3_256(ciphertext + TIIGER_REJECTION_MESSAGE).digest()
    assert (key == rejected) == (not case["reencryption_matches"])


@EVERY_RING
@pytest.mark.parametrize("index", range(3))
def test_hybrid_vectors(ring: Ring, index: int, vectors: dict[str, Any]) -> None:
    """Marker 3 at KEM level: identity = lattice ct ‖ BF ct, PSK = lattice key ‖ BF PSK (BF: the BF vectors' TA)."""
    vector = PQ["hybrid"]["vectors"][index]
    lattice_encapsulator, lattice_decapsulator = _localhost(ring)
    bf_encapsulator = Encapsulator("localhost", bytes.fromhex(vectors["ta_public_key_g1"]))
    result = tiiger_hybrid_encapsulate_with(
        lattice_encapsulator, bf_encapsulator, bytes.fromhex(vector["r32_pq"]), bytes.fromhex(vector["r32_bf"])
    )
    assert result.ciphertext.hex() == vector["identity"] and len(result.ciphertext) == TIIGER_HYBRID_IDENTITY_BYTES
    assert result.psk.hex() == vector["psk"]
    bf_decapsulator = Decapsulator(bytes.fromhex(vectors["identity_key_g2"]))
    psk = tiiger_hybrid_decapsulate(lattice_decapsulator, bf_decapsulator, bytes.fromhex(vector["identity"]))
    assert psk.hex() == vector["psk"]


@EVERY_RING
def test_captured_post_quantum_first_flight_opens_to_its_psk(ring: Ring, vectors: dict[str, Any]) -> None:
    flight = PQ["captured_first_flight"]
    identity, age = _captured_psk_identity(bytes.fromhex(flight["records_hex"]))
    assert len(identity) == flight["identity_length"] == TIIGER_HYBRID_IDENTITY_BYTES
    assert age == flight["obfuscated_ticket_age"] == 3
    lattice_encapsulator, lattice_decapsulator = _localhost(ring)
    bf_decapsulator = Decapsulator(bytes.fromhex(vectors["identity_key_g2"]))
    assert tiiger_hybrid_decapsulate(lattice_decapsulator, bf_decapsulator, identity).hex() == flight["psk"]
    # And the client's two draws rebuild the identity: MIRACL's demo generator, R_pq first.
    bf_encapsulator = Encapsulator("localhost", bytes.fromhex(vectors["ta_public_key_g1"]))
    rebuilt = tiiger_hybrid_encapsulate_with(
        lattice_encapsulator, bf_encapsulator, bytes.fromhex(flight["r32_pq"]), bytes.fromhex(flight["r32_bf"])
    )
    assert rebuilt.ciphertext == identity and rebuilt.psk.hex() == flight["psk"]


@EVERY_RING
def test_passive_attack_reads_every_tiiger_key_without_any_secret(ring: Ring) -> None:
    """Spec §8: from the ciphertext and the identity alone; the captured flight's lattice half included."""
    for vector in PQ["encapsulations"]:
        assert recover_tiiger_key("localhost", bytes.fromhex(vector["ciphertext"]), ring).hex() == vector["key"]
    other = PQ["other_identity_encapsulation"]  # no secret key exists for this identity at all
    assert recover_tiiger_key(other["identity"], bytes.fromhex(other["ciphertext"]), ring).hex() == other["key"]
    flight = PQ["captured_first_flight"]
    identity, _ = _captured_psk_identity(bytes.fromhex(flight["records_hex"]))
    lattice_half = identity[:TIIGER_CIPHERTEXT_BYTES]
    assert recover_tiiger_key("localhost", lattice_half, ring).hex() == flight["psk"][:64]

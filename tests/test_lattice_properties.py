"""Lattice KEMs: garbled input, the two rings agreeing, the sound KEM against the §8 attack, the hybrid combiner."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ibepsk.ibe import BackendUnavailableError, Decapsulator, Encapsulator, IbeDecapsulationError
from ibepsk.ibe._ring import U_BITS, Q, available_rings, get_ring
from ibepsk.ibe.hybrid import (
    HYBRID_IDENTITY_BYTES,
    HYBRID_LABEL,
    HYBRID_MARKER,
    combine_psks,
    hybrid_decapsulate,
    hybrid_encapsulate,
    tiiger_hybrid_decapsulate,
)
from ibepsk.ibe.lattice import (
    BODY_BYTES,
    CIPHERTEXT_BYTES,
    LATTICE_MARKER,
    TIIGER_CIPHERTEXT_BYTES,
    TIIGER_REJECTION_MESSAGE,
    LatticeDecapsulator,
    LatticeEncapsulator,
    TiigerLatticeDecapsulator,
    TiigerLatticeEncapsulator,
    _sound_coins,
    expand_randomness,
    recover_message,
    recover_tiiger_key,
    single_identity_keys,
)

from pq_support import demo_secret_key, demo_ta_public_key, pq_vectors

ROOT = Path(__file__).resolve().parent.parent
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
H = demo_ta_public_key()
TIIGER_ENCAPSULATOR = TiigerLatticeEncapsulator("localhost", H)
TIIGER_DECAPSULATOR = TiigerLatticeDecapsulator("localhost", demo_secret_key(), H)
SOUND_ENCAPSULATOR = LatticeEncapsulator("localhost", H)
SOUND_DECAPSULATOR = LatticeDecapsulator("localhost", demo_secret_key(), H)


def _sha3(data: bytes) -> bytes:
    return hashlib.sha3_256(data).digest()


def _flip(data: bytes, bit: int) -> bytes:
    flipped = bytearray(data)
    flipped[bit // 8] ^= 1 << (bit % 8)
    return bytes(flipped)


# --- TiigerTLS's KEM: implicit rejection with the public rkey, exactly as spec §6 --------------------


@FAST
@given(
    st.one_of(st.binary(max_size=4200), st.binary(min_size=TIIGER_CIPHERTEXT_BYTES, max_size=TIIGER_CIPHERTEXT_BYTES))
)
def test_tiiger_random_bytes_give_the_rejection_key_or_one_typed_error(data: bytes) -> None:
    if len(data) != TIIGER_CIPHERTEXT_BYTES:
        with pytest.raises(IbeDecapsulationError, match="wrong length"):
            TIIGER_DECAPSULATOR.decapsulate(data)
    else:
        assert TIIGER_DECAPSULATOR.decapsulate(data) == _sha3(data + TIIGER_REJECTION_MESSAGE)


@FAST
@given(st.data())
def test_tiiger_one_flipped_bit(data: st.DataObject) -> None:
    """In the body: rejection (SHA3(ct ‖ rkey)); in the σ tail: accepted, the real m under a different hash."""
    randomness = data.draw(st.binary(min_size=32, max_size=32))
    original = TIIGER_ENCAPSULATOR.encapsulate_with(randomness).ciphertext
    bit = data.draw(st.integers(0, 8 * TIIGER_CIPHERTEXT_BYTES - 1))
    garbled = _flip(original, bit)
    key = TIIGER_DECAPSULATOR.decapsulate(garbled)
    if bit < 8 * BODY_BYTES:
        assert key == _sha3(garbled + TIIGER_REJECTION_MESSAGE)
    else:
        assert key == _sha3(garbled + expand_randomness(randomness))


def test_tiiger_non_canonical_fields_are_rejected() -> None:
    """u_0 + q (same residue, 28 bits still) and v_0 = 5 both fail re-encryption (spec §6)."""
    ciphertext = TIIGER_ENCAPSULATOR.encapsulate_with(bytes(32)).ciphertext
    u0 = int.from_bytes(ciphertext[:4], "little") & ((1 << U_BITS) - 1)
    assert u0 + Q < 1 << U_BITS
    fields = int.from_bytes(ciphertext[:4], "little") + Q
    non_canonical_u = fields.to_bytes(4, "little") + ciphertext[4:]
    v_start = BODY_BYTES - 384
    non_canonical_v = ciphertext[:v_start] + bytes([(ciphertext[v_start] & 0b11111000) | 5]) + ciphertext[v_start + 1 :]
    for garbled in (non_canonical_u, non_canonical_v):
        assert TIIGER_DECAPSULATOR.decapsulate(garbled) == _sha3(garbled + TIIGER_REJECTION_MESSAGE)


def test_bytearray_ciphertexts_and_bad_keys() -> None:
    result = TIIGER_ENCAPSULATOR.encapsulate()
    assert TIIGER_DECAPSULATOR.decapsulate(bytearray(result.ciphertext)) == result.psk
    assert result.psk.hex() not in repr(result)
    with pytest.raises(ValueError, match="signed 16-bit"):
        TiigerLatticeDecapsulator("localhost", [40000] * 1024, H)
    with pytest.raises(ValueError, match="signed 16-bit"):
        TiigerLatticeDecapsulator("localhost", [0] * 1023, H)
    with pytest.raises(ValueError, match=r"\[0, q\)"):
        TiigerLatticeEncapsulator("localhost", [Q] * 1024)


# --- the two rings give the same bytes ---------------------------------------------------------------


@pytest.mark.skipif("numpy" not in available_rings(), reason="numpy is not installed (pip install 'ibepsk[pq]')")
@settings(max_examples=15, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.binary(min_size=BODY_BYTES, max_size=BODY_BYTES))
def test_numpy_and_pure_python_rings_agree_byte_for_byte(randomness: bytes, body: bytes) -> None:
    fast, reference = get_ring("numpy"), get_ring("python")
    for kind in (TiigerLatticeEncapsulator, LatticeEncapsulator):
        a = kind("localhost", H, fast).encapsulate_with(randomness)
        b = kind("localhost", H, reference).encapsulate_with(randomness)
        assert (a.ciphertext, a.psk) == (b.ciphertext, b.psk)
    # Arbitrary bodies: u fields ≥ q, v fields 5–7, both decapsulators, and the attack's arithmetic.
    for kind, size in ((TiigerLatticeDecapsulator, TIIGER_CIPHERTEXT_BYTES), (LatticeDecapsulator, CIPHERTEXT_BYTES)):
        ciphertext = (body + randomness)[:size]
        fast_key = kind("localhost", demo_secret_key(), H, fast).decapsulate(ciphertext)
        assert fast_key == kind("localhost", demo_secret_key(), H, reference).decapsulate(ciphertext)
    assert recover_message("localhost", body, randomness, fast) == recover_message(
        "localhost", body, randomness, reference
    )
    values = [int.from_bytes(body[i : i + 3], "little") * 8 for i in range(0, 3 * 1024, 3)]  # up to 2^27 > q
    assert fast.to_ints(fast.intt(fast.from_ints(values))) == reference.to_ints(
        reference.intt(reference.from_ints(values))
    )


def test_import_ibepsk_ibe_does_not_load_numpy() -> None:
    code = "import sys, ibepsk.ibe, ibepsk.ibe.lattice, ibepsk.ibe.hybrid; print('numpy' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), check=True)
    assert result.stdout.strip() == "False"


def test_without_numpy_the_pure_python_ring_runs_the_vectors(tmp_path: Path) -> None:
    """A base install: ``import numpy`` fails, the default ring is pure Python, and the vectors still decapsulate."""
    shadow = tmp_path / "numpy"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("raise ImportError(\"No module named 'numpy'\")\n")
    vector = pq_vectors()["encapsulations"][0]
    code = (
        "import json, sys\n"
        "from ibepsk.ibe._ring import get_ring\n"
        "from ibepsk.ibe.lattice import decapsulate\n"
        "h, s, ct = json.loads(sys.stdin.read())\n"
        "print(get_ring().name, decapsulate('localhost', s, bytes.fromhex(ct), h).hex())\n"
        "try:\n"
        "    get_ring('numpy')\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    payload = f'[{H}, {demo_secret_key()}, "{vector["ciphertext"]}"]'
    env = _env(PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}")
    env.pop("IBEPSK_LATTICE_RING", None)
    result = subprocess.run([sys.executable, "-c", code], input=payload, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()
    assert first == f"python {vector['key']}"
    assert second.startswith("BackendUnavailableError lattice ring 'numpy' needs numpy: pip install 'ibepsk[pq]'")


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), **extra}


def test_unknown_ring_is_a_clear_error() -> None:
    with pytest.raises(BackendUnavailableError, match="unknown lattice ring"):
        get_ring("no-such-ring")


# --- the sound KEM --------------------------------------------------------------------------------


def test_sound_round_trip_and_format() -> None:
    for _ in range(5):
        result = SOUND_ENCAPSULATOR.encapsulate()
        assert len(result.ciphertext) == CIPHERTEXT_BYTES == 3968 and len(result.psk) == 32
        assert SOUND_DECAPSULATOR.decapsulate(result.ciphertext) == result.psk
    randomness = os.urandom(32)
    assert SOUND_ENCAPSULATOR.encapsulate_with(randomness) == SOUND_ENCAPSULATOR.encapsulate_with(randomness)
    assert (
        SOUND_ENCAPSULATOR.encapsulate_with(randomness).ciphertext[:BODY_BYTES]
        != (TIIGER_ENCAPSULATOR.encapsulate_with(randomness).ciphertext[:BODY_BYTES])
    ), "its own coins, not TiigerTLS's"


def test_sound_ciphertext_for_another_identity_is_rejected() -> None:
    ciphertext = LatticeEncapsulator("example.com", H).encapsulate().ciphertext
    key = SOUND_DECAPSULATOR.decapsulate(ciphertext)
    assert key == SOUND_DECAPSULATOR.decapsulate(ciphertext), "rejection is deterministic"


@FAST
@given(st.data())
def test_sound_garbled_ciphertexts_give_a_secret_rejection_key(data: st.DataObject) -> None:
    """Any flipped bit (there is no unchecked tail) gives a key that depends on s, so no one else can compute it."""
    result = SOUND_ENCAPSULATOR.encapsulate_with(data.draw(st.binary(min_size=32, max_size=32)))
    garbled = _flip(result.ciphertext, data.draw(st.integers(0, 8 * CIPHERTEXT_BYTES - 1)))
    key = SOUND_DECAPSULATOR.decapsulate(garbled)
    assert key != result.psk and len(key) == 32
    other_secret = pq_vectors()["second_identity_key"]["identity_secret_key_s"]
    assert key != LatticeDecapsulator("localhost", other_secret, H).decapsulate(garbled)


@FAST
@given(st.one_of(st.binary(max_size=4200), st.binary(min_size=CIPHERTEXT_BYTES, max_size=CIPHERTEXT_BYTES)))
def test_sound_random_bytes_give_a_key_or_one_typed_error(data: bytes) -> None:
    if len(data) != CIPHERTEXT_BYTES:
        with pytest.raises(IbeDecapsulationError, match="wrong length"):
            SOUND_DECAPSULATOR.decapsulate(data)
    else:
        assert len(SOUND_DECAPSULATOR.decapsulate(data)) == 32


def test_passive_attack_breaks_tiiger_ciphertexts_but_not_ours() -> None:
    """Spec §8 on 20 fresh encapsulations of each kind, with no secret key.

    TiigerTLS's ciphertext carries its seed (the σ tail), so the attack reads every key. Ours
    carries none: fed with every 32-byte window of our ciphertext, or with SHA3-256(m) (what
    TiigerTLS would have sent), the attack reads nothing; only the sender's coins, never sent,
    would do — which shows that what protects m is exactly that the coins are not sent.
    """
    for _ in range(20):
        randomness = os.urandom(32)
        message = expand_randomness(randomness)
        tiiger = TIIGER_ENCAPSULATOR.encapsulate_with(randomness)
        assert recover_tiiger_key("localhost", tiiger.ciphertext) == tiiger.psk
        ours = SOUND_ENCAPSULATOR.encapsulate_with(randomness).ciphertext
        public_seeds = [ours[i : i + 32] for i in range(0, CIPHERTEXT_BYTES, 32)] + [_sha3(message)]
        assert all(recover_message("localhost", ours, seed) != message for seed in public_seeds)
        assert recover_message("localhost", ours, _sound_coins(b"localhost", message)) == message
    with pytest.raises(ValueError, match="3968 bytes"):
        recover_message("localhost", ours[:-1], bytes(32))


# --- hybrids ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bf(vectors: dict[str, Any]) -> tuple[Encapsulator, Decapsulator]:
    return (
        Encapsulator("localhost", bytes.fromhex(vectors["ta_public_key_g1"])),
        Decapsulator(bytes.fromhex(vectors["identity_key_g2"])),
    )


def test_combiner_is_hkdf_sha256_with_our_label() -> None:
    lattice_key, bf_psk, identity = os.urandom(32), os.urandom(32), os.urandom(HYBRID_IDENTITY_BYTES)
    expected = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=HYBRID_LABEL,
        info=HYBRID_LABEL + hashlib.sha256(identity).digest(),
    ).derive(lattice_key + bf_psk)
    psk = combine_psks(lattice_key, bf_psk, identity)
    assert psk == expected
    assert psk not in (lattice_key + bf_psk, lattice_key, bf_psk)
    for changed in (
        combine_psks(os.urandom(32), bf_psk, identity),
        combine_psks(lattice_key, os.urandom(32), identity),
        combine_psks(lattice_key, bf_psk, _flip(identity, 0)),
    ):
        assert changed != psk
    with pytest.raises(ValueError, match="32 bytes"):
        combine_psks(lattice_key[:16], bf_psk, identity)


def test_our_hybrid_round_trip(bf: tuple[Encapsulator, Decapsulator]) -> None:
    result = hybrid_encapsulate(SOUND_ENCAPSULATOR, bf[0])
    assert len(result.ciphertext) == HYBRID_IDENTITY_BYTES == 3968 + 161 and len(result.psk) == 32
    assert hybrid_decapsulate(SOUND_DECAPSULATOR, bf[1], result.ciphertext) == result.psk
    lattice_key = SOUND_DECAPSULATOR.decapsulate(result.ciphertext[:CIPHERTEXT_BYTES])
    bf_psk = bf[1].decapsulate(result.ciphertext[CIPHERTEXT_BYTES:])
    assert result.psk == combine_psks(lattice_key, bf_psk, result.ciphertext)


@pytest.mark.parametrize("which", ["ours", "tiiger"])
def test_hybrid_identities_of_the_wrong_length_or_with_a_bad_bf_half_are_refused(
    which: str, bf: tuple[Encapsulator, Decapsulator]
) -> None:
    if which == "ours":
        identity = hybrid_encapsulate(SOUND_ENCAPSULATOR, bf[0]).ciphertext

        def open_(data: bytes) -> bytes:
            return hybrid_decapsulate(SOUND_DECAPSULATOR, bf[1], data)
    else:
        identity = bytes.fromhex(pq_vectors()["hybrid"]["vectors"][0]["identity"])

        def open_(data: bytes) -> bytes:
            return tiiger_hybrid_decapsulate(TIIGER_DECAPSULATOR, bf[1], data)

    for bad in (identity[:-1], identity + b"\x00", b""):
        with pytest.raises(IbeDecapsulationError, match="wrong length"):
            open_(bad)
    with pytest.raises(IbeDecapsulationError, match="Fujisaki-Okamoto"):
        open_(_flip(identity, 8 * len(identity) - 1))


def test_markers_sit_in_the_private_range_away_from_tiiger_values() -> None:
    """TiigerTLS's server takes any age below 4 as IBE; ours must not collide with 1, 2, 3 or look like that."""
    for marker in (LATTICE_MARKER, HYBRID_MARKER):
        assert 0xFFFF_FF00 <= marker <= 0xFFFF_FFFF
    assert LATTICE_MARKER != HYBRID_MARKER


def test_single_identity_keys_work_for_both_kems_and_only_for_their_identity() -> None:
    h, s = single_identity_keys("device-7.example")
    assert max(map(abs, s)) <= 1024
    for encapsulator_type, decapsulator_type in (
        (TiigerLatticeEncapsulator, TiigerLatticeDecapsulator),
        (LatticeEncapsulator, LatticeDecapsulator),
    ):
        result = encapsulator_type("device-7.example", h).encapsulate()
        assert decapsulator_type("device-7.example", s, h).decapsulate(result.ciphertext) == result.psk
        other = encapsulator_type("device-8.example", h).encapsulate()
        assert decapsulator_type("device-8.example", s, h).decapsulate(other.ciphertext) != other.psk


def test_secret_key_given_as_a_tuple_or_an_iterator_works_alike() -> None:
    result = SOUND_ENCAPSULATOR.encapsulate()
    garbled = _flip(result.ciphertext, 0)
    for key in (tuple(demo_secret_key()), iter(demo_secret_key())):
        decapsulator = LatticeDecapsulator("localhost", key, H)  # type: ignore[arg-type]
        assert decapsulator.decapsulate(result.ciphertext) == result.psk
        assert decapsulator.decapsulate(garbled) == SOUND_DECAPSULATOR.decapsulate(garbled)


@FAST
@given(
    data=st.one_of(
        st.binary(max_size=4300),
        st.binary(min_size=HYBRID_IDENTITY_BYTES, max_size=HYBRID_IDENTITY_BYTES),
        st.binary(min_size=TIIGER_CIPHERTEXT_BYTES + 161, max_size=TIIGER_CIPHERTEXT_BYTES + 161),
    )
)
def test_random_hybrid_identities_of_every_length_raise_one_typed_error(
    data: bytes, bf: tuple[Encapsulator, Decapsulator]
) -> None:
    """Random bytes never open: the BF half of a right-length identity is not a valid ciphertext."""
    for open_ in (
        lambda: hybrid_decapsulate(SOUND_DECAPSULATOR, bf[1], data),
        lambda: tiiger_hybrid_decapsulate(TIIGER_DECAPSULATOR, bf[1], data),
    ):
        with pytest.raises(IbeDecapsulationError):
            open_()

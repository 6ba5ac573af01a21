"""Hybrid IBE-PSKs: a lattice KEM and the Boneh–Franklin KEM to the same identity, in one PSK identity.

- TiigerTLS's (marker 3): identity = lattice ciphertext (4,000) ‖ BF ciphertext (161), PSK = lattice
  key ‖ BF PSK (64 bytes). Its lattice half hides nothing (spec §8), so the PSK is exactly as
  secret as the BF half: classical, not post-quantum.
- ibepsk's (:data:`HYBRID_MARKER`): identity = sound lattice ciphertext (3,968) ‖ BF ciphertext
  (161); PSK = HKDF-SHA256 over both keys with a label of its own, bound to the identity bytes
  (:func:`combine_psks`). It stays secret while either half does.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from .errors import IbeDecapsulationError
from .kem import CIPHERTEXT_BYTES as BF_CIPHERTEXT_BYTES
from .kem import Decapsulator, Encapsulation, Encapsulator, RandomSource, tiiger_sigma_and_message
from .lattice import (
    CIPHERTEXT_BYTES,
    RANDOMNESS_BYTES,
    TIIGER_CIPHERTEXT_BYTES,
    LatticeDecapsulator,
    LatticeEncapsulator,
    TiigerLatticeDecapsulator,
    TiigerLatticeEncapsulator,
)

TIIGER_HYBRID_IDENTITY_BYTES = TIIGER_CIPHERTEXT_BYTES + BF_CIPHERTEXT_BYTES  # 4161
HYBRID_IDENTITY_BYTES = CIPHERTEXT_BYTES + BF_CIPHERTEXT_BYTES  # 4129
#: ``obfuscated_ticket_age`` marker for ibepsk's hybrid IBE-PSK, in ibepsk's private range (see lattice.LATTICE_MARKER).
HYBRID_MARKER = 0xFFFF_FF03
#: HKDF-Extract salt and the label before the identity digest in HKDF-Expand's info.
HYBRID_LABEL = b"ibepsk hybrid ibe-psk v1: lattice + bf"
PSK_BYTES = 32


def _split(identity: bytes, lattice_bytes: int) -> tuple[bytes, bytes]:
    if not isinstance(identity, (bytes, bytearray)) or len(identity) != lattice_bytes + BF_CIPHERTEXT_BYTES:
        raise IbeDecapsulationError("hybrid identity has the wrong length")
    return bytes(identity[:lattice_bytes]), bytes(identity[lattice_bytes:])


def tiiger_hybrid_encapsulate_with(
    lattice: TiigerLatticeEncapsulator, bf: Encapsulator, lattice_randomness: bytes, bf_randomness: bytes
) -> Encapsulation:
    """TiigerTLS's marker-3 identity and 64-byte PSK from its two 32-byte draws (R_pq first, as its client draws)."""
    pq = lattice.encapsulate_with(lattice_randomness)
    classical = bf.encapsulate_with(*tiiger_sigma_and_message(bf_randomness))
    return Encapsulation(ciphertext=pq.ciphertext + classical.ciphertext, psk=pq.psk + classical.psk)


def tiiger_hybrid_encapsulate(
    lattice: TiigerLatticeEncapsulator, bf: Encapsulator, rng: RandomSource = os.urandom
) -> Encapsulation:
    return tiiger_hybrid_encapsulate_with(lattice, bf, rng(RANDOMNESS_BYTES), rng(RANDOMNESS_BYTES))


def tiiger_hybrid_decapsulate(lattice: TiigerLatticeDecapsulator, bf: Decapsulator, identity: bytes) -> bytes:
    """The 64-byte PSK of a marker-3 identity; IbeDecapsulationError for a wrong length or a BF half that does not open.

    (TiigerTLS's own server ignores a BF failure; treating it as unusable is spec §9's robust choice.)
    """
    lattice_ciphertext, bf_ciphertext = _split(identity, TIIGER_CIPHERTEXT_BYTES)
    return lattice.decapsulate(lattice_ciphertext) + bf.decapsulate(bf_ciphertext)


def combine_psks(lattice_key: bytes, bf_psk: bytes, identity: bytes) -> bytes:
    """ibepsk's hybrid PSK: HKDF-SHA256(salt = label, IKM = lattice key ‖ BF PSK, info = label ‖ SHA-256(identity)).

    Through a KDF the PSK is pseudorandom if either key is, and binding the whole identity means no
    second identity yields the same PSK by swapping one half.
    """
    if len(lattice_key) != PSK_BYTES or len(bf_psk) != PSK_BYTES:
        raise ValueError("both keys must be 32 bytes")
    pseudorandom_key = hmac.digest(HYBRID_LABEL, lattice_key + bf_psk, "sha256")
    info = HYBRID_LABEL + hashlib.sha256(identity).digest()
    return hmac.digest(pseudorandom_key, info + b"\x01", "sha256")  # HKDF-Expand, one block


def hybrid_encapsulate(lattice: LatticeEncapsulator, bf: Encapsulator, rng: RandomSource = os.urandom) -> Encapsulation:
    """ibepsk's hybrid identity (4,129 bytes) and its 32-byte PSK."""
    pq, classical = lattice.encapsulate(rng), bf.encapsulate(rng)
    identity = pq.ciphertext + classical.ciphertext
    return Encapsulation(ciphertext=identity, psk=combine_psks(pq.psk, classical.psk, identity))


def hybrid_decapsulate(lattice: LatticeDecapsulator, bf: Decapsulator, identity: bytes) -> bytes:
    """The PSK of ibepsk's hybrid identity; IbeDecapsulationError for a wrong length or a BF half that does not open."""
    lattice_ciphertext, bf_ciphertext = _split(identity, CIPHERTEXT_BYTES)
    return combine_psks(lattice.decapsulate(lattice_ciphertext), bf.decapsulate(bf_ciphertext), bytes(identity))


__all__ = [
    "HYBRID_IDENTITY_BYTES",
    "HYBRID_LABEL",
    "HYBRID_MARKER",
    "TIIGER_HYBRID_IDENTITY_BYTES",
    "combine_psks",
    "hybrid_decapsulate",
    "hybrid_encapsulate",
    "tiiger_hybrid_decapsulate",
    "tiiger_hybrid_encapsulate",
    "tiiger_hybrid_encapsulate_with",
]

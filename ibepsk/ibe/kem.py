"""The Boneh–Franklin KEM (Fujisaki–Okamoto style) exactly as TiigerTLS runs it.

Encapsulate(ID, Ppub): Q = H1(ID), r = H3(sigma, M), U = r·P1,
Z = e(Q, r·Ppub), V = sigma XOR H4(Z), W = M XOR H4(sigma); ciphertext
U || V || W (161 bytes), PSK = M. Decapsulation re-derives r and rejects
unless r·P1 == U.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from .backend import GTElement, PairingBackend, get_backend
from .encoding import G1_BYTES, decode_g1, decode_g2, encode_g1
from .errors import IbeDecapsulationError, PointDecodeError
from .h3 import h3
from .hashes import h1, h4

PSK_BYTES = 32
SIGMA_BYTES = 32
CIPHERTEXT_BYTES = G1_BYTES + SIGMA_BYTES + PSK_BYTES

RandomSource = Callable[[int], bytes]


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def identity_bytes(identity: str | bytes) -> bytes:
    """Identities are byte strings; text is taken as UTF-8."""
    return identity.encode("utf-8") if isinstance(identity, str) else identity


@dataclass(frozen=True)
class Encapsulation:
    ciphertext: bytes
    psk: bytes = field(repr=False)


class Encapsulator:
    """Encapsulates to one identity under one TA.

    Keep one per server name: H1(ID) is computed once, and with a backend that
    exponentiates in GT cheaply, so is e(Q, Ppub) (then Z = e(Q, Ppub)^r).
    """

    def __init__(self, identity: str | bytes, ta_public_key: bytes, backend: PairingBackend | None = None) -> None:
        self._backend = backend or get_backend()
        self._ppub = decode_g1(self._backend, ta_public_key)
        self._q = h1(self._backend, identity_bytes(identity))
        self._base: GTElement | None = None
        if self._backend.has_fast_gt_pow:
            self._base = self._backend.pairing(self._q, self._ppub)

    def encapsulate(self, rng: RandomSource = os.urandom) -> Encapsulation:
        return self.encapsulate_with(sigma=rng(SIGMA_BYTES), message=rng(PSK_BYTES))

    def encapsulate_with(self, sigma: bytes, message: bytes) -> Encapsulation:
        """Deterministic encapsulation from given sigma and M (for known-answer tests)."""
        if len(sigma) != SIGMA_BYTES or len(message) != PSK_BYTES:
            raise ValueError("sigma and M must be 32 bytes each")
        backend = self._backend
        r = h3(sigma, message)
        u = backend.g1_mul(backend.g1_generator(), r)
        z = self._shared_gt(r)
        v = _xor(sigma, h4(backend.gt_to_bytes(z)))
        w = _xor(message, h4(sigma))
        return Encapsulation(ciphertext=encode_g1(backend, u) + v + w, psk=message)

    def _shared_gt(self, r: int) -> GTElement:
        if self._base is not None:
            return self._backend.gt_pow(self._base, r)
        return self._backend.pairing(self._q, self._backend.g1_mul(self._ppub, r))


class Decapsulator:
    """Holds one decoded identity key D_ID and opens ciphertexts sent to it."""

    def __init__(self, identity_key: bytes, backend: PairingBackend | None = None) -> None:
        self._backend = backend or get_backend()
        self._key = decode_g2(self._backend, identity_key)

    def decapsulate(self, ciphertext: bytes) -> bytes:
        """Return the 32-byte PSK; raise IbeDecapsulationError on any invalid input."""
        if not isinstance(ciphertext, (bytes, bytearray)) or len(ciphertext) != CIPHERTEXT_BYTES:
            raise IbeDecapsulationError("ciphertext has the wrong length")
        encoded_u = bytes(ciphertext[:G1_BYTES])
        v = bytes(ciphertext[G1_BYTES : G1_BYTES + SIGMA_BYTES])
        w = bytes(ciphertext[G1_BYTES + SIGMA_BYTES :])
        backend = self._backend
        try:
            u = decode_g1(backend, encoded_u)
        except PointDecodeError as exc:
            raise IbeDecapsulationError("ciphertext does not carry a valid G1 point") from exc
        sigma = _xor(v, h4(backend.gt_to_bytes(backend.pairing(self._key, u))))
        message = _xor(w, h4(sigma))
        if not backend.g1_equal(backend.g1_mul(backend.g1_generator(), h3(sigma, message)), u):
            raise IbeDecapsulationError("ciphertext failed the Fujisaki-Okamoto check")
        return message


def encapsulate(
    identity: str | bytes,
    ta_public_key: bytes,
    rng: RandomSource = os.urandom,
    backend: PairingBackend | None = None,
) -> Encapsulation:
    """One-shot encapsulation (no cache): returns the PSK and the 161-byte ciphertext."""
    return Encapsulator(identity, ta_public_key, backend).encapsulate(rng)


def decapsulate(identity_key: bytes, ciphertext: bytes, backend: PairingBackend | None = None) -> bytes:
    """One-shot decapsulation with a MIRACL-encoded identity key (193 bytes)."""
    return Decapsulator(identity_key, backend).decapsulate(ciphertext)


def tiiger_sigma_and_message(seed: bytes) -> tuple[bytes, bytes]:
    """How TiigerTLS's reference vectors turn 32 random bytes into (sigma, M).

    MIRACL squeezes one SHAKE256 state twice, re-padding it in between; the
    second squeeze equals SHAKE256 of the input with that padding appended.
    """
    sigma = hashlib.shake_256(seed).digest(SIGMA_BYTES)
    message = hashlib.shake_256(seed + b"\x1f" + bytes(102) + b"\x80").digest(PSK_BYTES)
    return sigma, message


__all__ = [
    "CIPHERTEXT_BYTES",
    "PSK_BYTES",
    "Decapsulator",
    "Encapsulation",
    "Encapsulator",
    "decapsulate",
    "encapsulate",
    "identity_bytes",
    "tiiger_sigma_and_message",
]

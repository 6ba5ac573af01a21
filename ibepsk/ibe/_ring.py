"""Arithmetic in R_q = Z_q[x]/(x^1024 + 1) for the lattice KEMs, and the choice of implementation.

Two interchangeable implementations give the same bytes: numpy (``pip install 'ibepsk[pq]'``,
fast) and pure Python (always there, 15-20x slower). Polynomials are opaque handles owned by one
implementation, always held canonically in [0, q); only :meth:`Ring.to_ints` and the byte codecs
cross the boundary, so :mod:`ibepsk.ibe.lattice` is written once for both.

The NTT follows TiigerTLS's ordering (spec §2): entry i of ``ntt(a)`` is a(ψ^(2·brv10(i)+1)),
computed with Cooley–Tukey butterflies whose twiddles are ψ^brv10(k). Products never depend on
that ordering, but the TA public key is stored in it.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

from .errors import BackendUnavailableError

N = 1024
Q = 0x8020001  # 2^27 + 2^17 + 1, prime; q - 1 = 2^17 * 1025
PSI = 40417441  # primitive 2048-th root of unity mod q, as TiigerTLS chose it
HALF_Q = Q // 2
QUARTER_Q = Q // 4
THREE_QUARTERS_Q = 3 * Q // 4
U_BITS = 28
V_BITS = 3
V_SHIFT = 25  # Comp(w) = round(w / 2^25); decompression is c * 2^25
U_BYTES = N * U_BITS // 8  # 3584
V_BYTES = N * V_BITS // 8  # 384
MESSAGE_BYTES = N // 8  # 128
UNIFORM_BYTES = 4 * N  # H_ID reads 4 big-endian bytes per coefficient
NOISE_BYTES = 2 * N // 8  # CBD_1: two bits per coefficient

#: Opaque polynomial handle; only the ring that made it may look inside.
Poly = Any


def brv10(i: int) -> int:
    return int(f"{i:010b}"[::-1], 2)


#: Twiddles of the forward transform, ψ^brv10(k); entry 0 is unused, as in Kyber's and Dilithium's tables.
ZETAS = tuple(pow(PSI, brv10(k), Q) for k in range(N))
#: Twiddles of the inverse transform (Gentleman–Sande), indexed like ZETAS: layer by layer it undoes the forward one.
INVERSE_ZETAS = tuple(pow(z, -1, Q) for z in ZETAS)
N_INVERSE = pow(N, -1, Q)


class Ring(Protocol):
    """What the lattice KEMs need from a polynomial implementation."""

    name: str

    def from_ints(self, values: list[int]) -> Poly:
        """A polynomial from 1024 integers of any sign (reduced mod q)."""
        ...

    def to_ints(self, a: Poly) -> list[int]:
        """The 1024 coefficients in [0, q)."""
        ...

    def uniform(self, data: bytes) -> Poly:
        """4096 bytes, four big-endian bytes per coefficient, each reduced mod q (H_ID's sampler)."""
        ...

    def ternary(self, data: bytes) -> Poly:
        """CBD_1 of 256 bytes: coefficient i = bit(2i) - bit(2i+1), bits least significant first."""
        ...

    def message(self, m: bytes) -> Poly:
        """enc(m): bit i of the 128 bytes (least significant first) times ⌊q/2⌋."""
        ...

    def ntt(self, a: Poly) -> Poly: ...
    def intt(self, a: Poly) -> Poly: ...
    def pointwise(self, a: Poly, b: Poly) -> Poly: ...
    def stack(self, factors: list[Poly]) -> Poly:
        """Fixed factors in NTT form, kept together so :meth:`products` transforms them back at once."""
        ...

    def products(self, a: Poly, factors: Poly) -> list[Poly]:
        """a·f for each stacked factor f, from NTT forms, in coefficient form."""
        ...

    def add(self, a: Poly, b: Poly) -> Poly: ...
    def compress(self, w: Poly) -> Poly:
        """Comp(w) = ⌊(w + 2^24) / 2^25⌋ ∈ {0, …, 4}; not reduced mod q (a ciphertext field, not a ring element)."""
        ...

    def pack(self, u: Poly, v: Poly) -> bytes:
        """u in 28-bit fields, then v in 3-bit fields, little-endian bit streams: 3,968 bytes."""
        ...

    def unpack(self, body: bytes) -> tuple[Poly, Poly]:
        """Inverse of :meth:`pack`, with u reduced mod q and v left as its raw 3-bit fields."""
        ...

    def decode(self, v: Poly, us: Poly) -> bytes:
        """The CPA message of x = v·2^25 - u·s: bit i = 1 iff ⌊q/4⌋ < x_i < ⌊3q/4⌋."""
        ...


_RING_NAMES = ("numpy", "python")
_loaded: dict[str, Ring] = {}


def available_rings() -> list[str]:
    """Names of the ring implementations that load on this machine, fastest first."""
    names = []
    for name in _RING_NAMES:
        try:
            get_ring(name)
        except BackendUnavailableError:
            continue
        names.append(name)
    return names


def get_ring(name: str | None = None) -> Ring:
    """A ring by name; default ``$IBEPSK_LATTICE_RING``, else numpy when installed, else pure Python."""
    name = name or os.environ.get("IBEPSK_LATTICE_RING")
    if name is None:
        try:
            return get_ring("numpy")
        except BackendUnavailableError:
            return get_ring("python")
    if name not in _loaded:
        _loaded[name] = _load(name)
    return _loaded[name]


def _load(name: str) -> Ring:
    if name == "python":
        from ._ring_python import PythonRing

        return PythonRing()
    if name == "numpy":
        try:
            from ._ring_numpy import NumpyRing
        except ImportError as exc:
            raise BackendUnavailableError(
                f"lattice ring 'numpy' needs numpy: pip install 'ibepsk[pq]' ({exc})"
            ) from exc
        return NumpyRing()
    raise BackendUnavailableError(f"unknown lattice ring {name!r}; choose one of {', '.join(_RING_NAMES)}")

"""Exact arithmetic in Z[x]/(x^n + 1) on Python integers of any size, for NTRU trapdoors (no numpy).

Products use Kronecker substitution: a polynomial becomes one big integer, its coefficients in
fixed-width digits, so one multiplication of Python integers (Karatsuba in C) does the whole
convolution. NTRUSolve multiplies polynomials whose coefficients grow to thousands of bits; a
schoolbook loop in Python would take minutes.
"""

from __future__ import annotations

from collections.abc import Sequence

Poly = list[int]


def max_bits(a: Sequence[int]) -> int:
    return max((abs(x).bit_length() for x in a), default=0)


def _pack(a: Sequence[int], digit_bytes: int) -> int:
    """Σ a_i·2^(8·digit_bytes·i) for signed a_i: the non-negative and negative parts packed apart."""
    positive = b"".join(max(x, 0).to_bytes(digit_bytes, "little") for x in a)
    negative = b"".join(max(-x, 0).to_bytes(digit_bytes, "little") for x in a)
    return int.from_bytes(positive, "little") - int.from_bytes(negative, "little")


def _unpack(value: int, count: int, digit_bytes: int) -> Poly:
    """The ``count`` signed digits of ``value``, each of absolute value below 2^(8·digit_bytes − 1)."""
    half = 1 << (8 * digit_bytes - 1)
    offset = int.from_bytes((b"\x00" * (digit_bytes - 1) + b"\x80") * count, "little")
    raw = (value + offset).to_bytes(digit_bytes * count, "little")
    return [int.from_bytes(raw[i : i + digit_bytes], "little") - half for i in range(0, len(raw), digit_bytes)]


def multiply(a: Sequence[int], b: Sequence[int]) -> Poly:
    """a·b mod x^n + 1, exactly (n = len(a) = len(b))."""
    n = len(a)
    if len(b) != n:
        raise ValueError("polynomials of different degrees")
    bits = max_bits(a) + max_bits(b) + n.bit_length() + 2  # every product coefficient, with its sign
    digit_bytes = (bits + 7) // 8
    full = _unpack(_pack(a, digit_bytes) * _pack(b, digit_bytes), 2 * n, digit_bytes)
    return [full[i] - full[i + n] for i in range(n)]


def add(a: Sequence[int], b: Sequence[int]) -> Poly:
    return [x + y for x, y in zip(a, b, strict=True)]


def subtract(a: Sequence[int], b: Sequence[int]) -> Poly:
    return [x - y for x, y in zip(a, b, strict=True)]


def scale_shift(a: Sequence[int], shift: int) -> Poly:
    return [x << shift for x in a]


def field_norm(a: Sequence[int]) -> Poly:
    """N(a) in Z[x]/(x^(n/2) + 1): with a = a0(x²) + x·a1(x²), N(a) = a0² − x·a1², so that N(a)(x²) = a(x)·a(−x)."""
    even, odd = list(a[0::2]), list(a[1::2])
    odd_squared = multiply(odd, odd)
    x_times = [-odd_squared[-1], *odd_squared[:-1]]  # x·p mod x^m + 1
    return subtract(multiply(even, even), x_times)


def galois_conjugate(a: Sequence[int]) -> Poly:
    """a(−x)."""
    return [-x if i % 2 else x for i, x in enumerate(a)]


def lift(a: Sequence[int]) -> Poly:
    """a(x²), in the ring of twice the degree."""
    result = [0] * (2 * len(a))
    result[0::2] = a
    return result


def extended_gcd(a: int, b: int) -> tuple[int, int, int]:
    """(d, u, v) with u·a + v·b = d = gcd(a, b) ≥ 0."""
    old_r, r, old_u, u, old_v, v = a, b, 1, 0, 0, 1
    while r:
        quotient = old_r // r
        old_r, r = r, old_r - quotient * r
        old_u, u = u, old_u - quotient * u
        old_v, v = v, old_v - quotient * v
    if old_r < 0:
        return -old_r, -old_u, -old_v
    return old_r, old_u, old_v


def squared_norm(*polys: Sequence[int]) -> int:
    return sum(x * x for poly in polys for x in poly)

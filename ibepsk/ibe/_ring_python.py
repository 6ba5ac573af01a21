"""R_q in pure Python: lists of 1024 ints in [0, q). The reference the numpy ring is tested against."""

from __future__ import annotations

import struct

from ._ring import (
    HALF_Q,
    INVERSE_ZETAS,
    N_INVERSE,
    QUARTER_Q,
    THREE_QUARTERS_Q,
    U_BITS,
    V_BITS,
    V_SHIFT,
    ZETAS,
    N,
    Q,
)

_U_MASK = (1 << U_BITS) - 1
_V_MASK = (1 << V_BITS) - 1
_ROUND = 1 << (V_SHIFT - 1)
# Per byte: its four CBD_1 coefficients, and its eight message coefficients.
_TERNARY = tuple(tuple((((b >> 2 * k) & 1) - ((b >> (2 * k + 1)) & 1)) % Q for k in range(4)) for b in range(256))
_MESSAGE = tuple(tuple(((b >> k) & 1) * HALF_Q for k in range(8)) for b in range(256))
_UNIFORM = struct.Struct(f">{N}I")


def _layers() -> list[tuple[int, int]]:
    """(half-length, first twiddle index) of each forward layer: 512 pairs per layer, ten layers."""
    return [(N >> (level + 1), 1 << level) for level in range(10)]


class PythonRing:
    name = "python"

    def from_ints(self, values: list[int]) -> list[int]:
        if len(values) != N:
            raise ValueError(f"a polynomial has {N} coefficients, got {len(values)}")
        return [x % Q for x in values]

    def to_ints(self, a: list[int]) -> list[int]:
        return list(a)

    def uniform(self, data: bytes) -> list[int]:
        return [x % Q for x in _UNIFORM.unpack(data)]

    def ternary(self, data: bytes) -> list[int]:
        return [c for byte in data for c in _TERNARY[byte]]

    def message(self, m: bytes) -> list[int]:
        return [c for byte in m for c in _MESSAGE[byte]]

    def ntt(self, a: list[int]) -> list[int]:
        a = list(a)
        for length, first in _layers():
            for group, start in enumerate(range(0, N, 2 * length)):
                zeta = ZETAS[first + group]
                for j in range(start, start + length):
                    t = zeta * a[j + length] % Q
                    a[j + length] = a[j] - t
                    a[j] += t
        return [x % Q for x in a]

    def intt(self, a: list[int]) -> list[int]:
        a = list(a)
        for length, first in reversed(_layers()):
            for group, start in enumerate(range(0, N, 2 * length)):
                zeta = INVERSE_ZETAS[first + group]
                for j in range(start, start + length):
                    x, y = a[j], a[j + length]
                    a[j] = (x + y) % Q
                    a[j + length] = (x - y) * zeta % Q
        return [x * N_INVERSE % Q for x in a]

    def pointwise(self, a: list[int], b: list[int]) -> list[int]:
        return [x * y % Q for x, y in zip(a, b, strict=True)]

    def stack(self, factors: list[list[int]]) -> list[list[int]]:
        return list(factors)

    def products(self, a: list[int], factors: list[list[int]]) -> list[list[int]]:
        return [self.intt(self.pointwise(a, factor)) for factor in factors]

    def add(self, a: list[int], b: list[int]) -> list[int]:
        return [(x + y) % Q for x, y in zip(a, b, strict=True)]

    def compress(self, w: list[int]) -> list[int]:
        return [(x + _ROUND) >> V_SHIFT for x in w]

    def pack(self, u: list[int], v: list[int]) -> bytes:
        # Two 28-bit fields fill 7 bytes and eight 3-bit fields 3 bytes, so no field straddles a chunk.
        u_bytes = b"".join((u[i] | u[i + 1] << U_BITS).to_bytes(7, "little") for i in range(0, N, 2))
        v_bytes = b"".join(
            sum(v[i + k] << (V_BITS * k) for k in range(8)).to_bytes(3, "little") for i in range(0, N, 8)
        )
        return u_bytes + v_bytes

    def unpack(self, body: bytes) -> tuple[list[int], list[int]]:
        u: list[int] = []
        for offset in range(0, 7 * N // 2, 7):
            pair = int.from_bytes(body[offset : offset + 7], "little")
            u += ((pair & _U_MASK) % Q, (pair >> U_BITS) % Q)
        v: list[int] = []
        for offset in range(7 * N // 2, len(body), 3):
            group = int.from_bytes(body[offset : offset + 3], "little")
            v += ((group >> (V_BITS * k)) & _V_MASK for k in range(8))
        return u, v

    def decode(self, v: list[int], us: list[int]) -> bytes:
        bits = [QUARTER_Q < ((c << V_SHIFT) - x) % Q < THREE_QUARTERS_Q for c, x in zip(v, us, strict=True)]
        return bytes(sum(bits[i + k] << k for k in range(8)) for i in range(0, N, 8))

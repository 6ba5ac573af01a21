"""R_q with numpy: int64 arrays of 1024 coefficients in [0, q), each NTT stage a few vector operations.

int64 is exact here: q < 2^27, so a product of two reduced values is < 2^54, and the forward
butterflies, which reduce only the product, grow a value by less than q per layer (< 11q < 2^31
after ten layers) before the final reduction. The inverse butterflies reduce only the product
too, so sums double per layer: after eight layers they are below 2^8·q and one reduction keeps
the ninth layer's product (< 2^9·q·q) under 2^63.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

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

Array = npt.NDArray[np.int64]

_U_MASK = (1 << U_BITS) - 1
_V_MASK = (1 << V_BITS) - 1
_ROUND = 1 << (V_SHIFT - 1)
_V_SHIFTS = np.arange(8, dtype=np.uint32) * V_BITS
_HALF = N // 2
_INVERSE_REDUCE_BEFORE = 1  # the inverse runs levels 9 … 0; reduce once after eight of them
# Per byte: its four CBD_1 coefficients (mod q), two bits each, least significant first.
_TERNARY = np.array(
    [[(((b >> 2 * k) & 1) - ((b >> (2 * k + 1)) & 1)) % Q for k in range(4)] for b in range(256)], dtype=np.int64
)


def _stage_twiddles(table: tuple[int, ...]) -> list[Array]:
    """Per stage, the twiddle of each of the 512 pairs (src[k], src[k + 512]) of the constant-geometry NTT.

    Stage ``level`` does the butterflies of the in-place Cooley–Tukey layer ``level``; its pair k
    starts at in-place position pos[k], and that position's group picks the twiddle. Writing the
    outputs interleaved rotates the positions' bits, so after ten stages the order is the in-place one.
    """
    zetas = np.array(table, dtype=np.int64)
    positions = np.arange(N)
    stages = []
    for level in range(10):
        stages.append(zetas[(1 << level) + positions[:_HALF] // (N >> level)])
        interleaved = np.empty_like(positions)
        interleaved[0::2], interleaved[1::2] = positions[:_HALF], positions[_HALF:]
        positions = interleaved
    return stages


_FORWARD = _stage_twiddles(ZETAS)
_INVERSE = _stage_twiddles(INVERSE_ZETAS)


class NumpyRing:
    name = "numpy"

    def from_ints(self, values: list[int]) -> Array:
        if len(values) != N:
            raise ValueError(f"a polynomial has {N} coefficients, got {len(values)}")
        return np.array([x % Q for x in values], dtype=np.int64)

    def to_ints(self, a: Array) -> list[int]:
        return [int(x) for x in a]

    def uniform(self, data: bytes) -> Array:
        return np.frombuffer(data, dtype=">u4").astype(np.int64) % Q

    def ternary(self, data: bytes) -> Array:
        return _TERNARY[np.frombuffer(data, dtype=np.uint8)].reshape(-1)

    def message(self, m: bytes) -> Array:
        return np.unpackbits(np.frombuffer(m, dtype=np.uint8), bitorder="little").astype(np.int64) * HALF_Q

    def ntt(self, a: Array) -> Array:
        # Constant geometry: every stage reads the two contiguous halves and writes the results
        # interleaved, so each operation runs over 512 elements with no short inner loops.
        source = a
        for zetas in _FORWARD:
            low, high = source[..., :_HALF], source[..., _HALF:]
            t = zetas * high
            t %= Q
            target = np.empty_like(source)
            np.add(low, t, out=target[..., 0::2])
            np.subtract(low, t, out=target[..., 1::2])
            source = target
        return source % Q

    def intt(self, a: Array) -> Array:
        """The inverse of one polynomial, or of each row of a stack of them (one pass for all)."""
        # Each stage undoes one forward stage: it reads the interleaved pairs and writes the halves.
        source = a
        for level in reversed(range(10)):
            if level == _INVERSE_REDUCE_BEFORE:
                source = source % Q
            x, y = source[..., 0::2], source[..., 1::2]
            target = np.empty_like(source)
            np.add(x, y, out=target[..., :_HALF])
            high = target[..., _HALF:]
            np.subtract(x, y, out=high)
            high *= _INVERSE[level]
            high %= Q
            source = target
        source *= N_INVERSE
        source %= Q
        return source

    def pointwise(self, a: Array, b: Array) -> Array:
        return a * b % Q

    def stack(self, factors: list[Array]) -> Array:
        return np.stack(factors)

    def products(self, a: Array, factors: Array) -> list[Array]:
        # Python-level overhead dominates one transform; both products of an encryption cost ~1.3 of one.
        return list(self.intt(a * factors % Q))

    def add(self, a: Array, b: Array) -> Array:
        return (a + b) % Q

    def compress(self, w: Array) -> Array:
        return (w + _ROUND) >> V_SHIFT

    def pack(self, u: Array, v: Array) -> bytes:
        pairs = (u[0::2] | (u[1::2] << U_BITS)).astype("<u8")
        u_bytes: bytes = pairs.view(np.uint8).reshape(-1, 8)[:, :7].tobytes()
        groups = (v.reshape(-1, 8).astype(np.uint32) << _V_SHIFTS).sum(axis=1, dtype=np.uint32).astype("<u4")
        v_bytes: bytes = groups.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
        return u_bytes + v_bytes

    def unpack(self, body: bytes) -> tuple[Array, Array]:
        raw = np.frombuffer(body, dtype=np.uint8)
        u_chunks = np.zeros((N // 2, 8), dtype=np.uint8)
        u_chunks[:, :7] = raw[: 7 * N // 2].reshape(-1, 7)
        pairs = u_chunks.view("<u8").reshape(-1)
        u = np.empty(N, dtype=np.int64)
        u[0::2] = pairs & _U_MASK
        u[1::2] = pairs >> U_BITS
        v_chunks = np.zeros((N // 8, 4), dtype=np.uint8)
        v_chunks[:, :3] = raw[7 * N // 2 :].reshape(-1, 3)
        groups = v_chunks.view("<u4")
        v = ((groups >> _V_SHIFTS) & _V_MASK).reshape(-1).astype(np.int64)
        return u % Q, v

    def decode(self, v: Array, us: Array) -> bytes:
        x = ((v << V_SHIFT) - us) % Q
        bits = (x > QUARTER_Q) & (x < THREE_QUARTERS_Q)
        return np.packbits(bits, bitorder="little").tobytes()

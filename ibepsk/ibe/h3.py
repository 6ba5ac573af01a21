"""H3(sigma, M) -> Z_q, bit-exact with MIRACL's seeded ``csprng``, in ~30 us.

MIRACL's generator is Marsaglia-Zaman subtract-with-borrow on 32-bit words,
``x_n = x_(n-6) - x_(n-21) - c_(n-1) (mod b)`` with ``b = 2^32``, and ``c_n``
the borrow out of that subtraction. Run literally, H3 needs ~80,000 steps
(8 seeds x 10,000 discarded words) and costs ~16 ms in Python.

Why it collapses: put the last 21 words into one integer ``A`` (newest word
most significant), let ``B`` be its top 6 words, and ``k = A - B + c``. From
the recurrence, one step gives ``b * k_(n+1) = k_n + x_(n+1) * m`` with
``m = b^21 - b^6 + 1`` -- so ``k`` is a multiplicative congruential generator,
``k_(n+1) = k_n * b^-1 (mod m)``, and the words are the base-b digits of
``k/m``. Two exact consequences are all this module uses:

* jumping ``j`` steps is ``k * b^-j mod m`` (one modular multiplication);
* the next ``j`` words, packed little-endian, are
  ``X = -k * m^-1 mod b^j``, because ``b^j k_(n+j) = k_n + m X``, ``0 <= X < b^j``.

Both need ``k`` as the true integer, not just its residue: ``A - B + c`` is
always in ``[0, m]`` and equals ``m`` only in the all-ones-with-borrow fixed
point, which cannot follow a seed (``seed`` clears the borrow, so there
``k = A - B <= m - 1``); every later ``k`` is then a residue in ``[0, m)`` too.
"""

from __future__ import annotations

import hashlib
import struct

from .backend import GROUP_ORDER

_WORD_BITS = 32
_LAGS = 21  # long lag r; the short lag s = 6 only shows up in the modulus
_STATE_BITS = _WORD_BITS * _LAGS  # 672
_TOP_SHIFT = _WORD_BITS * 15  # A >> this = B, the newest 6 words

#: The MCG modulus m = b^21 - b^6 + 1 (b = 2^32).
_MODULUS = (1 << _STATE_BITS) - (1 << (_WORD_BITS * 6)) + 1

_RAW_BYTES = 128  # SHAKE256 output fed to MIRACL's RAND_seed
_DISCARDED = 10_000  # next() calls that seed() throws away
_POOL_INPUT = 128  # next() calls hashed into one 32-byte pool
_POOLS = 2  # 510 bits = 64 pool bytes = two pools
_SCALAR_BITS = 510

# Where the stream stands after a seed's 10,000 next() calls. seed() sets
# rndptr = 0, so calls 1..20 return the seeded ira[1..20] (the seeded words
# x_-19..x_0, ira[0] = x_-20 is skipped) and call 20 + t returns x_t: the last
# one discarded is x_9980. Blocks of 21 are generated lazily at t = 1, 22, ...,
# so ira then holds x_9976..x_9996 -- the next seed XORs into exactly those.
_LAST_DISCARDED = _DISCARDED - (_LAGS - 1)  # 9980
_IRA_FIRST = _LAST_DISCARDED - (_LAST_DISCARDED - 1) % _LAGS  # 9976

#: Multipliers b^-j mod m: from the seeded k_0 to the k just before
#: ira's first word (carried to the next seed) / before the pool's first word.
_JUMP_TO_IRA = pow(1 << _WORD_BITS, -(_IRA_FIRST - 1), _MODULUS)
_JUMP_TO_POOL = pow(1 << _WORD_BITS, -_LAST_DISCARDED, _MODULUS)

_POOL_WORDS = _POOL_INPUT * _POOLS
_IRA_MASK = (1 << _STATE_BITS) - 1
_POOL_MASK = (1 << (_WORD_BITS * _POOL_WORDS)) - 1
#: m^-1 mod b^j for the two block sizes we read (m is odd, so it exists).
_INV_MOD_IRA = pow(_MODULUS, -1, 1 << _STATE_BITS)
_INV_MOD_POOL = pow(_MODULUS, -1, 1 << (_WORD_BITS * _POOL_WORDS))

#: Byte -> its bits reversed; step 6 appends each byte's bits LSB first.
_BIT_REVERSE = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def _seed_coefficients() -> tuple[int, int]:
    """Pack seed()'s XOR words as ``w * mul + add`` in 64-bit lanes.

    seed(w) XORs ``m_i`` into ira[8i mod 21] with ``m_0 = w``, ``m_1 = 1``,
    ``m_(i+1) = m_(i-1) - m_i`` -- each ``m_i`` is ``a_i * w + b_i`` mod 2^32
    with constant ``a_i, b_i``. Lanes are 64 bits wide so ``a_i * w + b_i``
    (< 2^64) never spills into the next lane; the caller keeps the low half.
    """
    a, b = [1, 0], [0, 1]  # m_0 = w, m_1 = 1
    for i in range(1, _LAGS - 1):
        a.append((a[i - 1] - a[i]) % (1 << _WORD_BITS))
        b.append((b[i - 1] - b[i]) % (1 << _WORD_BITS))
    mul = add = 0
    for i in range(_LAGS):
        lane = 64 * ((8 * i) % _LAGS)
        mul |= a[i] << lane
        add |= b[i] << lane
    return mul, add


_SEED_MUL, _SEED_ADD = _seed_coefficients()
_LANES_64 = struct.Struct(f"<{2 * _LAGS}I")
_LANES_32 = struct.Struct(f"<{_LAGS}I")


def _seed_mask(w: int) -> int:
    """The 21 words seed(w) XORs into ira, as one little-endian integer."""
    wide = (w * _SEED_MUL + _SEED_ADD).to_bytes(8 * _LAGS, "little")
    low_halves = _LANES_64.unpack(wide)[::2]
    return int.from_bytes(_LANES_32.pack(*low_halves), "little")


def _seeded_k(ira: int, w: int) -> int:
    """seed(w)'s state as the MCG value k_0 = A - B (+ borrow, which seed zeroes)."""
    a = ira ^ _seed_mask(w)
    return a - (a >> _TOP_SHIFT)


def _words_after(k: int, inverse: int, mask: int) -> int:
    """The words that follow state k, packed little-endian (X = -k/m mod b^j)."""
    return (-k * inverse) & mask


def _seed_and_discard(ira: int, w: int) -> int:
    """seed(w) plus 10,000 discarded next(): returns the new ira as one integer.

    Only ira survives into the next seed (which resets borrow and rndptr),
    so the borrow at the end need not be recovered.
    """
    k = _seeded_k(ira, w) * _JUMP_TO_IRA % _MODULUS
    return _words_after(k, _INV_MOD_IRA, _IRA_MASK)


def _pool_bytes(ira: int, w: int) -> bytes:
    """Last seed, then the two 32-byte pools (SHA-256 of 128 low bytes each)."""
    k = _seeded_k(ira, w) * _JUMP_TO_POOL % _MODULUS
    stream = _words_after(k, _INV_MOD_POOL, _POOL_MASK)
    low_bytes = stream.to_bytes(4 * _POOL_WORDS, "little")[::4]  # next() & 0xff
    return b"".join(hashlib.sha256(low_bytes[i : i + _POOL_INPUT]).digest() for i in range(0, _POOL_WORDS, _POOL_INPUT))


def h3(sigma: bytes, message: bytes) -> int:
    """H3(sigma, M) in Z_q, identical to TiigerTLS/MIRACL's seeded-csprng H3."""
    raw = hashlib.shake_256(sigma + message).digest(_RAW_BYTES)
    words = struct.unpack("<8I", hashlib.sha256(raw).digest())
    ira = 0
    for w in words[:-1]:
        ira = _seed_and_discard(ira, w)
    pool = _pool_bytes(ira, words[-1])
    # Bits are taken LSB first from each byte and appended MSB first to d:
    # d is the bit-reversed bytes read big-endian, minus the 2 unused bits.
    d = int.from_bytes(pool.translate(_BIT_REVERSE), "big") >> (8 * len(pool) - _SCALAR_BITS)
    return d % GROUP_ORDER

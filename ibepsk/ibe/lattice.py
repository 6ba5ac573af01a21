"""Lattice identity-based KEMs over R_q = Z_q[x]/(x^1024 + 1): TiigerTLS's, bit-exact, and a sound one.

Both share the CPA core of Ducas–Lyubashevsky–Prest (spec ``tiiger-pq-ibe.md`` §5): to identity
ID under the TA key h, with t = H_ID(ID) and ternary r, e1, e2 drawn from a 32-byte seed,

    u = r·h + e1,   v = Comp(r·t + e2 + ⌊q/2⌋·m),   ciphertext body = pack(u) ‖ pack(v) (3,968 bytes),

and the holder of s (with s1 + s·h = t, both short) reads m from v·2^25 − u·s. They differ in the
Fujisaki–Okamoto-style transform around it:

- :class:`TiigerLatticeEncapsulator` / :class:`TiigerLatticeDecapsulator` (markers 2 and 3):
  seed σ = SHA3-256(m), ciphertext = body ‖ σ, key = SHA3-256(ciphertext ‖ m), implicit
  rejection with a *public* constant. Sending σ sends the seed of r and e2, so anyone can read m
  and the key (spec §8, :func:`recover_tiiger_key`). It hides nothing; it exists for interop.
- :class:`LatticeEncapsulator` / :class:`LatticeDecapsulator` (ibepsk's proposal): the seed is
  derived from m and the identity under a domain of its own and never sent; ciphertext = body;
  key = SHA3-256(domain ‖ m ‖ ciphertext); implicit rejection with a key derived from the secret
  s, as ML-KEM does. See docs/post-quantum.md.
"""

from __future__ import annotations

import abc
import hashlib
import hmac
import os
from collections.abc import Sequence

from ._ring import (
    MESSAGE_BYTES,
    NOISE_BYTES,
    U_BYTES,
    UNIFORM_BYTES,
    V_BYTES,
    N,
    Poly,
    Q,
    Ring,
    available_rings,
    get_ring,
)
from .errors import IbeDecapsulationError
from .kem import Encapsulation, RandomSource, identity_bytes

KEY_BYTES = 32
SEED_BYTES = 32
#: What a TiigerTLS client draws per encapsulation (encapsulate_with accepts any length).
RANDOMNESS_BYTES = 32
BODY_BYTES = U_BYTES + V_BYTES  # 3968
#: TiigerTLS's ciphertext: body ‖ σ.
TIIGER_CIPHERTEXT_BYTES = BODY_BYTES + SEED_BYTES  # 4000
#: The sound KEM's ciphertext: the body alone.
CIPHERTEXT_BYTES = BODY_BYTES
SECRET_KEY_COEFFICIENTS = N
#: TiigerTLS stores s as int16 (its Rust server's PQSK); keys outside this range cannot load there.
SECRET_KEY_BOUND = 2**15 - 1
#: TiigerTLS multiplies the stored TA key by this Montgomery factor, 2^32 mod q (spec §2).
MONTGOMERY_R = pow(2, 32, Q)

#: ``obfuscated_ticket_age`` marker for the sound lattice IBE-PSK in TLS. TiigerTLS uses 1-3 (and
#: its server takes every value below 4 as IBE); ibepsk's own markers sit at the top of the 32-bit
#: range, 0xFFFFFF00-0xFFFFFFFF, which it keeps for private use, mirroring TiigerTLS's numbers.
LATTICE_MARKER = 0xFFFF_FF02

#: TiigerTLS's implicit-rejection message ``rkey`` (the same in its C++ and Rust code). It is public.
TIIGER_REJECTION_MESSAGE = bytes.fromhex(
    "67c6697351ff4aec29cdbaabf2fbe3467cc254f81be8e78d765a2e63339fc99a"
    "66320db73158a35a255d051758e95ed4abb2cdc69bb454110e827441213ddc87"
    "70e93ea141e1fc673e017e97eadc6b968f385c2aecb03bfb32af3c54ec18db5c"
    "021afe43fbfaaa3afb29d1e6053c7c9475d8be6189f95cbba8990f95b1ebf1b3"
)

# Domain separators of the sound transform: one per hash, so no output of one can stand in for another.
_COINS_DOMAIN = b"ibepsk lattice-ibe v1 coins"
_KEY_DOMAIN = b"ibepsk lattice-ibe v1 key"
_REJECTION_DOMAIN = b"ibepsk lattice-ibe v1 rejection"
_REJECTION_SECRET_DOMAIN = b"ibepsk lattice-ibe v1 rejection secret"


def _sha3(data: bytes) -> bytes:
    return hashlib.sha3_256(data).digest()


def expand_randomness(randomness: bytes) -> bytes:
    """The 128-byte CPA message m = SHAKE256(randomness), one squeeze, as TiigerTLS derives its "internal key"."""
    return hashlib.shake_256(randomness).digest(MESSAGE_BYTES)


def prf(seed: bytes, domain: int) -> bytes:
    """PRF(σ, d) = SHAKE256(σ ‖ d), 256 bytes: the CBD_1 input of r (d = 0), e1 (1) and e2 (2)."""
    return hashlib.shake_256(seed + bytes([domain])).digest(NOISE_BYTES)


def hash_identity(ring: Ring, identity: bytes) -> Poly:
    """H_ID(ID): SHAKE128(ID), 4096 bytes, read as 1024 big-endian 32-bit words reduced mod q."""
    return ring.uniform(hashlib.shake_128(identity).digest(UNIFORM_BYTES))


def _checked_public_key(values: Sequence[int]) -> list[int]:
    values = list(values)
    if len(values) != N or not all(isinstance(x, int) and 0 <= x < Q for x in values):
        raise ValueError(f"a lattice TA public key is {N} integers in [0, q)")
    return values


def _checked_secret_key(values: Sequence[int]) -> list[int]:
    values = list(values)
    if len(values) != SECRET_KEY_COEFFICIENTS or not all(
        isinstance(x, int) and -SECRET_KEY_BOUND <= x <= SECRET_KEY_BOUND for x in values
    ):
        raise ValueError(f"a lattice identity key is {N} signed 16-bit integers")
    return values


def ta_public_key_from_stored(stored: Sequence[int], ring: Ring | None = None) -> list[int]:
    """h from TiigerTLS's stored constant H[i] = 2^32 · h(ψ^(2·brv10(i)+1)) mod q (spec §2)."""
    ring = ring or get_ring()
    unscale = pow(MONTGOMERY_R, -1, Q)
    return ring.to_ints(ring.intt(ring.from_ints([x * unscale for x in _checked_public_key(stored)])))


def stored_ta_public_key(ta_public_key: Sequence[int], ring: Ring | None = None) -> list[int]:
    """The constant TiigerTLS compiles in for the TA key h (inverse of :func:`ta_public_key_from_stored`)."""
    ring = ring or get_ring()
    evaluations = ring.to_ints(ring.ntt(ring.from_ints(_checked_public_key(ta_public_key))))
    return [x * MONTGOMERY_R % Q for x in evaluations]


class _CpaCore:
    """DLP encryption to one identity under one TA, with NTT(h) and NTT(H_ID(ID)) computed once."""

    def __init__(self, identity: str | bytes, ta_public_key: Sequence[int], ring: Ring | None) -> None:
        self.ring = ring or get_ring()
        self.identity = identity_bytes(identity)
        h_hat = self.ring.ntt(self.ring.from_ints(_checked_public_key(ta_public_key)))
        self._h_and_t = self.ring.stack([h_hat, self.ring.ntt(hash_identity(self.ring, self.identity))])

    def encrypt(self, seed: bytes, message: bytes) -> bytes:
        """pack(u) ‖ pack(v), deterministic in the seed of (r, e1, e2) and the 128-byte message."""
        ring = self.ring
        r_times_h, r_times_t = ring.products(ring.ntt(ring.ternary(prf(seed, 0))), self._h_and_t)
        u = ring.add(r_times_h, ring.ternary(prf(seed, 1)))
        w = ring.add(ring.add(r_times_t, ring.ternary(prf(seed, 2))), ring.message(message))
        return ring.pack(u, ring.compress(w))

    def decrypt(self, s_stack: Poly, body: bytes) -> bytes:
        """m from v·2^25 − u·s (s as ``ring.stack([NTT(s)])``); u fields ≥ q are reduced, as TiigerTLS does."""
        ring = self.ring
        u, v = ring.unpack(body)
        (u_times_s,) = ring.products(ring.ntt(u), s_stack)
        return ring.decode(v, u_times_s)


class _Encapsulator(abc.ABC):
    def __init__(self, identity: str | bytes, ta_public_key: Sequence[int], ring: Ring | None = None) -> None:
        self._core = _CpaCore(identity, ta_public_key, ring)

    def encapsulate(self, rng: RandomSource = os.urandom) -> Encapsulation:
        return self.encapsulate_with(rng(RANDOMNESS_BYTES))

    @abc.abstractmethod
    def encapsulate_with(self, randomness: bytes) -> Encapsulation:
        """Deterministic encapsulation from the given random bytes (for known-answer tests)."""


class _Decapsulator:
    _ciphertext_bytes: int

    def __init__(
        self,
        identity: str | bytes,
        secret_key: Sequence[int],
        ta_public_key: Sequence[int],
        ring: Ring | None = None,
    ) -> None:
        self._core = _CpaCore(identity, ta_public_key, ring)
        ring = self._core.ring
        self._s_stack = ring.stack([ring.ntt(ring.from_ints(_checked_secret_key(secret_key)))])

    def _checked_ciphertext(self, ciphertext: bytes) -> bytes:
        if not isinstance(ciphertext, (bytes, bytearray)) or len(ciphertext) != self._ciphertext_bytes:
            raise IbeDecapsulationError("ciphertext has the wrong length")
        return bytes(ciphertext)


class TiigerLatticeEncapsulator(_Encapsulator):
    """TiigerTLS's PQIBE_CCA_ENCRYPT, bit for bit. **Not confidential** (spec §8): use only for interop."""

    def encapsulate_with(self, randomness: bytes) -> Encapsulation:
        message = expand_randomness(randomness)
        sigma = _sha3(message)
        ciphertext = self._core.encrypt(sigma, message) + sigma
        return Encapsulation(ciphertext=ciphertext, psk=_sha3(ciphertext + message))


class TiigerLatticeDecapsulator(_Decapsulator):
    """TiigerTLS's PQIBE_CCA_DECRYPT: implicit rejection with its public ``rkey``; the σ tail is never checked."""

    _ciphertext_bytes = TIIGER_CIPHERTEXT_BYTES

    def decapsulate(self, ciphertext: bytes) -> bytes:
        """The 32-byte key; IbeDecapsulationError only for a length other than 4,000 (TiigerTLS checks none)."""
        ciphertext = self._checked_ciphertext(ciphertext)
        body = ciphertext[:BODY_BYTES]
        message = self._core.decrypt(self._s_stack, body)
        if not hmac.compare_digest(self._core.encrypt(_sha3(message), message), body):
            message = TIIGER_REJECTION_MESSAGE
        return _sha3(ciphertext + message)


def _sound_coins(identity: bytes, message: bytes) -> bytes:
    return _sha3(_COINS_DOMAIN + _sha3(identity) + message)


def _sound_key(message: bytes, ciphertext: bytes) -> bytes:
    return _sha3(_KEY_DOMAIN + message + ciphertext)


class LatticeEncapsulator(_Encapsulator):
    """ibepsk's sound lattice IBE-KEM: the encryption seed is derived from m and ID and never sent."""

    def encapsulate_with(self, randomness: bytes) -> Encapsulation:
        message = expand_randomness(randomness)
        ciphertext = self._core.encrypt(_sound_coins(self._core.identity, message), message)
        return Encapsulation(ciphertext=ciphertext, psk=_sound_key(message, ciphertext))


class LatticeDecapsulator(_Decapsulator):
    """Opens :class:`LatticeEncapsulator` ciphertexts; implicit rejection keyed by a secret derived from s."""

    _ciphertext_bytes = CIPHERTEXT_BYTES

    def __init__(
        self,
        identity: str | bytes,
        secret_key: Sequence[int],
        ta_public_key: Sequence[int],
        ring: Ring | None = None,
    ) -> None:
        secret_key = _checked_secret_key(secret_key)  # a list: read twice below
        super().__init__(identity, secret_key, ta_public_key, ring)
        encoded_key = b"".join((x % Q).to_bytes(4, "little") for x in secret_key)
        self._rejection_secret = _sha3(_REJECTION_SECRET_DOMAIN + encoded_key)

    def decapsulate(self, ciphertext: bytes) -> bytes:
        """The 32-byte key; a ciphertext that fails re-encryption gives a pseudorandom key only s could compute.

        IbeDecapsulationError only for a length other than 3,968.
        """
        ciphertext = self._checked_ciphertext(ciphertext)
        message = self._core.decrypt(self._s_stack, ciphertext)
        if hmac.compare_digest(self._core.encrypt(_sound_coins(self._core.identity, message), message), ciphertext):
            return _sound_key(message, ciphertext)
        return _sha3(_REJECTION_DOMAIN + self._rejection_secret + ciphertext)


def encapsulate(
    identity: str | bytes, ta_public_key: Sequence[int], rng: RandomSource = os.urandom, ring: Ring | None = None
) -> Encapsulation:
    """One-shot TiigerTLS lattice encapsulation: the 4,000-byte ciphertext and its 32-byte key. Not confidential."""
    return TiigerLatticeEncapsulator(identity, ta_public_key, ring).encapsulate(rng)


def decapsulate(
    identity: str | bytes,
    secret_key: Sequence[int],
    ciphertext: bytes,
    ta_public_key: Sequence[int],
    ring: Ring | None = None,
) -> bytes:
    """One-shot TiigerTLS lattice decapsulation with s (1024 signed coefficients) under the TA key h.

    Decapsulation re-encrypts, so it needs h as well as s.
    """
    return TiigerLatticeDecapsulator(identity, secret_key, ta_public_key, ring).decapsulate(ciphertext)


def single_identity_keys(
    identity: str | bytes, rng: RandomSource = os.urandom, ring: Ring | None = None
) -> tuple[list[int], list[int]]:
    """A TA public key h and the identity key s for one identity, made without any trapdoor.

    Pick short s1 and s (coefficients in [-1024, 1024]) and solve s1 + s·h = H_ID(ID) for h. The
    pair works like an extracted key, but h extracts nothing else: it stands in for a TA in tests,
    examples and benchmarks until ibepsk has a lattice TA.
    """
    ring = ring or get_ring()
    while True:
        s1, s = ([int.from_bytes(rng(2), "little") % 2049 - 1024 for _ in range(N)] for _ in range(2))
        s_hat = ring.to_ints(ring.ntt(ring.from_ints(s)))
        if all(s_hat):  # s is invertible: no root of x^1024 + 1 is a root of s
            break
    s_inverse = ring.from_ints([pow(x, -1, Q) for x in s_hat])
    t_minus_s1 = ring.add(hash_identity(ring, identity_bytes(identity)), ring.from_ints([-x for x in s1]))
    return ring.to_ints(ring.intt(ring.pointwise(ring.ntt(t_minus_s1), s_inverse))), s


def recover_message(identity: str | bytes, body: bytes, seed: bytes, ring: Ring | None = None) -> bytes:
    """The CPA message m of a ciphertext body (3,968 bytes) to ``identity`` whose encryption seed is known.

    With the seed, r and e2 are known, so w − enc(m) = r·t + e2 is public, and for each i exactly
    one bit b gives Comp(r·t + e2 + b·⌊q/2⌋)_i = v_i. No secret key and no TA key is involved.
    """
    if len(body) != BODY_BYTES:
        raise ValueError(f"a ciphertext body is {BODY_BYTES} bytes")
    ring = ring or get_ring()
    _, v = ring.unpack(body)
    t_stack = ring.stack([ring.ntt(hash_identity(ring, identity_bytes(identity)))])
    (r_times_t,) = ring.products(ring.ntt(ring.ternary(prf(seed, 0))), t_stack)
    masked_one = ring.add(ring.add(r_times_t, ring.ternary(prf(seed, 2))), ring.message(b"\xff" * MESSAGE_BYTES))
    bits = [int(a == b) for a, b in zip(ring.to_ints(ring.compress(masked_one)), ring.to_ints(v), strict=True)]
    return bytes(sum(bits[i + k] << k for k in range(8)) for i in range(0, N, 8))


def recover_tiiger_key(identity: str | bytes, ciphertext: bytes, ring: Ring | None = None) -> bytes:
    """Spec §8: the key of a TiigerTLS lattice ciphertext from public values alone.

    Its 32-byte tail σ is the encryption seed, so :func:`recover_message` reads m, and the key is
    SHA3-256(ciphertext ‖ m). This is why TiigerTLS's lattice IBE-PSK (marker 2, and the lattice
    half of marker 3) is not confidential. The sound KEM sends no seed: there is nothing to feed in.
    """
    if not isinstance(ciphertext, (bytes, bytearray)) or len(ciphertext) != TIIGER_CIPHERTEXT_BYTES:
        raise IbeDecapsulationError("ciphertext has the wrong length")
    ciphertext = bytes(ciphertext)
    message = recover_message(identity, ciphertext[:BODY_BYTES], ciphertext[BODY_BYTES:], ring)
    return _sha3(ciphertext + message)


__all__ = [
    "CIPHERTEXT_BYTES",
    "KEY_BYTES",
    "LATTICE_MARKER",
    "RANDOMNESS_BYTES",
    "TIIGER_CIPHERTEXT_BYTES",
    "TIIGER_REJECTION_MESSAGE",
    "LatticeDecapsulator",
    "LatticeEncapsulator",
    "TiigerLatticeDecapsulator",
    "TiigerLatticeEncapsulator",
    "available_rings",
    "decapsulate",
    "encapsulate",
    "get_ring",
    "hash_identity",
    "recover_message",
    "recover_tiiger_key",
    "single_identity_keys",
    "stored_ta_public_key",
    "ta_public_key_from_stored",
]

"""H1 (identity to G2) and H4 (SHA3-256) of the TiigerTLS Boneh–Franklin scheme.

H3 lives in :mod:`ibepsk.ibe.h3`: it reproduces MIRACL's random generator and
needs room of its own.
"""

from __future__ import annotations

import hashlib

from .backend import FIELD_PRIME, G2Element, PairingBackend

#: TiigerTLS's domain-separation tag. It names G1 and SVDW, but H1 maps to G2
#: with simplified SWU: the bytes are what matter, not the name.
H1_DST = b"BLS12381G1_XMD:SHA-256_SVDW_NU_BFIBE"
_H1_EXPAND_BYTES = 128


def expand_message_xof(message: bytes, dst: bytes, length: int) -> bytes:
    """RFC 9380 §5.3.2 expand_message_xof with SHAKE128."""
    if len(dst) > 255:
        raise ValueError("DST longer than 255 bytes")
    data = message + length.to_bytes(2, "big") + dst + len(dst).to_bytes(1, "big")
    return hashlib.shake_128(data).digest(length)


def h1_field_element(identity: bytes) -> tuple[int, int]:
    """The Fp2 element u = (c0, c1) that H1 maps to the curve."""
    expanded = expand_message_xof(identity, H1_DST, _H1_EXPAND_BYTES)
    return int.from_bytes(expanded[:64], "big") % FIELD_PRIME, int.from_bytes(expanded[64:], "big") % FIELD_PRIME


def h1(backend: PairingBackend, identity: bytes) -> G2Element:
    """H1(ID) in G2: one simplified-SWU map plus cofactor clearing (encode_to_curve shape)."""
    return backend.g2_map_from_fp2(h1_field_element(identity))


def h4(data: bytes) -> bytes:
    return hashlib.sha3_256(data).digest()

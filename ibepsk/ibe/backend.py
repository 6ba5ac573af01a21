"""The small curve interface the IBE scheme needs, and the choice of backend.

Points and GT elements are opaque objects owned by a backend; the rest of the
package only moves them between backend calls. Coordinates cross the boundary
as Python ints (an Fp2 element as ``(c0, c1)``), so the byte codecs in
:mod:`ibepsk.ibe.encoding` are written once for every backend.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

from .errors import BackendUnavailableError

#: Opaque handles; only the backend that made one may look inside.
G1Element = Any
G2Element = Any
GTElement = Any
Fp2 = tuple[int, int]

#: BLS12-381 base-field prime.
FIELD_PRIME = int(
    "1a0111ea397fe69a4b1ba7b6434bacd764774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaab", 16
)
#: Order of G1, G2 and GT.
GROUP_ORDER = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001
FIELD_BYTES = 48
GT_BYTES = 12 * FIELD_BYTES


class PairingBackend(Protocol):
    """What a BLS12-381 library must offer to run the Boneh–Franklin KEM."""

    name: str
    #: True when ``gt_pow`` is cheaper than a pairing, so caching e(Q, Ppub) pays.
    has_fast_gt_pow: bool

    def g1_generator(self) -> G1Element: ...
    def g1_from_affine(self, x: int, y: int) -> G1Element:
        """Build a point; raise ValueError when (x, y) is not on the curve."""
        ...

    def g1_affine(self, point: G1Element) -> tuple[int, int] | None:
        """Affine coordinates, or None for the point at infinity."""
        ...

    def g1_in_subgroup(self, point: G1Element) -> bool: ...
    def g1_mul(self, point: G1Element, scalar: int) -> G1Element: ...
    def g1_add(self, a: G1Element, b: G1Element) -> G1Element: ...
    def g1_equal(self, a: G1Element, b: G1Element) -> bool: ...

    def g2_generator(self) -> G2Element: ...
    def g2_from_affine(self, x: Fp2, y: Fp2) -> G2Element: ...
    def g2_affine(self, point: G2Element) -> tuple[Fp2, Fp2] | None: ...
    def g2_in_subgroup(self, point: G2Element) -> bool: ...
    def g2_mul(self, point: G2Element, scalar: int) -> G2Element: ...
    def g2_add(self, a: G2Element, b: G2Element) -> G2Element: ...
    def g2_map_from_fp2(self, u: Fp2) -> G2Element:
        """RFC 9380 simplified-SWU map to G2 (3-isogeny) and cofactor clearing."""
        ...

    def pairing(self, q: G2Element, p: G1Element) -> GTElement: ...
    def gt_pow(self, z: GTElement, exponent: int) -> GTElement: ...
    def gt_equal(self, a: GTElement, b: GTElement) -> bool: ...
    def gt_to_bytes(self, z: GTElement) -> bytes:
        """The 576-byte MIRACL serialisation (see :func:`miracl_gt_bytes`)."""
        ...


# Position k of the MIRACL layout holds limb MIRACL_LIMB_ORDER[k] of the
# arkworks/mcl layout (a0.re, a0.im, a2.re, a2.im, a4.re, a4.im, a1.re, ...).
_MIRACL_LIMB_ORDER = (11, 10, 3, 2, 5, 4, 7, 6, 9, 8, 1, 0)


def miracl_gt_bytes(little_endian_limbs: bytes) -> bytes:
    """Reorder arkworks'/mcl's GT serialisation into the bytes TiigerTLS hashes."""
    if len(little_endian_limbs) != GT_BYTES:
        raise ValueError(f"GT serialisation must be {GT_BYTES} bytes, got {len(little_endian_limbs)}")
    limbs = [little_endian_limbs[i : i + FIELD_BYTES][::-1] for i in range(0, GT_BYTES, FIELD_BYTES)]
    return b"".join(limbs[k] for k in _MIRACL_LIMB_ORDER)


_BACKEND_NAMES = ("arkworks", "pymcl")
_loaded: dict[str, PairingBackend] = {}


def available_backends() -> list[str]:
    """Names of the backends that import on this machine."""
    names = []
    for name in _BACKEND_NAMES:
        try:
            get_backend(name)
        except BackendUnavailableError:
            continue
        names.append(name)
    return names


#: The default when ``$IBEPSK_BACKEND`` names none: the fastest one installed. Both give the same bytes
#: (tests/test_ibe_properties.py); pymcl decapsulates in about 60 % of arkworks' time (docs/performance.md).
_FASTEST_FIRST = ("pymcl", "arkworks")


def get_backend(name: str | None = None) -> PairingBackend:
    """Return a backend by name; default: ``$IBEPSK_BACKEND``, else the fastest installed (pymcl, then arkworks)."""
    name = name or os.environ.get("IBEPSK_BACKEND") or _fastest_installed()
    if name not in _loaded:
        _loaded[name] = _load(name)
    return _loaded[name]


def _fastest_installed() -> str:
    for name in _FASTEST_FIRST:
        try:
            get_backend(name)
        except BackendUnavailableError:
            continue
        return name
    return _FASTEST_FIRST[-1]  # not installed either: get_backend says so


def _load(name: str) -> PairingBackend:
    try:
        if name == "arkworks":
            from ._arkworks import ArkworksBackend

            return ArkworksBackend()
        if name == "pymcl":
            from ._pymcl import PymclBackend

            return PymclBackend()
    except ImportError as exc:
        raise BackendUnavailableError(f"pairing backend {name!r} is not installed ({exc})") from exc
    raise BackendUnavailableError(f"unknown pairing backend {name!r}; choose one of {', '.join(_BACKEND_NAMES)}")

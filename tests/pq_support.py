"""TiigerTLS's lattice and hybrid IBE vectors (``tests/vectors/tiiger-pq-ibe.json``) and the rings to run them on."""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest

from ibepsk.ibe._ring import available_rings, get_ring
from ibepsk.keys import LatticeIdentityKey, LatticeTAPublicParams

from conftest import VECTORS_PATH

PQ_VECTORS_PATH = VECTORS_PATH.parent / "tiiger-pq-ibe.json"

#: Run a test once per ring implementation installed here (CI installs numpy: both).
EVERY_RING = pytest.mark.parametrize("ring", [get_ring(name) for name in available_rings()], ids=lambda r: r.name)


@functools.cache
def pq_vectors() -> dict[str, Any]:
    # Like the BF vectors: a missing file must fail, never skip.
    data: dict[str, Any] = json.loads(PQ_VECTORS_PATH.read_text())
    return data


def demo_ta_public_key() -> list[int]:
    """h of TiigerTLS's demo lattice TA (published in its source)."""
    return list(pq_vectors()["ta_public_key"]["coefficients"])


def demo_secret_key() -> list[int]:
    """s of TiigerTLS's demo identity key for ``localhost``."""
    return list(pq_vectors()["identity_secret_key_s"])


@functools.cache
def demo_lattice_public() -> LatticeTAPublicParams:
    """TiigerTLS's demo lattice TA as public parameters."""
    return LatticeTAPublicParams.from_polynomial(demo_ta_public_key())


@functools.cache
def demo_lattice_key() -> LatticeIdentityKey:
    """TiigerTLS's demo ``localhost`` key: its format is the same for TiigerTLS's lattice KEM and ibepsk's."""
    return LatticeIdentityKey.from_coefficients("localhost", demo_secret_key(), demo_lattice_public())

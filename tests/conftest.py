"""Shared fixtures: the TiigerTLS known-answer vectors, the pairing backends, a CA and its localhost certificate,
connection pairs closed after each test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pki import Issued, issue, make_ca
from tls_support import Pair, close

#: The repository's copy of ``../shared/vectors/tiiger-bf-ibe.json`` (test_vectors_copy keeps them equal).
VECTORS_PATH = Path(__file__).resolve().parent / "vectors" / "tiiger-bf-ibe.json"


def load_vectors() -> dict[str, Any]:
    # The vectors are the wire-compatibility contract: a missing file must fail, never skip.
    if not VECTORS_PATH.is_file():
        raise FileNotFoundError(f"TiigerTLS vectors not found at {VECTORS_PATH}")
    data: dict[str, Any] = json.loads(VECTORS_PATH.read_text())
    return data


@pytest.fixture(scope="session")
def vectors() -> dict[str, Any]:
    return load_vectors()


@pytest.fixture(scope="session")
def ta() -> Any:
    from ibepsk.keys import TAMasterKey

    return TAMasterKey.generate()


@pytest.fixture(scope="module")
def ca() -> Issued:
    return make_ca()


@pytest.fixture(scope="module")
def server_cert(ca: Issued) -> Issued:
    """A P-256 certificate for ``localhost`` from ``ca``."""
    return issue(ca, "localhost")


@pytest.fixture()
def pairs() -> Iterator[list[Pair]]:
    """Connection pairs a test opens, closed after it."""
    opened: list[Pair] = []
    yield opened
    for pair in opened:
        close(pair)

"""Shared fixtures: the TiigerTLS known-answer vectors and the pairing backends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

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

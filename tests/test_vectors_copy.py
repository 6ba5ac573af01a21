"""The vectors the tests read live in the repository; they must stay the ones ``../shared/`` publishes."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import VECTORS_PATH

SHARED_VECTORS = Path(__file__).resolve().parents[2] / "shared" / "vectors"


def test_repository_copy_is_readable() -> None:
    # The suite must run from a clone with nothing beside it.
    assert VECTORS_PATH.is_relative_to(Path(__file__).resolve().parent)
    assert VECTORS_PATH.stat().st_size > 0


@pytest.mark.skipif(not SHARED_VECTORS.is_dir(), reason="no ../shared/vectors beside this clone to compare with")
@pytest.mark.parametrize("copy", sorted(VECTORS_PATH.parent.glob("*.json")), ids=lambda path: path.name)
def test_copy_equals_shared(copy: Path) -> None:
    assert copy.read_bytes() == (SHARED_VECTORS / copy.name).read_bytes()

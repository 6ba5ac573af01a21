"""The default pairing backend is the fastest one installed; ``IBEPSK_BACKEND`` still decides when set."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ibepsk.ibe import available_backends

DEFAULT_NAME = "from ibepsk.ibe import get_backend; print(get_backend().name)"


def _default_backend(env_backend: str | None = None, shadow: Path | None = None) -> str:
    """The default backend's name in a fresh process (``shadow``: a directory put first on the path)."""
    env = {key: value for key, value in os.environ.items() if key != "IBEPSK_BACKEND"}
    if env_backend is not None:
        env["IBEPSK_BACKEND"] = env_backend
    if shadow is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(shadow), env.get("PYTHONPATH", "")])
    result = subprocess.run([sys.executable, "-c", DEFAULT_NAME], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.skipif("pymcl" not in available_backends(), reason="pymcl is not installed")
def test_pymcl_is_the_default_when_installed() -> None:
    assert _default_backend() == "pymcl"


def test_the_environment_still_chooses() -> None:
    assert _default_backend("arkworks") == "arkworks"


def test_arkworks_is_the_default_without_pymcl(tmp_path: Path) -> None:
    (tmp_path / "pymcl").mkdir()
    (tmp_path / "pymcl" / "__init__.py").write_text("raise ImportError(\"No module named 'pymcl'\")\n")
    assert _default_backend(shadow=tmp_path) == "arkworks"

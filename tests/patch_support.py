"""Run code against stock tlslite-ng and against a copy with one of ``patches/`` applied."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import tlslite

TESTS = Path(__file__).resolve().parent
PATCHES = TESTS.parent / "patches"


def patched_tlslite(patch_name: str, workdir: Path) -> Path:
    """A copy of the installed tlslite package with ``patches/<patch_name>`` applied; returns its sys.path entry."""
    root = workdir / "patched"
    shutil.copytree(Path(tlslite.__file__).parent, root / "tlslite", ignore=shutil.ignore_patterns("__pycache__"))
    result = subprocess.run(
        ["patch", "-p1", "--batch", "--forward", "-i", str(PATCHES / patch_name)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"{patch_name} does not apply:\n{result.stdout}{result.stderr}"
    return root


def run_python(code: str, path_entry: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter, with ``path_entry`` (a patched tlslite) first on sys.path.

    ``tests/`` comes next, so that scenarios can import ``patch_harness``.
    """
    entries = [str(path_entry)] if path_entry else []
    prelude = f"import sys; sys.path[:0] = {[*entries, str(TESTS)]!r}\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout
    )

"""Every ``ibepsk bench`` suite runs and reports (tiny sizes: these check the harness, not speed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from test_cli_ta import assert_one_line_error, ibepsk


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (("ibe", "--runs", "1", "--iterations", "3"), "decapsulate"),
        (("wire",), "web-like chain"),
        (("zero-rtt", "--runs", "1", "--delay-ms", "5"), "0-RTT saves"),
        (("tls", "--runs", "1", "--capacity-seconds", "0.3"), "server capacity"),
    ],
)
def test_bench_suite_runs(arguments: tuple[str, ...], expected: str) -> None:
    result = ibepsk("bench", *arguments)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout
    assert result.stderr == "", "no server chatter: the report is all there is"
    assert "OpenSSL OpenSSL" not in result.stdout


@pytest.fixture()
def without_matplotlib(tmp_path: Path) -> dict[str, str]:
    """An environment where ``import matplotlib`` fails, whether or not it is installed."""
    shadow = tmp_path / "shadow" / "matplotlib"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError(\"No module named 'matplotlib'\")\n")
    return {"PYTHONPATH": os.pathsep.join([str(shadow.parent), os.environ.get("PYTHONPATH", "")])}


@pytest.mark.parametrize("suite", ["tls", "all"])
def test_plot_without_matplotlib_is_refused_before_running(
    tmp_path: Path, without_matplotlib: dict[str, str], suite: str
) -> None:
    result = ibepsk("bench", suite, "--plot", str(tmp_path / "out.png"), env=without_matplotlib, timeout=30)
    assert_one_line_error(result, "--plot needs matplotlib (pip install 'ibepsk[plot]')")
    assert result.stdout == "", "nothing ran"


def test_plot_into_a_directory_is_refused_before_running(tmp_path: Path) -> None:
    result = ibepsk("bench", "tls", "--plot", str(tmp_path), timeout=30)
    assert_one_line_error(result, "is a directory")

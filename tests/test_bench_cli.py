"""Every ``ibepsk bench`` suite runs and reports (tiny sizes: these check the harness, not speed)."""

from __future__ import annotations

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
        (("iot", "--runs", "1", "--delay-ms", "5"), "peak RSS"),
    ],
)
def test_bench_suite_runs(arguments: tuple[str, ...], expected: str) -> None:
    result = ibepsk("bench", *arguments)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout
    assert result.stderr == "", "no server chatter: the report is all there is"
    assert "OpenSSL OpenSSL" not in result.stdout


@pytest.fixture()
def without_matplotlib(tmp_path: Path) -> Path:
    """A directory to run in where ``import matplotlib`` fails, installed or not (``python -m`` puts it first)."""
    shadow = tmp_path / "shadow"
    (shadow / "matplotlib").mkdir(parents=True)
    (shadow / "matplotlib" / "__init__.py").write_text("raise ImportError(\"No module named 'matplotlib'\")\n")
    return shadow


@pytest.mark.parametrize("suite", ["tls", "all"])
def test_plot_without_matplotlib_is_refused_before_running(
    tmp_path: Path, without_matplotlib: Path, suite: str
) -> None:
    result = ibepsk("bench", suite, "--plot", str(tmp_path / "out.png"), cwd=without_matplotlib)
    assert_one_line_error(result, "--plot needs matplotlib (pip install 'ibepsk[plot]')")
    assert result.stdout == "", "nothing ran"


def test_plot_into_a_directory_is_refused_before_running(tmp_path: Path) -> None:
    result = ibepsk("bench", "tls", "--plot", str(tmp_path))
    assert_one_line_error(result, "is a directory")

"""Every ``ibepsk bench`` suite runs and reports (tiny sizes: these check the harness, not speed)."""

from __future__ import annotations

import pytest

from test_cli_ta import ibepsk


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
    assert "Traceback" not in result.stderr

"""``ibepsk bench scale`` runs and reports (tiny sizes: this checks the harness, not speed)."""

from __future__ import annotations

import re

from test_cli_ta import ibepsk


def test_bench_scale_holds_every_connection_on_few_threads() -> None:
    result = ibepsk("bench", "scale", "--connections", "40", "--clients", "2", "--seconds", "0.3")
    assert result.returncode == 0, result.stderr
    assert "every one established and answered: met" in result.stdout, result.stdout
    threads = re.search(r"server threads: (\d+), target <= 8: met", result.stdout)
    assert threads, result.stdout
    assert "--workers 2 / 1 worker:" in result.stdout
    assert result.stderr == "", "no server chatter: the report is all there is"


def test_bench_scale_can_pin_the_server_away_from_the_clients() -> None:
    result = ibepsk("bench", "scale", "--connections", "4", "--clients", "2", "--seconds", "0.3", "--pin-server")
    assert result.returncode == 0, result.stderr
    assert "server pinned to the first CPU, clients on the others" in result.stdout, result.stdout
    assert re.search(r"ibepsk serve / threaded: [\d.]+x", result.stdout), result.stdout

"""``ibepsk bench server``: a real server process's CPU per connection, for ibepsk serve or any server command."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from test_cli_ta import assert_one_line_error, ibepsk

OPENSSL_SERVER = "openssl s_server -accept {port} -cert {cert} -key {key} -www -quiet"
SERVE = f"{sys.executable} -m ibepsk.cli serve --accept 127.0.0.1:{{port}} --ibe-key {{ibe_key}} --quiet"


@pytest.mark.parametrize(
    ("server", "handshake"),
    [((), "ibe-psk"), ((), "certificate"), ((), "resumption"), (("--server-cmd", OPENSSL_SERVER), "certificate")],
)
def test_bench_server_reports_cpu_per_connection(tmp_path: Path, server: tuple[str, ...], handshake: str) -> None:
    output = tmp_path / "server.json"
    arguments = ("--connections", "20", "--runs", "2", "--handshake", handshake, "--json", str(output))
    result = ibepsk("bench", "server", *arguments, *server)
    assert result.returncode == 0, result.stderr
    assert "server CPU per connection" in result.stdout
    figures = json.loads(output.read_text())
    assert set(figures) == {"server", "machine"}
    assert figures["server"]["handshake"] == handshake
    assert figures["server"]["connections"] == 20
    assert len(figures["server"]["runs_ms"]) == 2
    # A server that did nothing would measure 0: every connection costs it a handshake.
    assert figures["server"]["server_ms_per_connection"] > 0


def test_bench_server_says_why_a_server_command_did_not_start() -> None:
    result = ibepsk("bench", "server", "--connections", "1", "--server-cmd", "openssl s_server -bogus-flag {port}")
    assert_one_line_error(result, "bench server: the server exited with status")


def test_bench_server_says_when_a_server_command_cannot_run() -> None:
    result = ibepsk("bench", "server", "--server-cmd", "/nonexistent/server {port}")
    assert_one_line_error(result, "bench server: cannot run /nonexistent/server")


def test_bench_server_refuses_an_unknown_placeholder() -> None:
    result = ibepsk("bench", "server", "--connections", "1", "--server-cmd", "openssl s_server -accept {nope}")
    assert_one_line_error(result, "bench server: unknown placeholder {nope} (known: port, cert")


def test_bench_server_says_when_a_server_does_not_give_tickets_to_resume_with() -> None:
    command = f"{SERVE} --no-tickets"
    result = ibepsk("bench", "server", "--connections", "1", "--handshake", "resumption", "--server-cmd", command)
    assert_one_line_error(result, "bench server: the server sent no session ticket to resume with")


def test_bench_server_says_when_a_handshake_fails() -> None:
    result = ibepsk("bench", "server", "--handshake", "ibe-psk", "--server-cmd", OPENSSL_SERVER)
    assert_one_line_error(result, "bench server: ibe-psk connection failed: ")

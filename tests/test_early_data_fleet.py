"""Two ``ibepsk serve`` processes sharing one real redis-server: a first flight's 0-RTT data is taken once."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ibepsk import keys
from ibepsk.keys import TAMasterKey

from replay_support import RedisServer, running_redis
from test_cli_endpoints import ServerProcess
from test_cli_ta import ibepsk
from tls_support import TIMEOUT, parse_server_hello, read_record


@pytest.fixture()
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with running_redis(tmp_path) as server:
        yield server


def tiiger_key_file(directory: Path, vectors: dict[str, Any]) -> Path:
    public = keys.TAPublicParams.from_bytes(bytes.fromhex(vectors["ta_public_key_g1"]))
    key = keys.IdentityKey.from_bytes("localhost", bytes.fromhex(vectors["identity_key_g2"]), public)
    path = directory / "localhost.key"
    keys.write_key_file(path, key)
    return path


def fleet_member(key: Path, redis_url: str) -> ServerProcess:
    return ServerProcess("--ibe-key", str(key), "--max-early-data", "4096", "--replay-store", redis_url, "--www")


def send_first_flight(port: int, flight: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(flight)
        parse_server_hello(read_record(sock))
        sock.settimeout(0.5)
        try:  # let the server read the 0-RTT record before we hang up
            while sock.recv(4096):
                pass
        except TimeoutError:
            pass


def early_outcomes(log: str) -> list[str]:
    return re.findall(r"early_data=(\S+)", log)


def test_same_first_flight_accepted_by_exactly_one_of_two_servers(
    tmp_path: Path, vectors: dict[str, Any], redis_server: RedisServer
) -> None:
    key = tiiger_key_file(tmp_path, vectors)
    flight = bytes.fromhex(vectors["captured_first_flight"]["records_hex"])
    first, second = fleet_member(key, redis_server.url), fleet_member(key, redis_server.url)
    try:
        send_first_flight(first.port, flight)
        send_first_flight(second.port, flight)
    finally:
        logs = [first.stop(), second.stop()]
    outcomes = sorted(outcome for log in logs for outcome in early_outcomes(log))
    assert outcomes == ["accepted", "replay"], logs
    assert all("Traceback" not in log for log in logs)


def test_redis_down_refuses_early_data_and_still_serves(
    tmp_path: Path, redis_server: RedisServer, ta: TAMasterKey
) -> None:
    key, public = tmp_path / "localhost.key", tmp_path / "public.pem"
    keys.write_key_file(key, ta.extract("localhost"))
    keys.write_key_file(public, ta.public)
    server = fleet_member(key, redis_server.url)
    try:
        redis_server.stop()
        result = ibepsk(
            "connect", f"127.0.0.1:{server.port}", "--ta", str(public), "--identity", "localhost",
            "--send-early", r"GET / HTTP/1.0\r\n\r\n",
        )  # fmt: skip
    finally:
        log = server.stop()
    assert result.returncode == 0, result.stderr
    assert "mode=ibe-psk" in result.stderr and "HTTP/1.1 200 OK" in result.stdout, "resent after the handshake"
    assert "handshake ok" in log and early_outcomes(log) == ["replay"], log
    assert "Traceback" not in log

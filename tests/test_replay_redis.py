"""The Redis strike register against a real redis-server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ibepsk.tls.replay import DEFAULT_KEY_PREFIX, RedisReplayStore

from replay_support import ManualClock, RedisServer, flight, running_redis

WINDOW = 30

# One "server process": opens a store, reports ready, waits for "go", then offers every key once.
_RACER = """
import json, sys
from ibepsk.tls.replay import RedisReplayStore
store = RedisReplayStore(sys.argv[1], 60)
keys = [bytes.fromhex(key) for key in json.loads(sys.stdin.readline())]
store.first_use(b"warm-up " + keys[0])  # connect before the race starts
print("ready", flush=True)
sys.stdin.readline()
print(json.dumps([store.first_use(key) for key in keys]), flush=True)
"""


@pytest.fixture(scope="module")
def shared_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture()
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A server this test alone may stop and restart."""
    with running_redis(tmp_path) as server:
        yield server


def test_set_nx_semantics(shared_redis: RedisServer) -> None:
    store = RedisReplayStore(shared_redis.url, WINDOW)
    other_process = RedisReplayStore(shared_redis.url, WINDOW)
    key = flight()
    assert store.first_use(key) is True
    assert store.first_use(key) is False
    assert other_process.first_use(key) is False
    assert other_process.first_use(flight()) is True
    store.close()
    other_process.close()


def test_records_a_digest_with_the_window_as_ttl(shared_redis: RedisServer) -> None:
    prefix = "test-ttl:"
    store = RedisReplayStore(shared_redis.url, WINDOW, key_prefix=prefix)
    key = flight()
    assert store.first_use(key)
    with shared_redis.client() as client:
        recorded = client.keys(prefix + "*")
        assert recorded == [(prefix + hashlib.sha256(key).hexdigest()).encode()]
        assert WINDOW - 2 <= client.ttl(recorded[0]) <= WINDOW
    store.close()


def test_default_prefix_and_window_rounding_up(shared_redis: RedisServer) -> None:
    store = RedisReplayStore(shared_redis.url, 2.5)
    key = flight()
    assert store.redis_key(key) == DEFAULT_KEY_PREFIX + hashlib.sha256(key).hexdigest()
    assert store.first_use(key)
    with shared_redis.client() as client:
        assert 2 <= client.ttl(store.redis_key(key)) <= 3
    store.close()


def _start_racer(url: str, keys: list[bytes]) -> subprocess.Popen[str]:
    racer = subprocess.Popen(
        [sys.executable, "-c", _RACER, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert racer.stdin is not None and racer.stdout is not None
    racer.stdin.write(json.dumps([key.hex() for key in keys]) + "\n")
    racer.stdin.flush()
    return racer


def _results(racer: subprocess.Popen[str]) -> list[bool]:
    output, _ = racer.communicate(timeout=60)
    assert racer.returncode == 0
    results: list[bool] = json.loads(output.splitlines()[-1])
    return results


def test_two_processes_racing_accept_each_key_once(shared_redis: RedisServer) -> None:
    keys = [flight() for _ in range(300)]
    racers = [_start_racer(shared_redis.url, keys) for _ in range(2)]
    for racer in racers:
        assert racer.stdout is not None
        assert racer.stdout.readline().strip() == "ready"
    for racer in racers:
        assert racer.stdin is not None
        racer.stdin.write("go\n")
        racer.stdin.flush()
    first, second = (_results(racer) for racer in racers)
    assert [a + b for a, b in zip(first, second, strict=True)] == [1] * len(keys)


def test_threads_sharing_one_store(shared_redis: RedisServer) -> None:
    store = RedisReplayStore(shared_redis.url, WINDOW)
    keys = [flight() for _ in range(50)]
    wins = [0] * len(keys)
    lock = threading.Lock()
    start = threading.Barrier(8)

    def race() -> None:
        start.wait()
        won = [store.first_use(key) for key in keys]
        with lock:
            for index, first in enumerate(won):
                wins[index] += first

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wins == [1] * len(keys)
    store.close()


def test_redis_down_refuses_and_recovers(own_redis: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock()
    store = RedisReplayStore(own_redis.url, WINDOW, retry_after=1.0, clock=clock)
    assert store.first_use(flight())
    own_redis.stop()
    with caplog.at_level(logging.WARNING, logger="ibepsk.replay"):
        assert store.first_use(flight()) is False
        clock.advance(1.0)
        assert store.first_use(flight()) is False
    warnings = [record.getMessage() for record in caplog.records if record.name == "ibepsk.replay"]
    assert len(warnings) == 1, "a dead Redis should log one rate-limited warning, not one per connection"
    assert "refusing early data" in warnings[0]

    own_redis.start()
    key = flight()
    assert store.first_use(key) is False, "within retry_after the store should not try Redis yet"
    clock.advance(1.0)
    assert store.first_use(key) is True
    assert store.first_use(key) is False
    store.close()


class SilentListener:
    """Accepts TCP connections on 127.0.0.1 and never answers: a hung Redis."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            self.accepted.append(connection)

    def close(self) -> None:
        self._socket.close()
        for connection in self.accepted:
            connection.close()


def test_hung_redis_times_out_and_backs_off() -> None:
    listener = SilentListener()
    clock = ManualClock()
    timeout = 0.2
    store = RedisReplayStore(f"redis://127.0.0.1:{listener.port}/0", WINDOW, timeout=timeout, clock=clock)
    try:
        started = time.monotonic()
        assert store.first_use(flight()) is False
        # Not a performance figure: without the socket timeout this call would never return.
        assert time.monotonic() - started < 20 * timeout
        assert len(listener.accepted) == 1
        assert store.first_use(flight()) is False
        assert len(listener.accepted) == 1, "during the back-off the store should not reconnect"
        clock.advance(1.0)
        assert store.first_use(flight()) is False
        assert len(listener.accepted) == 2
    finally:
        store.close()
        listener.close()

"""The in-memory strike register and replay-store specs (ibepsk.tls.replay)."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator

import pytest

from ibepsk.tls.replay import (
    DEFAULT_MAX_ENTRIES,
    WARNING_INTERVAL,
    MemoryReplayStore,
    RedisReplayStore,
    ReplayStore,
    ReplayStoreConfigError,
    open_replay_store,
)

from replay_support import ManualClock, flight

WINDOW = 10.0


@pytest.fixture()
def clock() -> ManualClock:
    return ManualClock()


def test_first_use_once(clock: ManualClock) -> None:
    store: ReplayStore = MemoryReplayStore(WINDOW, clock=clock)
    key, other = flight(), flight()
    assert store.first_use(key) is True
    assert store.first_use(key) is False
    assert store.first_use(bytes(key)) is False
    assert store.first_use(other) is True
    assert store.first_use(key[:-1]) is True


def test_key_expires_after_the_window(clock: ManualClock) -> None:
    store = MemoryReplayStore(WINDOW, clock=clock)
    key = flight()
    assert store.first_use(key)
    clock.advance(WINDOW - 0.001)
    assert not store.first_use(key)
    clock.advance(0.001)
    # Past the window the register has forgotten the key: this is why the window must cover an identity's life.
    assert store.first_use(key)
    assert not store.first_use(key)
    assert len(store) == 1


def test_full_store_refuses_instead_of_forgetting(clock: ManualClock) -> None:
    store = MemoryReplayStore(WINDOW, max_entries=3, clock=clock)
    recorded = [flight() for _ in range(3)]
    assert all(store.first_use(key) for key in recorded)
    newcomer = flight()
    assert not store.first_use(newcomer)
    assert not any(store.first_use(key) for key in recorded), "a full store forgot a key inside its window"
    assert len(store) == 3
    clock.advance(WINDOW)
    assert store.first_use(newcomer)


def test_full_store_frees_room_as_keys_expire(clock: ManualClock) -> None:
    store = MemoryReplayStore(WINDOW, max_entries=2, clock=clock)
    oldest, younger = flight(), flight()
    assert store.first_use(oldest)
    clock.advance(WINDOW / 2)
    assert store.first_use(younger)
    assert not store.first_use(flight())
    clock.advance(WINDOW / 2)
    assert store.first_use(flight()), "the oldest key's expiry should make room for one"
    assert not store.first_use(younger)
    assert not store.first_use(flight())


def test_full_store_warns_at_a_limited_rate(clock: ManualClock, caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryReplayStore(WINDOW * WARNING_INTERVAL, max_entries=1, clock=clock)
    assert store.first_use(flight())
    with caplog.at_level(logging.WARNING, logger="ibepsk.replay"):
        for _ in range(5):
            assert not store.first_use(flight())
        clock.advance(WARNING_INTERVAL)
        assert not store.first_use(flight())
    warnings = [record.getMessage() for record in caplog.records if record.name == "ibepsk.replay"]
    assert len(warnings) == 2
    assert "full" in warnings[0]
    assert "4 more" in warnings[1]


@pytest.fixture()
def frequent_thread_switches() -> Iterator[None]:
    """Switch threads every microsecond, so an unlocked check-then-insert loses races."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


@pytest.mark.usefixtures("frequent_thread_switches")
def test_threads_racing_on_the_same_keys() -> None:
    store = MemoryReplayStore(WINDOW)
    keys = [flight() for _ in range(2000)]
    threads_count = 8
    start = threading.Barrier(threads_count)
    wins = [0] * len(keys)
    wins_lock = threading.Lock()

    def race() -> None:
        start.wait()
        won = [store.first_use(key) for key in keys]
        with wins_lock:
            for index, first in enumerate(won):
                wins[index] += first

    threads = [threading.Thread(target=race) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wins == [1] * len(keys)


@pytest.mark.parametrize("window", [0, -1, float("nan"), float("inf")])
def test_window_must_be_positive(window: float) -> None:
    with pytest.raises(ReplayStoreConfigError, match="window"):
        MemoryReplayStore(window)
    with pytest.raises(ValueError, match="window"):
        open_replay_store("redis://127.0.0.1:6379/0", window)


def test_memory_store_needs_room() -> None:
    with pytest.raises(ReplayStoreConfigError, match="at least one"):
        MemoryReplayStore(WINDOW, max_entries=0)


def test_close_forgets(clock: ManualClock) -> None:
    store = MemoryReplayStore(WINDOW, clock=clock)
    key = flight()
    assert store.first_use(key)
    store.close()
    assert len(store) == 0


def test_open_memory_specs() -> None:
    default = open_replay_store("memory", WINDOW)
    assert isinstance(default, MemoryReplayStore)
    assert default.max_entries == DEFAULT_MAX_ENTRIES
    assert default.window_seconds == WINDOW
    sized = open_replay_store("memory:5", WINDOW)
    assert isinstance(sized, MemoryReplayStore)
    assert sized.max_entries == 5


def test_open_redis_spec_does_not_connect_yet() -> None:
    # Port 1 is closed: a store for an unreachable Redis must still open, and then refuse.
    store = open_replay_store("redis://127.0.0.1:1/3", WINDOW)
    assert isinstance(store, RedisReplayStore)
    assert store.window_seconds == WINDOW
    assert store.first_use(flight()) is False
    store.close()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("memory:", "positive whole number"),
        ("memory:0", "positive whole number"),
        ("memory:-3", "positive whole number"),
        ("memory:ten", "positive whole number"),
        ("memory:²", "positive whole number"),
        ("", "unknown replay store"),
        ("Memory", "unknown replay store"),
        ("file:///var/replay", "unknown replay store 'file'"),
        ("redis://:6379/0", "needs a host"),
        ("redis://localhost:port/0", "bad port"),
        ("redis://localhost:99999/0", "bad port"),
        ("redis://localhost:6379/zero", "database must be a number"),
    ],
)
def test_bad_specs(spec: str, message: str) -> None:
    with pytest.raises(ReplayStoreConfigError, match=message):
        open_replay_store(spec, WINDOW)


def test_bad_spec_message_hides_credentials() -> None:
    with pytest.raises(ValueError, match="unknown replay store") as caught:
        open_replay_store("reddis://admin:hunter2@cache:6379/0", WINDOW)
    assert "hunter2" not in str(caught.value)

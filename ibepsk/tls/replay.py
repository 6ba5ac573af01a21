"""Replay protection for 0-RTT data: a strike register (RFC 8446 §8.2).

0-RTT data rides in the client's first flight, before the server has said
anything, so an attacker who records that flight can send it again and the
server would act on the same early data twice. A strike register remembers
every first flight whose early data it accepted and refuses a second one.

The key is the IBE ciphertext sent as the PSK identity. A client encapsulates
afresh for every connection (random sigma), so two genuine first flights never
share it; only the holder of the encapsulated secret can compute the binder
that binds the rest of the ClientHello to it. A ClientHello that carries an
already-seen ciphertext with a valid binder is therefore a replay (or a client
re-sending its own flight), and refusing its early data is always right. The
stores keep a SHA-256 digest of the key, never the ciphertext itself.

A store only remembers a key for ``window_seconds``. IBE-PSK clients send
``obfuscated_ticket_age = 1`` as a scheme marker, not an age, so the server
cannot tell how old a first flight is: once a key has left the window, a replay
of it is accepted again. The window must therefore cover the whole time a
ciphertext can still be opened; epoch-bound identities (:mod:`ibepsk.epochs`)
bound that time, see docs/replay.md.

Every store fails safe: when it cannot be sure a key is new (memory full,
Redis unreachable) it answers False, the server rejects the early data, and
the handshake completes without it.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import redis

log = logging.getLogger("ibepsk.replay")

Clock = Callable[[], float]

#: ``memory`` without a size: about 20 MB of digests at most (see docs/replay.md).
DEFAULT_MAX_ENTRIES = 100_000
DEFAULT_KEY_PREFIX = "ibepsk:0rtt:"
#: Seconds a Redis command may take before the store gives up and refuses the early data.
DEFAULT_REDIS_TIMEOUT = 0.3
#: After a Redis failure, seconds to refuse early data without trying Redis again.
DEFAULT_REDIS_RETRY_AFTER = 1.0
#: At most one warning per this many seconds per store.
WARNING_INTERVAL = 60.0
_REDIS_SCHEMES = ("redis", "rediss")


class ReplayStoreError(Exception):
    """Base class of replay-store errors (raised when a store is set up, never by ``first_use``)."""


class ReplayStoreConfigError(ReplayStoreError, ValueError):
    """A replay-store spec, window or size that cannot work."""


class ReplayBackendUnavailableError(ReplayStoreError):
    """The backend's client library is not installed."""


class ReplayStore(Protocol):
    """A strike register for 0-RTT first flights."""

    window_seconds: float

    def first_use(self, key: bytes) -> bool:
        """True exactly once per key within the window; False for a repeat or when unsure. Thread-safe, never raises."""
        ...

    def close(self) -> None:
        """Release the store's resources."""
        ...


def key_digest(key: bytes) -> bytes:
    """What a store records for a key: its SHA-256 digest (fixed size, and no ciphertext at rest)."""
    return hashlib.sha256(key).digest()


class _WarningLimiter:
    """Logs one warning line at most every ``interval`` seconds, counting the ones held back."""

    def __init__(self, clock: Clock, interval: float = WARNING_INTERVAL) -> None:
        self._clock = clock
        self._interval = interval
        self._next_allowed = -math.inf
        self._held_back = 0
        self._lock = threading.Lock()

    def warn(self, message: str) -> None:
        with self._lock:
            now = self._clock()
            if now < self._next_allowed:
                self._held_back += 1
                return
            held_back, self._held_back = self._held_back, 0
            self._next_allowed = now + self._interval
        suffix = f" ({held_back} more since the last warning)" if held_back else ""
        log.warning("%s%s", message, suffix)


def _check_window(window_seconds: float) -> None:
    if not window_seconds > 0 or math.isinf(window_seconds):
        raise ReplayStoreConfigError(f"the replay window must be a positive number of seconds, not {window_seconds!r}")


class MemoryReplayStore:
    """An in-process strike register holding at most ``max_entries`` keys.

    Keys expire ``window_seconds`` after their first use (``clock`` is
    monotonic; tests inject their own). When the store is full of keys still
    inside their window it refuses new keys rather than evicting old ones:
    evicting a live key would let a replay of that flight through, while
    refusing only costs honest clients their 0-RTT (they fall back to 1-RTT)
    until keys expire. It protects one process only, and forgets everything
    when the process restarts.
    """

    def __init__(
        self,
        window_seconds: float,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        *,
        clock: Clock = time.monotonic,
    ) -> None:
        _check_window(window_seconds)
        if max_entries < 1:
            raise ReplayStoreConfigError(f"a memory replay store needs room for at least one key, not {max_entries}")
        self.window_seconds = window_seconds
        self.max_entries = max_entries
        self._clock = clock
        # digest -> expiry; insertion order is expiry order, since every key gets the same window.
        self._expiries: OrderedDict[bytes, float] = OrderedDict()
        self._lock = threading.Lock()
        self._warnings = _WarningLimiter(clock)

    def __len__(self) -> int:
        with self._lock:
            return len(self._expiries)

    def first_use(self, key: bytes) -> bool:
        digest = key_digest(key)
        with self._lock:
            now = self._clock()
            self._forget_expired(now)
            if digest in self._expiries:
                return False
            full = len(self._expiries) >= self.max_entries
            if not full:
                self._expiries[digest] = now + self.window_seconds
        if full:
            self._warnings.warn(
                f"0-RTT replay store full ({self.max_entries} keys within {self.window_seconds:g} s): "
                "refusing early data until keys expire"
            )
        return not full

    def _forget_expired(self, now: float) -> None:
        while self._expiries:
            digest, expiry = next(iter(self._expiries.items()))
            if expiry > now:
                return
            del self._expiries[digest]

    def close(self) -> None:
        with self._lock:
            self._expiries.clear()


class RedisReplayStore:
    """A strike register in Redis, shared by every server process that uses the same Redis.

    ``first_use`` is one ``SET prefix+sha256hex NX EX window``: Redis runs it
    atomically, so of any number of processes offering the same key exactly one
    sees it stored. Any Redis error or timeout (``timeout`` seconds, no
    retries) answers False, logs a rate-limited warning, and for
    ``retry_after`` seconds the store refuses without trying Redis, so a dead
    Redis costs a handshake nothing but its 0-RTT. A lost reply to a SET that
    did happen also answers False: a refusal, never a double acceptance.

    Redis drops keys it loses: a restart without persistence, or a failover to
    a replica that had not yet received them, reopens their window.
    """

    def __init__(
        self,
        url: str,
        window_seconds: float,
        *,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        timeout: float = DEFAULT_REDIS_TIMEOUT,
        retry_after: float = DEFAULT_REDIS_RETRY_AFTER,
        clock: Clock = time.monotonic,
    ) -> None:
        _check_window(window_seconds)
        self.window_seconds = window_seconds
        self.key_prefix = key_prefix
        self._expire_seconds = math.ceil(window_seconds)  # rounding up only keeps keys longer
        self._retry_after = retry_after
        self._clock = clock
        self._skip_until = -math.inf
        self._warnings = _WarningLimiter(clock)
        self._client = _redis_client(url, timeout)
        self._redis_error = _redis_error_types()

    def redis_key(self, key: bytes) -> str:
        """The Redis key that records ``key``."""
        return self.key_prefix + key_digest(key).hex()

    def first_use(self, key: bytes) -> bool:
        if self._clock() < self._skip_until:
            return False
        try:
            stored = self._client.set(self.redis_key(key), b"1", nx=True, ex=self._expire_seconds)
        except self._redis_error as error:
            self._skip_until = self._clock() + self._retry_after
            self._warnings.warn(f"Redis replay store failed, refusing early data: {type(error).__name__}: {error}")
            return False
        return stored is True

    def close(self) -> None:
        self._client.close()


def _redis_client(url: str, timeout: float) -> redis.Redis:
    try:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry
    except ImportError as error:
        raise ReplayBackendUnavailableError(
            "the Redis replay store needs the redis package: pip install 'ibepsk[redis]'"
        ) from error
    try:
        return redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),  # a retry would hold the handshake; the next connection tries again
        )
    except ValueError as error:
        raise ReplayStoreConfigError(f"bad Redis URL: {error}") from error


def _redis_error_types() -> tuple[type[Exception], ...]:
    from redis.exceptions import RedisError

    return (RedisError, OSError)


def open_replay_store(spec: str, window_seconds: float) -> ReplayStore:
    """A store from ``memory``, ``memory:MAX`` or ``redis://host:port/db`` (also ``rediss://``)."""
    if spec == "memory":
        return MemoryReplayStore(window_seconds)
    if spec.startswith("memory:"):
        return MemoryReplayStore(window_seconds, _max_entries(spec.removeprefix("memory:")))
    if urlsplit(spec).scheme in _REDIS_SCHEMES:
        _check_redis_url(spec)
        return RedisReplayStore(spec, window_seconds)
    # Only the part before the first colon: a mistyped URL may carry a password.
    kind = spec.split(":", 1)[0]
    raise ReplayStoreConfigError(f"unknown replay store {kind!r}: use memory, memory:MAX or redis://host:port/db")


def _is_decimal(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _max_entries(text: str) -> int:
    if not _is_decimal(text) or int(text) < 1:
        raise ReplayStoreConfigError(f"memory:MAX needs a positive whole number of keys, not {text!r}")
    return int(text)


def _check_redis_url(url: str) -> None:
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked
    except ValueError as error:
        raise ReplayStoreConfigError(f"bad port in Redis URL: {error}") from error
    if not parts.hostname:
        raise ReplayStoreConfigError("a Redis URL needs a host: redis://host:port/db")
    database = parts.path.removeprefix("/")
    if database and not _is_decimal(database):
        raise ReplayStoreConfigError(f"the Redis database must be a number, not {database!r}")

"""The device's on-disk queue of readings not yet acknowledged by the gateway.

A reading is written (and fsynced) here before any attempt to send it, and
deleted only once the gateway's acknowledgement has arrived, so a crash, a
power cut or a gateway outage at any moment loses nothing: at worst a reading
is sent again, and the gateway stores it once (see :mod:`ibepsk.iot.store`).

SQLite in WAL mode with ``synchronous=FULL``: every committed change is on
disk when the call returns. Sequence numbers come from ``AUTOINCREMENT``, so
they only grow, even after the queue empties.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .database import DurableDatabase
from .protocol import JsonValue, decode_value, encode_value

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS readings (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    value TEXT NOT NULL
);
"""
_QUEUE_ID_BYTES = 8


@dataclass(frozen=True)
class QueuedReading:
    seq: int
    at: float
    value: JsonValue


class ReadingQueue(DurableDatabase):
    """Readings waiting for the gateway's acknowledgement, oldest first; thread-safe."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path, _SCHEMA)
        with self._db:
            self._db.execute(
                "INSERT OR IGNORE INTO meta (name, value) VALUES ('queue_id', ?)",
                (secrets.token_hex(_QUEUE_ID_BYTES),),
            )
        (self.queue_id,) = self._db.execute("SELECT value FROM meta WHERE name = 'queue_id'").fetchone()

    def put(self, value: JsonValue, at: float | None = None) -> QueuedReading:
        """Queue a reading durably; returns it with its sequence number."""
        text = encode_value(value)
        taken_at = time.time() if at is None else at
        with self._lock, self._db:
            cursor = self._db.execute("INSERT INTO readings (at, value) VALUES (?, ?)", (taken_at, text))
        assert cursor.lastrowid is not None
        return QueuedReading(cursor.lastrowid, taken_at, value)

    def pending(self, limit: int | None = None) -> list[QueuedReading]:
        """The oldest readings not yet acknowledged (all of them without ``limit``)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, at, value FROM readings ORDER BY seq LIMIT ?", (-1 if limit is None else limit,)
            ).fetchall()
        return [QueuedReading(seq, at, decode_value(text)) for seq, at, text in rows]

    def acknowledge(self, seqs: Iterable[int]) -> int:
        """Forget readings the gateway has acknowledged; returns how many were still queued."""
        with self._lock, self._db:
            cursor = self._db.executemany("DELETE FROM readings WHERE seq = ?", [(seq,) for seq in seqs])
        return cursor.rowcount

"""The gateway's reading store: SQLite (WAL, ``synchronous=FULL``), each reading once.

A reading is named by ``(device, queue, seq)``, where ``device`` is the name the
gateway authenticated (the certificate's common name), never what the device
wrote in the reading. A UNIQUE constraint makes a resent reading a no-op, so a
device that lost an acknowledgement can send again and the reading is still
stored exactly once. One writer at a time (a lock around one connection);
``add`` returns only once the transaction is on disk, so an acknowledgement
sent after it never outruns the data.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .database import DurableDatabase
from .protocol import JsonValue, Reading, decode_value, encode_value

_SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    id INTEGER PRIMARY KEY,
    device TEXT NOT NULL,
    queue TEXT NOT NULL,
    seq INTEGER NOT NULL,
    taken_at REAL NOT NULL,
    value TEXT NOT NULL,
    received_at REAL NOT NULL,
    early INTEGER NOT NULL,
    UNIQUE (device, queue, seq)
);
"""


@dataclass(frozen=True)
class StoredReading:
    device: str
    queue: str
    seq: int
    taken_at: float
    value: JsonValue
    received_at: float
    #: It arrived as 0-RTT data (and was stored once the device had authenticated).
    early: bool


@dataclass(frozen=True)
class AddResult:
    stored: int
    duplicates: int


class ReadingStore(DurableDatabase):
    """Readings by device, stored once each; thread-safe."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path, _SCHEMA)

    def add(self, device: str, readings: Sequence[Reading], *, early: bool = False) -> AddResult:
        """Store the readings of the authenticated ``device`` in one transaction; resends are ignored."""
        received_at = time.time()
        rows = [(device, r.queue, r.seq, r.at, encode_value(r.value), received_at, int(early)) for r in readings]
        with self._lock, self._db:
            before = self._db.total_changes
            self._db.executemany(
                "INSERT OR IGNORE INTO readings (device, queue, seq, taken_at, value, received_at, early) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            stored = self._db.total_changes - before
        return AddResult(stored, len(rows) - stored)

    def readings(self, device: str | None = None) -> list[StoredReading]:
        """Everything stored (for one device), in the order it arrived."""
        query = "SELECT device, queue, seq, taken_at, value, received_at, early FROM readings"
        parameters: tuple[str, ...] = ()
        if device is not None:
            query, parameters = query + " WHERE device = ?", (device,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY id", parameters).fetchall()
        return [
            StoredReading(device, queue, seq, taken_at, decode_value(value), received_at, bool(early))
            for device, queue, seq, taken_at, value, received_at, early in rows
        ]

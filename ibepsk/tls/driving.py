"""Driving tlslite-ng's generator methods from plain methods.

tlslite-ng's I/O methods are generators that yield 0 (waiting to read) or 1
(waiting to write) on a non-blocking socket and never yield on a blocking one.
A plain method that must send or read (an application API, a hook tlslite-ng
calls without yielding) runs them to the end here, waiting on the socket with
``select`` instead of spinning.
"""

from __future__ import annotations

import select
import socket
from collections.abc import Iterator
from typing import Any

WANTS_READ = 0
WANTS_WRITE = 1


def run_to_completion(steps: Iterator[Any], sock: socket.socket) -> None:
    for result in steps:
        if result == WANTS_READ:
            select.select([sock], [], [])
        elif result == WANTS_WRITE:
            select.select([], [sock], [])

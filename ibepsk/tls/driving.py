"""Driving tlslite-ng's generator methods from plain methods.

tlslite-ng's I/O methods are generators that yield 0 (waiting to read) or 1
(waiting to write) on a non-blocking socket and never yield on a blocking one;
some yield their result last (``readAsync`` its data). A public blocking method
(``request_client_auth()``, ``send_close_notify()``...) runs its generator twin
to the end here, waiting on the socket with ``select`` instead of spinning.
Hooks never do: they are steps of tlslite-ng's generators themselves.
"""

from __future__ import annotations

import select
from collections.abc import Iterator
from typing import Any

from tlslite.bufferedsocket import BufferedSocket

WANTS_READ = 0
WANTS_WRITE = 1


def is_waiting(step: Any) -> bool:
    """Whether a value a tlslite-ng generator yielded says it waits for the socket (rather than its result)."""
    return isinstance(step, int) and not isinstance(step, bool) and step in (WANTS_READ, WANTS_WRITE)


def run_to_completion(steps: Iterator[Any], sock: Any) -> Any:
    """Run ``steps`` to the end; return the last value they yielded that is not a wait (None if none).

    ``sock`` is the socket they run on, or tlslite-ng's BufferedSocket around it (``conn.sock``).
    """
    raw = sock.socket if isinstance(sock, BufferedSocket) else sock
    result = None
    for step in steps:
        if not is_waiting(step):
            result = step
        elif step == WANTS_READ:
            select.select([raw], [], [])
        else:
            select.select([], [raw], [])
    return result

"""Epoch-bound identities: ``host|2026-11-27`` (daily) or ``host|2026-11-27T13`` (hourly).

An identity that names its validity period bounds how long a recorded 0-RTT
first flight can be replayed: once the server has dropped that period's
identity key, the flight's ciphertext no longer opens. The server holds keys
for the current period and its neighbours (clients whose clocks are a little
off, flights sent just before a boundary), so one identity is accepted for
:func:`acceptance_span` in all, and a replay store whose window covers that
span (plus the clock skew between servers) refuses every replay. Epochs are UTC.

Pure functions; ``now`` is always passed in and must be timezone-aware.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum

from .keys import validate_identity

SEPARATOR = "|"


class EpochError(ValueError):
    """An identity, host or time that epoch-bound identities cannot use."""


class EpochPeriod(Enum):
    """How long one epoch lasts, with its label format."""

    DAY = "day"
    HOUR = "hour"

    @property
    def length(self) -> timedelta:
        return timedelta(days=1) if self is EpochPeriod.DAY else timedelta(hours=1)

    @property
    def label_format(self) -> str:
        return "%Y-%m-%d" if self is EpochPeriod.DAY else "%Y-%m-%dT%H"

    def start_of(self, when: datetime) -> datetime:
        """The start of the epoch ``when`` falls in."""
        utc = _as_utc(when)
        if self is EpochPeriod.DAY:
            return utc.replace(hour=0, minute=0, second=0, microsecond=0)
        return utc.replace(minute=0, second=0, microsecond=0)


_LABEL_PATTERNS = {
    EpochPeriod.DAY: re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII),
    EpochPeriod.HOUR: re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}", re.ASCII),
}


@dataclass(frozen=True)
class EpochIdentity:
    """One host's identity for one epoch; ``str()`` gives the identity string."""

    host: str
    period: EpochPeriod
    start: datetime

    def __post_init__(self) -> None:
        _check_host(self.host)
        start = self.period.start_of(self.start)
        if start != self.start:
            raise EpochError(f"{self.start.isoformat()} is not the start of a {self.period.value}")
        object.__setattr__(self, "start", start)  # the same instant, in UTC, so labels read UTC fields

    def __str__(self) -> str:
        return f"{self.host}{SEPARATOR}{self.start.strftime(self.period.label_format)}"

    @property
    def end(self) -> datetime:
        return self.start + self.period.length

    def shifted(self, epochs: int) -> EpochIdentity:
        """The same host's identity ``epochs`` periods later (earlier if negative)."""
        return EpochIdentity(self.host, self.period, self.start + epochs * self.period.length)


def epoch_identity(host: str, when: datetime, period: EpochPeriod = EpochPeriod.DAY) -> EpochIdentity:
    """``host``'s identity for the epoch containing ``when``."""
    return EpochIdentity(host, period, period.start_of(when))


def current_identity(host: str, now: datetime, period: EpochPeriod = EpochPeriod.DAY) -> str:
    """The identity a client encapsulates to at ``now``."""
    return str(epoch_identity(host, now, period))


def identities_around(
    host: str,
    now: datetime,
    before: int = 1,
    after: int = 1,
    period: EpochPeriod = EpochPeriod.DAY,
) -> list[str]:
    """The identities a server holds keys for at ``now``, oldest first.

    ``before`` past epochs, the current one, and ``after`` future ones.
    """
    _check_neighbours(before, after)
    current = epoch_identity(host, now, period)
    return [str(current.shifted(offset)) for offset in range(-before, after + 1)]


def acceptance_span(before: int = 1, after: int = 1, period: EpochPeriod = EpochPeriod.DAY) -> timedelta:
    """How long one identity stays accepted by a server following :func:`identities_around`.

    An epoch-E identity opens while the server's current epoch is E - after
    through E + before: ``before + after + 1`` periods. A replay store window
    of at least this (plus the clock skew between servers) outlives every
    ciphertext it records.
    """
    _check_neighbours(before, after)
    return (before + after + 1) * period.length


def parse_identity(identity: str) -> EpochIdentity:
    """Split ``host|label`` into host, period and epoch start; raises :class:`EpochError`."""
    host, separator, label = identity.rpartition(SEPARATOR)
    if not separator:
        raise EpochError(f"{identity!r} is not epoch-bound: expected host{SEPARATOR}YYYY-MM-DD[THH]")
    for period, pattern in _LABEL_PATTERNS.items():
        if pattern.fullmatch(label):
            return EpochIdentity(host, period, _parse_label(label, period))
    raise EpochError(f"{label!r} is neither a day (YYYY-MM-DD) nor an hour (YYYY-MM-DDTHH)")


def _parse_label(label: str, period: EpochPeriod) -> datetime:
    try:
        return datetime.strptime(label, period.label_format).replace(tzinfo=UTC)
    except ValueError as error:
        raise EpochError(f"{label!r} is not a valid {period.value}: {error}") from error


def _as_utc(when: datetime) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise EpochError("epochs need a timezone-aware time (e.g. datetime.now(UTC)), not a naive one")
    return when.astimezone(UTC)


def _check_host(host: str) -> None:
    """The identity rule (:func:`ibepsk.keys.validate_identity`), and no separator."""
    try:
        validate_identity(host)
    except ValueError as error:
        raise EpochError(f"{host!r} cannot be an epoch-bound host: {error}") from None
    if SEPARATOR in host:
        raise EpochError(f"{host!r} cannot be an epoch-bound host: it contains {SEPARATOR!r}")


def _check_neighbours(before: int, after: int) -> None:
    if before < 0 or after < 0:
        raise EpochError(f"the neighbouring epochs held must be zero or more, not before={before}, after={after}")

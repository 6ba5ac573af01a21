"""Epoch-bound identities (ibepsk.epochs)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ibepsk.epochs import (
    EpochError,
    EpochIdentity,
    EpochPeriod,
    acceptance_span,
    current_identity,
    epoch_identity,
    identities_around,
    parse_identity,
)

NOW = datetime(2026, 11, 27, 13, 45, 10, tzinfo=UTC)
aware_times = st.datetimes(min_value=datetime(2001, 1, 2), max_value=datetime(2998, 12, 30), timezones=st.just(UTC))
periods = st.sampled_from(EpochPeriod)


def test_daily_identity() -> None:
    assert current_identity("server.example", NOW) == "server.example|2026-11-27"


def test_hourly_identity() -> None:
    assert current_identity("server.example", NOW, EpochPeriod.HOUR) == "server.example|2026-11-27T13"


def test_epochs_are_utc() -> None:
    # 23:30 at UTC-2 is already the next day (and hour 01) in UTC.
    evening = datetime(2026, 11, 27, 23, 30, tzinfo=timezone(timedelta(hours=-2)))
    assert current_identity("h", evening) == "h|2026-11-28"
    assert current_identity("h", evening, EpochPeriod.HOUR) == "h|2026-11-28T01"


def test_server_holds_current_and_adjacent_days() -> None:
    assert identities_around("h", NOW) == ["h|2026-11-26", "h|2026-11-27", "h|2026-11-28"]
    assert identities_around("h", NOW, before=0, after=0) == ["h|2026-11-27"]


def test_adjacent_epochs_cross_month_year_and_leap_day() -> None:
    new_year = datetime(2027, 1, 1, 0, 0, tzinfo=UTC)
    assert identities_around("h", new_year) == ["h|2026-12-31", "h|2027-01-01", "h|2027-01-02"]
    leap = datetime(2028, 2, 29, 23, 59, tzinfo=UTC)
    assert identities_around("h", leap, before=2, after=1) == [
        "h|2028-02-27",
        "h|2028-02-28",
        "h|2028-02-29",
        "h|2028-03-01",
    ]
    hours = identities_around("h", new_year, period=EpochPeriod.HOUR)
    assert hours == ["h|2026-12-31T23", "h|2027-01-01T00", "h|2027-01-01T01"]


def test_acceptance_span() -> None:
    assert acceptance_span() == timedelta(days=3)
    assert acceptance_span(before=1, after=0, period=EpochPeriod.HOUR) == timedelta(hours=2)
    assert acceptance_span(before=0, after=0) == EpochPeriod.DAY.length


@given(when=aware_times, period=periods, before=st.integers(0, 3), after=st.integers(0, 3))
def test_an_identity_is_held_for_exactly_the_acceptance_span(
    when: datetime, period: EpochPeriod, before: int, after: int
) -> None:
    """Walk the server's clock epoch by epoch: it holds one given identity for acceptance_span in all."""
    identity = current_identity("h", when, period)
    step = period.length
    first = when - (after + 2) * step
    held = [
        identity in identities_around("h", first + k * step, before, after, period) for k in range(before + after + 5)
    ]
    assert sum(held) * step == acceptance_span(before, after, period)
    held_at = [k for k, is_held in enumerate(held) if is_held]
    assert held_at == list(range(held_at[0], held_at[0] + len(held_at))), "held epochs must be contiguous"


@given(when=aware_times, period=periods)
def test_parse_round_trips(when: datetime, period: EpochPeriod) -> None:
    identity = epoch_identity("server.example", when, period)
    parsed = parse_identity(str(identity))
    assert parsed == identity
    assert parsed.start <= when < parsed.end


def test_parse_splits_at_the_last_separator() -> None:
    parsed = parse_identity("host.example|2026-11-27T05")
    assert parsed == EpochIdentity("host.example", EpochPeriod.HOUR, datetime(2026, 11, 27, 5, tzinfo=UTC))
    assert parsed.end == datetime(2026, 11, 27, 6, tzinfo=UTC)


@pytest.mark.parametrize(
    "identity",
    [
        "host.example",
        "host.example|",
        "|2026-11-27",
        "a|b|2026-11-27",
        "host|2026-11-27 ",
        "host|2026-11-27T5",
        "host|2026-1-27",
        "host|26-11-27",
        "host|2026-11-27T13:00",
        "host|2026-13-01",
        "host|2026-02-30",
        "host|2026-11-27T24",
        "host|٢٠٢٦-١١-٢٧",
        " host|2026-11-27",
        "ho\nst|2026-11-27",
    ],
)
def test_parse_rejects(identity: str) -> None:
    with pytest.raises(EpochError):
        parse_identity(identity)


@pytest.mark.parametrize("host", ["", "a|b", "tab\there", " padded"])
def test_bad_hosts(host: str) -> None:
    with pytest.raises(EpochError, match="epoch-bound host"):
        current_identity(host, NOW)


def test_naive_times_are_refused() -> None:
    with pytest.raises(EpochError, match="timezone-aware"):
        current_identity("h", datetime(2026, 11, 27, 12, 0))


def test_negative_neighbours_are_refused() -> None:
    with pytest.raises(EpochError, match="zero or more"):
        identities_around("h", NOW, before=-1)
    with pytest.raises(EpochError, match="zero or more"):
        acceptance_span(after=-1)


def test_epoch_identity_needs_an_epoch_start() -> None:
    with pytest.raises(EpochError, match="not the start of a day"):
        EpochIdentity("h", EpochPeriod.DAY, datetime(2026, 11, 27, 1, tzinfo=UTC))
    same_instant = EpochIdentity("h", EpochPeriod.HOUR, datetime(2026, 11, 27, 14, tzinfo=timezone(timedelta(hours=1))))
    assert str(same_instant) == "h|2026-11-27T13"

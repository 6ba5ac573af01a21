"""Epoch-bound identities end to end: extraction, the server's choice of key, and a handshake."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ibepsk import HandshakeSettings, IbeKeyring
from ibepsk.client import ClientConfig
from ibepsk.epochs import EpochPeriod, identities_around
from ibepsk.ibe import Encapsulator, IbeDecapsulationError
from ibepsk.keys import TAMasterKey, read_key_file

from test_cli_ta import ibepsk
from tls_support import exchange, running_server

NOON = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def keyring(ta: TAMasterKey, clock: Clock) -> IbeKeyring:
    keys = [ta.extract(identity) for identity in identities_around("gw.example", NOON)]
    return IbeKeyring(keys, clock=clock)


def test_one_pairing_mid_epoch_two_near_a_boundary(ta: TAMasterKey) -> None:
    clock = Clock(NOON)
    ring = keyring(ta, clock)
    assert ring.candidates("gw.example") == ["gw.example|2026-11-27"]
    clock.now = NOON.replace(hour=0, minute=3)
    assert ring.candidates("gw.example") == ["gw.example|2026-11-27", "gw.example|2026-11-26"]
    clock.now = NOON.replace(hour=23, minute=55)
    assert ring.candidates("gw.example") == ["gw.example|2026-11-27", "gw.example|2026-11-28"]


def test_a_slow_client_clock_just_after_midnight(ta: TAMasterKey) -> None:
    clock = Clock(datetime(2026, 11, 28, 0, 2, tzinfo=UTC))
    ring = keyring(ta, clock)  # holds 26th, 27th, 28th
    ciphertext = Encapsulator("gw.example|2026-11-27", ta.public.public_key).encapsulate()
    identity, psk = ring.open("gw.example", ciphertext.ciphertext)
    assert identity == "gw.example|2026-11-27" and bytes(psk) == ciphertext.psk
    assert ring.decapsulations == 2


def test_an_old_epoch_no_longer_opens(ta: TAMasterKey) -> None:
    clock = Clock(NOON + timedelta(days=2))  # the 29th: the 27th's key is not even tried
    ring = keyring(ta, clock)
    ciphertext = Encapsulator("gw.example|2026-11-27", ta.public.public_key).encapsulate().ciphertext
    with pytest.raises(IbeDecapsulationError):
        ring.open("gw.example", ciphertext)
    assert ring.decapsulations == 0


def test_epoch_bound_handshake(ta: TAMasterKey) -> None:
    now = datetime.now(UTC)
    settings = HandshakeSettings()
    settings.ibe_keyring = IbeKeyring(ta.extract(i) for i in identities_around("localhost", now))
    client = HandshakeSettings()
    client.ibe_public_params, client.ibe_epoch = ta.public, EpochPeriod.DAY
    with running_server(settings) as (server, observed):
        result = exchange(server, ClientConfig(client, server_name="localhost"))
    expected = f"localhost|{now:%Y-%m-%d}"
    assert result.ibe_identity == expected and observed.connections[0]["identity"] == expected


def test_ta_extract_with_epoch(tmp_path: Path) -> None:
    assert ibepsk("ta", "init", str(tmp_path / "ta")).returncode == 0
    out = tmp_path / "gw.key"
    result = ibepsk(
        "ta", "extract", "--master", str(tmp_path / "ta"), "gw.example", "--epoch", "hour",
        "--at", "2026-11-27T13:45:00+00:00", "-o", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert read_key_file(out).identity == "gw.example|2026-11-27T13"  # type: ignore[union-attr]
    bad = ibepsk("ta", "extract", "--master", str(tmp_path / "ta"), "gw", "--epoch", "day", "--at", "soon", "-o", "x")
    assert bad.returncode != 0 and "cannot bind 'gw' to an epoch" in bad.stderr

"""Stopping a TLSServer: connections in progress get a grace period, then are cut off."""

from __future__ import annotations

import threading

import pytest
from tlslite.errors import TLSAbruptCloseError

from ibepsk import HandshakeSettings, IbeKeyring, TLSConnection
from ibepsk.client import ClientConfig, connect
from ibepsk.keys import TAMasterKey
from ibepsk.server import TLSServer

from tls_support import TIMEOUT, running_server, wait_for


def _server_settings(ta: TAMasterKey) -> HandshakeSettings:
    settings = HandshakeSettings()
    settings.ibe_keyring = IbeKeyring([ta.extract("localhost")])
    return settings


def _client(server: TLSServer, ta: TAMasterKey) -> TLSConnection:
    settings = HandshakeSettings()
    settings.ibe_public_params = ta.public
    conn = connect(*server.address, ClientConfig(settings, server_name="localhost"))
    wait_for(lambda: server.in_progress == 1)
    return conn


def test_drain_waits_for_a_connection_that_finishes_in_time(ta: TAMasterKey) -> None:
    with running_server(_server_settings(ta)) as (server, _):
        conn = _client(server, ta)
        server.close()
        finisher = threading.Timer(0.3, conn.close)  # the client says goodbye during the grace period
        finisher.start()
        assert server.drain(TIMEOUT) == 0
        assert server.in_progress == 0
        finisher.join()


def test_drain_cuts_off_an_idle_connection_after_the_grace_period(ta: TAMasterKey) -> None:
    with running_server(_server_settings(ta)) as (server, _):
        conn = _client(server, ta)
        server.close()
        assert server.drain(0.2) == 1
        assert server.in_progress == 0, "the connection's thread noticed the cut and finished"
        with pytest.raises(TLSAbruptCloseError):  # cut off: no close_notify
            conn.read()

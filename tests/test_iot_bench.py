"""``ibepsk bench iot`` runs and reports (tiny sizes: this checks the harness, not speed)."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path
from typing import Any

from ibepsk import TLSConnection
from ibepsk.iot.bench import GATEWAY_NAME, MutualTlsGateway, make_testbed, measure_iot
from ibepsk.wire import ByteCounts

from test_cli_ta import ibepsk
from tls_support import TIMEOUT, wait_for


def test_bench_iot_command() -> None:
    result = ibepsk("bench", "iot", "--runs", "1", "--delay-ms", "1")
    assert result.returncode == 0, result.stderr
    for section in ("bytes on the wire per reading", "from TCP connect to the ack", "peak RSS (VmHWM)"):
        assert section in result.stdout


def test_bench_iot_measures_every_connection_kind() -> None:
    result = measure_iot(delay_ms=1, runs=1)
    wire: list[ByteCounts] = [getattr(result.wire, f.name) for f in dataclasses.fields(result.wire)]
    assert all(counts.client_to_server > 0 and counts.server_to_client > 0 for counts in wire)
    # Without tickets, the IBE-PSK gateway sends no certificate chain; the mutual-TLS one does.
    assert result.wire.first_without_tickets.server_to_client < result.wire.mutual_tls_without_tickets.server_to_client
    # Tickets cost bytes from the gateway: the first IBE-PSK connection gets two (after the handshake and PHA).
    assert result.wire.first.server_to_client > result.wire.first_without_tickets.server_to_client
    times = result.times
    assert min(times.first, times.resumed, times.mutual_tls) >= 2 * 2 * times.delay_ms, "at least two round trips"
    assert result.rss.device > result.rss.imports > result.rss.python > 0


def test_mutual_tls_baseline_counts_every_way_a_connection_ends_badly(tmp_path: Path) -> None:
    testbed = make_testbed(tmp_path)
    gateway = MutualTlsGateway(testbed)
    try:
        _mutual_tls_client(gateway).close()
        wait_for(lambda: gateway.stats.refused == 1)  # no client certificate
        conn = _mutual_tls_client(gateway, testbed.device.tlslite_chain(), testbed.device.tlslite_key())
        conn.write(b'{"seq": 1, "val')  # half a reading, then the device is gone without close_notify
        conn.sock.close()
        wait_for(lambda: gateway.stats.dropped == 1)
        assert gateway.stats.errors == 0 and gateway.stats.stored == 0
    finally:
        gateway.close()


def _mutual_tls_client(gateway: MutualTlsGateway, chain: Any = None, key: Any = None) -> TLSConnection:
    conn = TLSConnection(socket.create_connection(gateway.address, timeout=TIMEOUT))
    conn.handshakeClientCert(chain, key, serverName=GATEWAY_NAME)
    return conn

"""``ibepsk bench iot`` runs and reports (tiny sizes: this checks the harness, not speed)."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

from ibepsk.iot.bench import MutualTlsGateway, make_testbed, measure_iot
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


def test_mutual_tls_baseline_counts_a_device_that_drops_out(tmp_path: Path) -> None:
    gateway = MutualTlsGateway(make_testbed(tmp_path))
    try:
        with socket.create_connection(gateway.address, timeout=TIMEOUT) as sock:
            sock.sendall(b"\x16\x03\x01\x00\x09\x01\x00\x00\x05hello")  # a broken ClientHello, then gone
        wait_for(lambda: gateway.stats.dropped == 1)
    finally:
        gateway.close()

"""Load: 200 simulated devices (threads) against one gateway on 127.0.0.1, 5 readings each.

Each device takes a reading, delivers it on a connection of its own (the first
over IBE-PSK with 0-RTT and PHA, the others resuming with the ticket), and
repeats. Every reading must be stored exactly once, with no failed
connection on either side; connection latencies are printed (run with -s),
not asserted: performance lives in ``ibepsk bench iot``.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from pathlib import Path

from ibepsk.iot.device import Delivery, Device, RetryPolicy
from ibepsk.iot.store import ReadingStore
from ibepsk.keys import TAMasterKey

from iot_support import new_fleet, running_gateway
from tls_support import TIMEOUT

DEVICES = 200
READINGS_PER_DEVICE = 5
#: A connection may wait its turn on a busy 2-core machine; a device retries rather than lose a reading.
LOAD_RETRY = RetryPolicy(initial_delay=0.5, max_delay=5.0, max_attempts=10)
#: Every device thread must be done by then.
DEADLINE_SECONDS = 600


class DeviceRun:
    """One simulated device: READINGS_PER_DEVICE readings, each delivered as soon as it is taken."""

    def __init__(self, device: Device, start: threading.Barrier) -> None:
        self.device, self._start = device, start
        self.deliveries: list[Delivery] = []
        self.error: BaseException | None = None

    def __call__(self) -> None:
        try:
            self._start.wait(TIMEOUT)
            for number in range(READINGS_PER_DEVICE):
                self.device.record({"reading": number})
                self.deliveries += self.device.deliver_all()
        except BaseException as exc:
            self.error = exc
            raise


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def test_200_devices_5_readings_each(tmp_path: Path, ta: TAMasterKey) -> None:
    fleet = new_fleet(tmp_path, ta)
    config = fleet.gateway_config(timeout=60.0)
    with running_gateway(config) as gateway:
        start = threading.Barrier(DEVICES + 1)
        runs = [
            DeviceRun(fleet.device(f"sensor-{n:03}", gateway.address, retry=LOAD_RETRY, timeout=60.0), start)
            for n in range(DEVICES)
        ]
        threads = [threading.Thread(target=run, name=f"device-{n}") for n, run in enumerate(runs)]
        for thread in threads:
            thread.start()
        start.wait(TIMEOUT)
        started = time.perf_counter()
        for thread in threads:
            thread.join(max(0.0, DEADLINE_SECONDS - (time.perf_counter() - started)))
        elapsed = time.perf_counter() - started
        stats, server_stats = gateway.stats, gateway.server.stats

    assert not any(thread.is_alive() for thread in threads), f"devices still running after {DEADLINE_SECONDS} s"
    assert [run.error for run in runs if run.error] == []
    with ReadingStore(config.database) as store:
        keys = Counter((reading.device, reading.seq) for reading in store.readings())
    expected = {(f"sensor-{n:03}", seq) for n in range(DEVICES) for seq in range(1, READINGS_PER_DEVICE + 1)}
    assert set(keys) == expected and set(keys.values()) == {1}, "every reading stored exactly once"
    assert all(len(run.device.queue) == 0 for run in runs)
    assert (server_stats.failures, stats.refused, stats.dropped, stats.errors) == (0, 0, 0, 0)
    assert stats.authenticated == Counter(
        {"post-handshake": DEVICES, "resumption": DEVICES * (READINGS_PER_DEVICE - 1)}
    )

    deliveries = [delivery for run in runs for delivery in run.deliveries]
    retries = sum(run.device.failed_attempts for run in runs)
    print(f"\n{DEVICES} devices x {READINGS_PER_DEVICE} readings: {len(deliveries)} connections in {elapsed:.1f} s "
          f"({len(deliveries) / elapsed:.0f}/s), {retries} retried, {stats.summary()}")  # fmt: skip
    for label, selected in (
        ("all connections", deliveries),
        ("IBE-PSK + 0-RTT + PHA", [d for d in deliveries if d.signed]),
        ("resumed with the ticket", [d for d in deliveries if not d.signed]),
    ):
        latencies = [d.acknowledged_ms for d in selected]
        print(
            f"{label:24} n={len(latencies):4}  connect-to-ack p50 {percentile(latencies, 0.5):7.1f} ms  "
            f"p99 {percentile(latencies, 0.99):7.1f} ms  mean {statistics.fmean(latencies):7.1f} ms"
        )

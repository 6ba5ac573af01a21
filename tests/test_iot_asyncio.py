"""The IoT gateway on one event loop: devices that trickle or stay silent hold no thread, and others get served."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from test_serve_asyncio import trickling

from ibepsk.keys import TAMasterKey

from iot_support import Fleet, new_fleet, running_gateway

TRICKLERS = 100


@pytest.fixture()
def fleet(tmp_path: Path, ta: TAMasterKey) -> Fleet:
    return new_fleet(tmp_path, ta)


def test_a_device_delivers_while_100_others_trickle_and_no_thread_serves_them(fleet: Fleet) -> None:
    with running_gateway(fleet.gateway_config()) as gateway:
        threads = threading.active_count()
        with trickling(gateway.address[1], TRICKLERS):
            device = fleet.device("sensor-1", gateway.address)
            device.record({"t": 21.5}, at=1000.0)
            (delivery,) = device.deliver_all()
            serving_threads = threading.active_count() - threads - 1  # the trickling thread is the test's
    assert delivery.acknowledged == 1
    assert serving_threads <= 0, f"{serving_threads} threads for {TRICKLERS + 1} connections"

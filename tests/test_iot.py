"""The IoT device and gateway (ibepsk/iot) over real sockets on 127.0.0.1."""

from __future__ import annotations

import datetime
import socket
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from ibepsk import HandshakeMode, HandshakeSettings
from ibepsk.client import ClientConfig, connect, open_tcp, read_until_closed
from ibepsk.epochs import EpochPeriod, identities_around
from ibepsk.iot.device import DeliveryError, GatewayUnreachableError, RetryPolicy
from ibepsk.iot.gateway import GatewayConfig
from ibepsk.iot.protocol import MAX_LINE_BYTES, GatewayError, Reading, decode_gateway_message
from ibepsk.iot.queue import ReadingQueue
from ibepsk.iot.store import ReadingStore, StoredReading
from ibepsk.keys import TAMasterKey
from ibepsk.netem import FirstFlightRecorder
from ibepsk.tls import KeySigner, TLSConnection
from ibepsk.tls.early_data import EarlyDataStatus

from iot_support import GATEWAY_NAME, Fleet, new_fleet, running_gateway, unused_port
from pki import issue, make_ca
from tls_support import TIMEOUT, wait_for


@pytest.fixture()
def fleet(tmp_path: Path, ta: TAMasterKey) -> Fleet:
    return new_fleet(tmp_path, ta)


def stored(config: GatewayConfig) -> list[StoredReading]:
    """What the gateway's database holds, read afresh from disk."""
    with ReadingStore(config.database) as store:
        return store.readings()


def stored_keys(config: GatewayConfig) -> list[tuple[str, int]]:
    return [(reading.device, reading.seq) for reading in stored(config)]


# --- delivery ------------------------------------------------------------------------------------


def test_first_reading_rides_in_0rtt_and_is_stored_after_pha(fleet: Fleet) -> None:
    config = fleet.gateway_config()
    with running_gateway(config) as gateway:
        device = fleet.device("sensor-1", gateway.address)
        device.record({"t": 21.5}, at=1000.0)
        device.record({"t": 21.75}, at=1060.0)
        (delivery,) = device.deliver_all()
        stats = gateway.stats
    assert delivery.mode == HandshakeMode.IBE_PSK
    assert delivery.early_data == EarlyDataStatus.ACCEPTED
    assert delivery.signed and delivery.acknowledged == 2
    assert len(device.queue) == 0
    first, second = stored(config)
    assert (first.device, first.seq, first.taken_at, first.value, first.early) == (
        "sensor-1",
        1,
        1000.0,
        {"t": 21.5},
        True,
    )
    assert (second.seq, second.value, second.early) == (2, {"t": 21.75}, False)
    assert first.queue == second.queue == device.queue.queue_id
    assert stats.authenticated == Counter({"post-handshake": 1})
    assert (stats.stored, stats.stored_early, stats.duplicates, stats.refused, stats.errors) == (2, 1, 0, 0, 0)


def test_the_ticket_restores_the_device_identity(fleet: Fleet) -> None:
    config = fleet.gateway_config()
    with running_gateway(config) as gateway:
        device = fleet.device("sensor-1", gateway.address)
        deliveries = []
        for value in range(3):
            device.record(value)
            deliveries += device.deliver_all()
        authenticated = gateway.stats.authenticated
    first, *resumed = deliveries
    assert first.mode == HandshakeMode.IBE_PSK and first.signed
    for delivery in resumed:
        assert delivery.mode == HandshakeMode.RESUMPTION
        assert not delivery.signed, "the gateway knew the device from its ticket"
        assert delivery.early_data == EarlyDataStatus.NOT_OFFERED, "ibepsk sends 0-RTT data only under an IBE-PSK"
    assert authenticated == Counter({"post-handshake": 1, "resumption": 2})
    assert stored_keys(config) == [("sensor-1", 1), ("sensor-1", 2), ("sensor-1", 3)]


def test_a_ticket_the_gateway_cannot_read_falls_back_to_ibe_psk(fleet: Fleet) -> None:
    # A restarted gateway has new ticket keys: the same connection goes on with the IBE-PSK and PHA.
    config, port = fleet.gateway_config(), unused_port()
    device = fleet.device("sensor-1", ("127.0.0.1", port))
    for _ in range(2):
        with running_gateway(config, port):
            device.record("reading")
            (delivery,) = device.deliver_all()
            assert device.has_ticket
    assert delivery.mode == HandshakeMode.IBE_PSK and delivery.signed
    assert stored_keys(config) == [("sensor-1", 1), ("sensor-1", 2)]


def test_an_epoch_bound_gateway_identity(fleet: Fleet) -> None:
    # The gateway holds one key per day; the device needs nothing but the TA's public parameters.
    now = datetime.datetime.now(datetime.UTC)
    keys = [fleet.ta.extract(identity) for identity in identities_around(GATEWAY_NAME, now)]
    config = fleet.gateway_config(identity_keys=keys)
    with running_gateway(config) as gateway:
        device = fleet.device("sensor-1", gateway.address, epoch=EpochPeriod.DAY)
        device.record(1)
        (delivery,) = device.deliver_all()
    assert delivery.mode == HandshakeMode.IBE_PSK and delivery.early_data == EarlyDataStatus.ACCEPTED
    assert stored_keys(config) == [("sensor-1", 1)]


# --- never losing a reading ------------------------------------------------------------------


def test_the_device_waits_out_a_gateway_outage(fleet: Fleet) -> None:
    config, port = fleet.gateway_config(), unused_port()
    device = fleet.device("sensor-1", ("127.0.0.1", port))
    for value in range(3):
        device.record(value)
    delivering = threading.Thread(target=device.deliver_all)
    delivering.start()
    wait_for(lambda: device.failed_attempts >= 3)
    device.record("taken during the outage")
    assert len(device.queue) == 4
    with running_gateway(config, port):
        delivering.join(TIMEOUT)
        assert not delivering.is_alive()
    assert len(device.queue) == 0
    assert stored_keys(config) == [("sensor-1", seq) for seq in (1, 2, 3, 4)]


def test_readings_survive_giving_up(fleet: Fleet) -> None:
    device = fleet.device("sensor-1", ("127.0.0.1", unused_port()), retry=RetryPolicy(0.01, 0.02, max_attempts=3))
    device.record({"t": 1})
    with pytest.raises(GatewayUnreachableError, match="3 connections failed, the last: Connection refused"):
        device.deliver_all()
    device.queue.close()
    with ReadingQueue(device.queue.path) as reopened:
        assert [(r.seq, r.value) for r in reopened.pending()] == [(1, {"t": 1})]


def test_a_resend_after_a_lost_ack_is_stored_once(fleet: Fleet) -> None:
    config = fleet.gateway_config()
    with running_gateway(config) as gateway:
        device = fleet.device("sensor-1", gateway.address)
        readings = [device.record(value) for value in ("a", "b", "c")]
        # The gateway stored the first reading on a connection that broke before its ack arrived.
        first = readings[0]
        gateway.store.add("sensor-1", [Reading("sensor-1", device.queue.queue_id, first.seq, first.at, first.value)])
        (delivery,) = device.deliver_all()
        duplicates, newly_stored = gateway.stats.duplicates, gateway.stats.stored
    assert delivery.acknowledged == 3 and len(device.queue) == 0, "duplicates are acknowledged too"
    assert (duplicates, newly_stored) == (1, 2)
    assert [(r.seq, r.value) for r in stored(config)] == [(1, "a"), (2, "b"), (3, "c")]


# --- 0-RTT replays ---------------------------------------------------------------------------------


def replay(address: tuple[str, int], flight: bytes) -> None:
    """Send a recorded first flight as an attacker would; the attacker cannot go on from there."""
    with socket.create_connection(address, timeout=TIMEOUT) as sock:
        sock.sendall(flight)
        assert sock.recv(1), "the gateway answered the ClientHello"


def test_a_replayed_first_flight_stores_nothing(fleet: Fleet) -> None:
    recorders: list[FirstFlightRecorder] = []

    def recording(address: tuple[str, int], timeout: float) -> FirstFlightRecorder:
        recorders.append(FirstFlightRecorder(open_tcp(address, timeout)))
        return recorders[-1]

    config = fleet.gateway_config()
    with running_gateway(config) as gateway:
        device = fleet.device("sensor-1", gateway.address, open_socket=recording)
        device.record({"t": 1})
        device.deliver_all()
        flight = bytes(recorders[0].first_flight)
        replay(gateway.address, flight)
        wait_for(lambda: gateway.server.stats.failures == 1)
        assert gateway.server.stats.early_data["replay"] == 1, "the strike register kept the early data out"
    # A restarted gateway's in-memory register has forgotten the flight: TLS takes the early data, but whoever
    # replays it cannot finish the handshake, so the gateway never authenticates anyone or reads a reading.
    with running_gateway(config) as restarted:
        replay(restarted.address, flight)
        wait_for(lambda: restarted.server.stats.failures == 1)
        assert restarted.server.stats.early_data["accepted"] == 1
        assert restarted.stats.authenticated == Counter() and restarted.stats.stored == 0
    assert [(r.seq, r.early) for r in stored(config)] == [(1, True)]


# --- who may store readings ----------------------------------------------------------------------


def early_reading(device: str = "sensor-1", seq: int = 1) -> bytes:
    return Reading(device, "0123456789abcdef", seq, time.time(), {"t": 20}).encode()


def client_settings(fleet: Fleet, signer: KeySigner | None = None) -> HandshakeSettings:
    settings = HandshakeSettings()
    settings.ibe_public_params = fleet.ta.public
    settings.client_auth_signer = signer
    return settings


def refusal(conn: TLSConnection) -> str:
    """Everything the gateway said before closing, which must be one error line (and no ack)."""
    answer = read_until_closed(conn)
    conn.close()
    message = decode_gateway_message(answer.rstrip(b"\n"))
    assert isinstance(message, GatewayError), answer
    return message.message


def test_a_client_without_a_certificate_gets_no_ack(fleet: Fleet) -> None:
    config = fleet.gateway_config()
    with running_gateway(config) as gateway:
        client = ClientConfig(client_settings(fleet), server_name=GATEWAY_NAME)
        conn = connect(*gateway.address, client, early_data=early_reading())
        conn.write(early_reading(seq=2))
        assert conn.early_data_status == EarlyDataStatus.ACCEPTED, "TLS took the 0-RTT reading..."
        assert "offer post_handshake_auth" in refusal(conn), "...the gateway did not"
        wait_for(lambda: gateway.stats.refused == 1)
    assert stored(config) == []


def test_a_certificate_from_another_ca_gets_no_ack(fleet: Fleet) -> None:
    config = fleet.gateway_config()
    stranger = issue(make_ca("another device CA"), "sensor-1", server=False)
    with running_gateway(config) as gateway:
        device = fleet.device("sensor-1", gateway.address, certificate=stranger)
        device.record({"t": 1})
        with pytest.raises(DeliveryError, match="peer sent alert unknown_ca"):
            device.deliver()
        wait_for(lambda: gateway.stats.refused == 1)
    assert len(device.queue) == 1
    assert stored(config) == []


def test_a_device_cannot_send_readings_in_another_name(fleet: Fleet) -> None:
    config = fleet.gateway_config()
    sensor = fleet.certificate("sensor-1")
    with running_gateway(config) as gateway:
        settings = client_settings(fleet, KeySigner([sensor.certificate], sensor.key))
        lines = early_reading(seq=1) + early_reading(device="sensor-2", seq=2)
        conn = connect(*gateway.address, ClientConfig(settings, server_name=GATEWAY_NAME), early_data=lines)
        assert "a reading from 'sensor-2' on a connection authenticated as 'sensor-1'" in refusal(conn)
        wait_for(lambda: gateway.stats.refused == 1)
    assert stored(config) == [], "the whole batch is refused"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        pytest.param(b"not json\n", "bad reading: not a JSON line", id="not-json"),
        pytest.param(b'{"device":"sensor-1","seq":1}\n', "bad reading: a reading has exactly", id="fields"),
        pytest.param(b'{"device":"sensor-1","queue":"q","seq":0,"at":1,"value":1}\n', "seq", id="seq-zero"),
        pytest.param(b'{"device":"sensor-1","queue":"q","seq":1,"at":NaN,"value":1}\n', "NaN", id="nan"),
        pytest.param(b"x" * (MAX_LINE_BYTES + 1), "longer than", id="endless-line"),
    ],
)
def test_bad_lines_are_refused_and_the_gateway_goes_on(fleet: Fleet, line: bytes, reason: str) -> None:
    config = fleet.gateway_config()
    sensor = fleet.certificate("sensor-1")
    with running_gateway(config) as gateway:
        settings = client_settings(fleet, KeySigner([sensor.certificate], sensor.key))
        conn = connect(*gateway.address, ClientConfig(settings, server_name=GATEWAY_NAME))
        conn.write(line)
        assert reason in refusal(conn)
        device = fleet.device("sensor-2", gateway.address)
        device.record("after the bad one")
        device.deliver_all()
        wait_for(lambda: gateway.stats.refused == 1)
        assert gateway.stats.errors == 0
    assert stored_keys(config) == [("sensor-2", 1)]

"""``ibepsk bench iot``: what one reading costs a device, over IBE-PSK and over classic mutual TLS.

- Bytes on the wire per reading: one reading and its acknowledgement per
  connection (an IoT device wakes, sends, sleeps), TLS records both ways as the
  device's socket sees them, session tickets included. IBE-PSK: the first
  connection (0-RTT reading, post-handshake authentication) and a resumed one.
  Mutual TLS: a server certificate chain (P-256 leaf and intermediate, the
  root being the device's trust anchor), the device's certificate requested
  in the handshake, one ticket, the same readings and acks.
- Time to an acknowledged reading: from TCP connect to the gateway's ack,
  through a proxy adding a one-way delay; medians.
- Peak RSS of a device process (``python -m ibepsk.iot device``, key in a
  file) delivering three readings, against Python importing the device code,
  and bare Python.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..bench import machine_line
from ..client import open_tcp
from ..keys import TAMasterKey, write_key_file
from ..netem import DelayProxy
from ..pki import Issued, issue, make_ca
from ..tls import HandshakeSettings, KeySigner, TLSConnection, TrustAnchors
from ..tls.certs import CertificateVerificationError, ServerCertificateChecker
from ..tls.signer import certificates_from_tlslite
from ..wire import ByteCounts, CountingSocket
from .device import Device, DeviceConfig, SocketOpener
from .gateway import DeviceRefusedError, Gateway, GatewayConfig, GatewayStats, counted_outcome, exchange_readings
from .protocol import JsonValue, LineBuffer, Reading, decode_gateway_message, device_name
from .provisioning import write_device_file
from .queue import ReadingQueue
from .store import ReadingStore

GATEWAY_NAME = "gateway.example"
DEVICE_NAME = "sensor-0001"
#: Readings the measured device process delivers: one over IBE-PSK, the others resumed.
RSS_READINGS = 3
_TIMEOUT = 30.0
_VALUE: JsonValue = {"temperature_c": 21.5}


@dataclass(frozen=True)
class WireBytes:
    """Bytes of one connection carrying one reading and its ack, by kind of connection."""

    first: ByteCounts
    resumed: ByteCounts
    first_without_tickets: ByteCounts
    mutual_tls: ByteCounts
    mutual_tls_without_tickets: ByteCounts


@dataclass(frozen=True)
class AckTimes:
    """Median ms from TCP connect to the ack, with ``delay_ms`` added each way."""

    delay_ms: float
    first: float
    resumed: float
    mutual_tls: float


@dataclass(frozen=True)
class PeakRss:
    """Peak resident set sizes in KiB (VmHWM)."""

    device: int
    imports: int
    python: int


@dataclass(frozen=True)
class IotBenchResult:
    wire: WireBytes
    times: AckTimes
    rss: PeakRss


@dataclass
class Testbed:
    """A TA, a device CA and its device, and a server certificate chain for the mutual-TLS gateway."""

    directory: Path
    ta: TAMasterKey
    device_ca: Issued
    device: Issued
    server_root: Issued
    server_chain: tuple[Issued, Issued]
    queues: Iterator[int] = field(default_factory=itertools.count)

    @property
    def signer(self) -> KeySigner:
        return KeySigner([self.device.certificate], self.device.key)

    @property
    def device_anchors(self) -> TrustAnchors:
        return TrustAnchors([self.device_ca.certificate])

    def device_config(self, address: tuple[str, int]) -> DeviceConfig:
        return DeviceConfig(address, GATEWAY_NAME, self.ta.public, timeout=_TIMEOUT)

    def new_queue(self) -> ReadingQueue:
        return ReadingQueue(self.directory / f"device-{next(self.queues)}.queue")


def make_testbed(directory: Path) -> Testbed:
    device_ca = make_ca("ibepsk bench device CA")
    root = make_ca("ibepsk bench root CA")
    intermediate = make_ca("ibepsk bench issuing CA", issuer=root)
    return Testbed(
        directory,
        TAMasterKey.generate(),
        device_ca,
        issue(device_ca, DEVICE_NAME, server=False),
        root,
        (issue(intermediate, GATEWAY_NAME), intermediate),
    )


@contextlib.contextmanager
def _ibe_gateway(testbed: Testbed, tickets: bool = True) -> Iterator[Gateway]:
    config = GatewayConfig(
        [testbed.ta.extract(GATEWAY_NAME)],
        testbed.device_anchors,
        testbed.directory / f"ibe-psk-{next(testbed.queues)}.sqlite",
        tickets=tickets,
    )
    with Gateway(config).start() as gateway:
        yield gateway


class MutualTlsGateway:
    """The baseline: the same readings and acks after a certificate handshake with in-handshake client auth."""

    def __init__(self, testbed: Testbed, tickets: bool = True) -> None:
        leaf, intermediate = testbed.server_chain
        self._chain, self._key = leaf.tlslite_chain(intermediate), leaf.tlslite_key()
        self._anchors = testbed.device_anchors
        self._settings = HandshakeSettings()
        if tickets:
            self._settings.ticketKeys = [bytearray(os.urandom(32))]
            self._settings.ticket_count = 1
        self.store = ReadingStore(testbed.directory / f"mutual-tls-{next(testbed.queues)}.sqlite")
        self.stats = GatewayStats()
        self._listener = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._listener.getsockname()[:2]
        return host, port

    def _accept(self) -> None:
        with contextlib.suppress(OSError):  # closed
            while True:
                sock, _ = self._listener.accept()
                threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        sock.settimeout(_TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = TLSConnection(sock)
        try:
            with counted_outcome(self.stats):
                conn.handshakeServer(settings=self._settings, certChain=self._chain, privateKey=self._key, reqCert=True)
                exchange_readings(conn, self._device(conn), self.store, self.stats)
        finally:
            with contextlib.suppress(Exception):
                conn.close()

    def _device(self, conn: TLSConnection) -> str:
        """The device the handshake's client certificate names, once the device CA vouches for it."""
        if conn.session.clientCertChain is None:
            raise DeviceRefusedError("no client certificate")
        try:
            path = self._anchors.verify_client(certificates_from_tlslite(conn.session.clientCertChain))
            return device_name(path[0])
        except (CertificateVerificationError, ValueError) as exc:
            raise DeviceRefusedError(str(exc)) from exc

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self.store.close()


def mutual_tls_reading(testbed: Testbed, address: tuple[str, int], open_socket: SocketOpener = open_tcp) -> float:
    """One reading over mutual TLS, from TCP connect to its ack, in ms."""
    started = time.perf_counter()
    conn = TLSConnection(open_socket(address, _TIMEOUT))
    try:
        checker = ServerCertificateChecker(TrustAnchors([testbed.server_root.certificate]), GATEWAY_NAME)
        conn.handshakeClientCert(
            certChain=testbed.device.tlslite_chain(),
            privateKey=testbed.device.tlslite_key(),
            settings=HandshakeSettings(),
            checker=checker,
            serverName=GATEWAY_NAME,
        )
        conn.write(Reading(DEVICE_NAME, "mutual-tls", 1, time.time(), _VALUE).encode())
        lines, received = LineBuffer(), list[bytes]()
        while not received:
            data = conn.read()
            if not data:
                raise ConnectionError("the mutual-TLS gateway closed without acknowledging")
            received = lines.feed(data)
        decode_gateway_message(received[0])
        return (time.perf_counter() - started) * 1000
    finally:
        conn.close()


def _counting(sockets: list[CountingSocket]) -> SocketOpener:
    def open_counting(address: tuple[str, int], timeout: float) -> CountingSocket:
        sockets.append(CountingSocket(open_tcp(address, timeout)))
        return sockets[-1]

    return open_counting


def _counts(sock: CountingSocket) -> ByteCounts:
    return ByteCounts(sock.counts.client_to_server, sock.counts.server_to_client)


def _ibe_psk_bytes(testbed: Testbed, tickets: bool, readings: int) -> list[ByteCounts]:
    """Bytes of each of ``readings`` connections of one device, one reading each."""
    sockets: list[CountingSocket] = []
    with _ibe_gateway(testbed, tickets) as gateway:
        config = testbed.device_config(gateway.address)
        device = Device(config, testbed.signer, testbed.new_queue(), open_socket=_counting(sockets))
        for _ in range(readings):
            device.record(_VALUE)
            device.deliver_all()
        device.queue.close()
    return [_counts(sock) for sock in sockets]


def _mutual_tls_bytes(testbed: Testbed, tickets: bool) -> ByteCounts:
    sockets: list[CountingSocket] = []
    mutual = MutualTlsGateway(testbed, tickets)
    try:
        mutual_tls_reading(testbed, mutual.address, _counting(sockets))
    finally:
        mutual.close()
    return _counts(sockets[0])


def measure_bytes(testbed: Testbed) -> WireBytes:
    first, resumed = _ibe_psk_bytes(testbed, tickets=True, readings=2)
    (first_without_tickets,) = _ibe_psk_bytes(testbed, tickets=False, readings=1)
    return WireBytes(
        first,
        resumed,
        first_without_tickets,
        _mutual_tls_bytes(testbed, tickets=True),
        _mutual_tls_bytes(testbed, tickets=False),
    )


def measure_ack_times(testbed: Testbed, delay_ms: float, runs: int) -> AckTimes:
    """Medians over ``runs`` of each: IBE-PSK first connection, resumed, mutual TLS (tickets on)."""
    samples: tuple[list[float], list[float], list[float]] = ([], [], [])
    mutual = MutualTlsGateway(testbed)
    try:
        with (
            _ibe_gateway(testbed) as gateway,
            DelayProxy(gateway.address, delay_ms / 1000) as ibe_proxy,
            DelayProxy(mutual.address, delay_ms / 1000) as mutual_proxy,
        ):
            for _ in range(runs):
                device = Device(testbed.device_config(ibe_proxy.address), testbed.signer, testbed.new_queue())
                for sample in samples[:2]:  # without a ticket, then with the one just received
                    device.record(_VALUE)
                    (delivery,) = device.deliver_all()
                    sample.append(delivery.acknowledged_ms)
                device.queue.close()
                samples[2].append(mutual_tls_reading(testbed, mutual_proxy.address))
    finally:
        mutual.close()
    first, resumed, mutual_tls = (statistics.median(sample) for sample in samples)
    return AckTimes(delay_ms, first, resumed, mutual_tls)


#: Runs ``{setup}`` in a fresh interpreter, then prints the process's peak RSS in KiB. VmHWM is per
#: process image (reset by exec), unlike ru_maxrss, which a child inherits from the parent that forked it.
_PEAK_RSS_PROBE = """import sys
{setup}
with open("/proc/self/status") as status:
    print(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
"""
_RUN_DEVICE = "from ibepsk.iot.apps import device_main\nif device_main(sys.argv[1:]):\n    sys.exit(1)"


def peak_rss_kb(setup: str, *args: str) -> int:
    """Peak RSS of a Python process that runs ``setup`` (with ``args`` as sys.argv[1:]), in KiB; Linux only."""
    command = [sys.executable, "-c", _PEAK_RSS_PROBE.format(setup=setup), *args]
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"the measured process failed: {result.stderr.strip()}")
    return int(result.stdout.split()[-1])


def measure_rss(testbed: Testbed) -> PeakRss:
    """A device process delivering RSS_READINGS readings, one importing the device code, bare Python."""
    public, config = testbed.directory / "public.pem", testbed.directory / "device.toml"
    write_key_file(public, testbed.ta.public)
    certificate, key = testbed.device.write(testbed.directory, DEVICE_NAME)
    with _ibe_gateway(testbed) as gateway:
        host, port = gateway.address
        write_device_file(
            config, gateway=f"{host}:{port}", gateway_name=GATEWAY_NAME, ta=public, certificate=certificate, key=key
        )
        device = peak_rss_kb(_RUN_DEVICE, "--config", str(config), "--readings", str(RSS_READINGS), "--interval", "0")
        if gateway.stats.stored != RSS_READINGS:
            raise RuntimeError(f"the device process delivered {gateway.stats.stored} readings, not {RSS_READINGS}")
    return PeakRss(device, peak_rss_kb("import ibepsk.iot.apps"), peak_rss_kb(""))


def measure_iot(delay_ms: float, runs: int) -> IotBenchResult:
    with tempfile.TemporaryDirectory(prefix="ibepsk-bench-iot-") as directory:
        testbed = make_testbed(Path(directory))
        return IotBenchResult(measure_bytes(testbed), measure_ack_times(testbed, delay_ms, runs), measure_rss(testbed))


def _print_wire(wire: WireBytes) -> None:
    print("\nbytes on the wire per reading (TLS records both ways)")
    print(f"{'connection':52} {'device->gw':>10} {'gw->device':>10} {'total':>7} {'/ mTLS':>7}")
    for name, counts, baseline in (
        ("IBE-PSK + 0-RTT reading + PHA, first, tickets", wire.first, wire.mutual_tls),
        ("IBE-PSK, resumed with the ticket", wire.resumed, wire.mutual_tls),
        ("mutual TLS, certificates in the handshake, ticket", wire.mutual_tls, wire.mutual_tls),
        ("IBE-PSK + 0-RTT reading + PHA, no tickets", wire.first_without_tickets, wire.mutual_tls_without_tickets),
        ("mutual TLS, no tickets", wire.mutual_tls_without_tickets, wire.mutual_tls_without_tickets),
    ):
        share = counts.total / baseline.total
        print(f"{name:52} {counts.client_to_server:10} {counts.server_to_client:10} {counts.total:7} {share:7.0%}")


def _print_times(times: AckTimes, runs: int) -> None:
    rtt = 2 * times.delay_ms
    print(f"\nfrom TCP connect to the ack, {times.delay_ms:g} ms each way (RTT {rtt:g} ms); median of {runs}")
    print(f"{'connection':52} {'ms':>8} {'RTTs':>6}")
    for name, ms in (
        ("IBE-PSK + 0-RTT reading + PHA, first", times.first),
        ("IBE-PSK, resumed with the ticket", times.resumed),
        ("mutual TLS, certificates in the handshake", times.mutual_tls),
    ):
        print(f"{name:52} {ms:8.1f} {ms / rtt if rtt else float('nan'):6.2f}")


def _print_rss(rss: PeakRss) -> None:
    print(f"\npeak RSS (VmHWM) of a device process delivering {RSS_READINGS} readings, key in a file")
    for name, kib in (
        ("device process (ibepsk.iot.apps.device_main)", rss.device),
        ("python importing ibepsk.iot.apps", rss.imports),
        ("bare python", rss.python),
    ):
        print(f"{name:52} {kib / 1024:8.1f} MiB")


def bench_iot(delay_ms: float, runs: int) -> IotBenchResult:
    result = measure_iot(delay_ms, runs)
    print(f"ibepsk bench iot — one reading and its ack per connection; {machine_line()}")
    _print_wire(result.wire)
    _print_times(result.times, runs)
    _print_rss(result.rss)
    return result

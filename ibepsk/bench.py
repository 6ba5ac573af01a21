"""Benchmarks behind ``ibepsk bench``.

Each figure is the median over several runs of the per-call median, printed
with a baseline measured in the same run, because this is a shared machine and
absolute times drift; ratios travel better.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from .client import ClientConfig, connect
from .ibe import Decapsulator, Encapsulator, encapsulate, get_backend
from .ibe.h3 import h3
from .ibe.hashes import h1
from .keys import TAMasterKey
from .netem import DelayProxy
from .server import ServerConfig, TLSServer, server_settings, www_application, www_early_data_handler
from .tls import HandshakeSettings


@dataclass(frozen=True)
class Measurement:
    name: str
    median_us: float
    target_us: float | None = None

    def verdict(self) -> str:
        if self.target_us is None:
            return ""
        return "met" if self.median_us <= self.target_us else "MISSED"


def median_us(call: Callable[[], object], iterations: int, runs: int) -> float:
    """Median over ``runs`` of the median single-call time, in microseconds."""
    run_medians = []
    for _ in range(runs):
        samples = []
        for _ in range(iterations):
            start = time.perf_counter_ns()
            call()
            samples.append(time.perf_counter_ns() - start)
        run_medians.append(statistics.median(samples) / 1000)
    return statistics.median(run_medians)


def machine_line() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def bench_ibe(backend_name: str | None, iterations: int, runs: int) -> list[Measurement]:
    backend = get_backend(backend_name)
    master = TAMasterKey.generate(backend)
    ppub = master.public.public_key
    identity_key = master.extract("bench.example", backend)
    encapsulator = Encapsulator("bench.example", ppub, backend)
    decapsulator = Decapsulator(identity_key.key, backend)
    ciphertext = encapsulator.encapsulate().ciphertext
    g1, g2 = backend.g1_generator(), backend.g2_generator()
    sigma, message = os.urandom(32), os.urandom(32)

    def measure(name: str, call: Callable[[], object], target_us: float | None = None) -> Measurement:
        return Measurement(name, median_us(call, iterations, runs), target_us)

    baseline = measure("pairing e(Q, P) [baseline]", lambda: backend.pairing(g2, g1))
    results = [
        baseline,
        measure("H1 (identity -> G2)", lambda: h1(backend, b"bench.example")),
        measure("H3 (MIRACL generator)", lambda: h3(sigma, message), 300),
        measure("encapsulate, cold", lambda: encapsulate("bench.example", ppub, backend=backend)),
        measure("encapsulate, cached per identity", encapsulator.encapsulate, 2000),
        measure("decapsulate", lambda: decapsulator.decapsulate(ciphertext), 1600),
    ]
    print(f"ibepsk bench ibe — backend {backend.name}; {machine_line()}")
    print(f"median of {runs} runs x {iterations} calls; ratio = time / one pairing measured in this run")
    print(f"{'operation':36} {'median µs':>10} {'ratio':>7} {'target µs':>10}  verdict")
    for m in results:
        target = f"{m.target_us:.0f}" if m.target_us is not None else "-"
        ratio = m.median_us / baseline.median_us
        print(f"{m.name:36} {m.median_us:10.1f} {ratio:7.2f} {target:>10}  {m.verdict()}")
    return results


# --- time to first response byte: 0-RTT against 1-RTT ---------------------------------

REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"


def first_response_byte_ms(address: tuple[str, int], config: ClientConfig, zero_rtt: bool) -> float:
    """From TCP connect to the first byte of the answer to REQUEST, sent as 0-RTT data or after the handshake."""
    started = time.perf_counter()
    conn = connect(*address, config, early_data=REQUEST if zero_rtt else None)
    try:
        if not zero_rtt:
            conn.write(REQUEST)
        if not conn.read(max=1):
            raise RuntimeError("the server closed without answering")
        return (time.perf_counter() - started) * 1000
    finally:
        conn.close()


@dataclass(frozen=True)
class ZeroRttResult:
    one_way_delay_ms: float
    one_rtt_ms: float
    zero_rtt_ms: float

    @property
    def saved_round_trips(self) -> float:
        return (self.one_rtt_ms - self.zero_rtt_ms) / (2 * self.one_way_delay_ms)


def measure_zero_rtt(delay_ms: float, runs: int) -> ZeroRttResult:
    """A server with 0-RTT on, behind a proxy adding ``delay_ms`` each way; medians of ``runs`` of each kind."""
    ta = TAMasterKey.generate()
    settings = server_settings([ta.extract("localhost")], accept_early_data=4096)
    settings.early_data_handler = www_early_data_handler
    client = HandshakeSettings()
    client.ibe_public_params = ta.public
    config = ClientConfig(client, server_name="localhost")
    samples: dict[bool, list[float]] = {False: [], True: []}
    with (
        TLSServer(ServerConfig(settings), www_application).start() as server,
        DelayProxy(server.address, delay_ms / 1000) as proxy,
    ):
        for _ in range(runs):
            for zero_rtt in (False, True):
                samples[zero_rtt].append(first_response_byte_ms(proxy.address, config, zero_rtt))
    return ZeroRttResult(delay_ms, statistics.median(samples[False]), statistics.median(samples[True]))


def bench_zero_rtt(delay_ms: float, runs: int) -> ZeroRttResult:
    result = measure_zero_rtt(delay_ms, runs)
    rtt = 2 * delay_ms
    print(f"ibepsk bench zero-rtt — {delay_ms:g} ms each way (RTT {rtt:g} ms) via a delaying proxy; {machine_line()}")
    print(f"median of {runs} connections each; time from TCP connect to the first byte of the answer")
    print(f"{'request sent':34} {'median ms':>10} {'RTTs':>6}")
    print(f"{'after the handshake (1-RTT)':34} {result.one_rtt_ms:10.1f} {result.one_rtt_ms / rtt:6.2f}")
    print(f"{'in the first flight (0-RTT)':34} {result.zero_rtt_ms:10.1f} {result.zero_rtt_ms / rtt:6.2f}")
    verdict = "met" if result.saved_round_trips >= 0.9 else "MISSED"
    print(
        f"0-RTT saves {result.one_rtt_ms - result.zero_rtt_ms:.1f} ms = {result.saved_round_trips:.2f} round trips "
        f"(target: one full round trip: {verdict})"
    )
    return result

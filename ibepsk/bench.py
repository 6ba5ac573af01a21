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

from .ibe import Decapsulator, Encapsulator, encapsulate, get_backend
from .ibe.h3 import h3
from .ibe.hashes import h1
from .keys import TAMasterKey


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

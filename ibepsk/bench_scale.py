"""``ibepsk bench scale``: how many devices one ``ibepsk serve`` holds, and how fast it takes new ones.

The server runs as its own process (``ibepsk serve``), the clients in other
processes (asyncio, ``ibepsk.asyncio``). Held connections are resumptions of
one IBE-PSK session, so the clients' CPU stays sane; handshake rates are of
full IBE-PSK handshakes, against the asyncio server and, in the same run, the
threaded server (:class:`ibepsk.server.TLSServer`, one thread per connection).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import keys
from .aio.server import raise_open_file_limit, use_uvloop
from .aio.streams import open_connection
from .bench import machine_line
from .bench_tls import _process_cpu_seconds
from .ibe import get_backend
from .server import ServerConfig, TLSServer, echo_application, server_settings
from .tls import HandshakeSettings

SERVER_NAME = "localhost"
#: Client processes: each holds its share of the connections, or runs its share of the concurrent clients.
CLIENT_PROCESSES = 2
#: Handshakes a client process keeps in flight while it opens the connections it holds.
OPENING_CONCURRENCY = 64
_MIB = 1 << 20
#: How long a held connection may stay idle on the server: the benchmark's length, at most.
IDLE_SECONDS = 3600


@dataclass(frozen=True)
class Files:
    key: Path
    public: Path

    @classmethod
    def create(cls, directory: Path) -> Files:
        ta = keys.TAMasterKey.generate()
        files = cls(directory / "localhost.key", directory / "public.pem")
        keys.write_key_file(files.key, ta.extract(SERVER_NAME))
        keys.write_key_file(files.public, ta.public)
        return files

    def client_settings(self) -> HandshakeSettings:
        settings = HandshakeSettings()
        settings.ibe_public_params = keys.load_public_params(self.public)
        settings.ibe_identity = SERVER_NAME
        return settings


# --- server processes ------------------------------------------------------------------------


@dataclass
class ServerProcess:
    process: subprocess.Popen[str]
    port: int

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        """User + system CPU of the server and its worker processes (children counted once they exit)."""
        return _process_cpu_seconds(self.pid) + sum(_process_cpu_seconds(child) for child in self.children())

    def children(self) -> list[int]:
        path = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        return [int(pid) for pid in path.read_text().split()] if path.exists() else []

    def status(self, field: str) -> int:
        """A number from /proc/PID/status (``Threads``; ``VmRSS`` in kB)."""
        match = re.search(rf"^{field}:\s+(\d+)", Path(f"/proc/{self.pid}/status").read_text(), re.MULTILINE)
        assert match, field
        return int(match.group(1))


@contextmanager
def running(command: list[str], log_file: Path) -> Iterator[ServerProcess]:
    with log_file.open("w") as log:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        assert process.stdout is not None
        banner = re.search(r"listening on [\d.]+:(\d+)", process.stdout.readline())
        if banner is None:
            raise RuntimeError(f"the server did not start: {log_file.read_text().strip()}")
        yield ServerProcess(process, int(banner.group(1)))
    finally:
        process.terminate()
        process.wait(30)


def asyncio_server(files: Files, *options: str) -> list[str]:
    """``ibepsk serve``, its connections allowed to stay idle while the others are opened."""
    return [sys.executable, "-m", "ibepsk.cli", "serve", "--accept", "127.0.0.1:0", "--quiet", "--ibe-key",
            str(files.key), "--idle-timeout", str(IDLE_SECONDS), *options]  # fmt: skip


def threaded_server(files: Files) -> list[str]:
    return [sys.executable, "-m", "ibepsk.bench_scale", "--threaded-server", str(files.key)]


def _serve_threaded(key_file: str) -> None:
    """The baseline: the threaded server on the same settings as ``ibepsk serve --no-tickets``."""
    config = ServerConfig(server_settings([keys.load_identity_key(key_file)], tickets=False))
    with TLSServer(config, echo_application) as server:
        print(f"threaded server: listening on {server.address[0]}:{server.address[1]}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()


# --- clients -----------------------------------------------------------------------------------


async def _echo(port: int, settings: HandshakeSettings, session: Any = None) -> tuple[Any, Any, Any]:
    reader, writer = await open_connection(
        "127.0.0.1", port, settings=settings, server_name=SERVER_NAME, session=session
    )
    writer.write(b"ping")
    await writer.drain()
    if await reader.readexactly(4) != b"ping":
        raise RuntimeError("the server did not echo")
    return reader, writer, writer.get_extra_info("tls")


def _hold(port: int, public: str, count: int, established: Any, answer: Any) -> int:
    """Open ``count`` connections and hold them; once told, have each one answered; how many were."""
    raise_open_file_limit()
    use_uvloop()

    async def main() -> int:
        settings = Files(Path(), Path(public)).client_settings()
        _, writer, conn = await _echo(port, settings)
        session = conn.session
        writer.close()
        gate = asyncio.Semaphore(OPENING_CONCURRENCY)

        async def open_one() -> tuple[Any, Any, Any]:
            async with gate:
                return await _echo(port, settings, session)

        held = await asyncio.gather(*(open_one() for _ in range(count)))
        established.put(len(held))
        await asyncio.to_thread(answer.wait)

        async def ping(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
            writer.write(b"ping")
            return await reader.readexactly(4) == b"ping"

        answered = await asyncio.gather(*(ping(reader, writer) for reader, writer, _ in held))
        for _, writer, _ in held:
            writer.close()
        return sum(answered)

    return asyncio.run(main())


def _hammer(port: int, public: str, clients: int, seconds: float) -> int:
    """``clients`` concurrent clients doing full IBE-PSK handshakes for ``seconds``; how many they did."""
    use_uvloop()

    async def main() -> int:
        settings = Files(Path(), Path(public)).client_settings()
        deadline = time.monotonic() + seconds

        async def client() -> int:
            done = 0
            while time.monotonic() < deadline:
                _, writer, _ = await _echo(port, settings)
                writer.close()
                done += 1
            return done

        return sum(await asyncio.gather(*(client() for _ in range(clients))))

    return asyncio.run(main())


def _pool() -> ProcessPoolExecutor:
    return ProcessPoolExecutor(CLIENT_PROCESSES, mp_context=multiprocessing.get_context("fork"))


@dataclass(frozen=True)
class Rate:
    handshakes_per_second: float
    server_cpu_ms: float  # per handshake


def handshakes_per_second(server: ServerProcess, files: Files, clients: int, seconds: float) -> Rate:
    share = [clients // CLIENT_PROCESSES + (i < clients % CLIENT_PROCESSES) for i in range(CLIENT_PROCESSES)]
    cpu_before, started = server.cpu_seconds(), time.monotonic()
    with _pool() as pool:
        futures = [pool.submit(_hammer, server.port, str(files.public), n, seconds) for n in share]
        done = sum(future.result() for future in futures)
    elapsed, cpu = time.monotonic() - started, server.cpu_seconds() - cpu_before
    return Rate(done / elapsed, cpu / max(done, 1) * 1000)


# --- the benchmark -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Held:
    connections: int
    established: int
    answered: int
    threads: int
    rss_mib: float
    #: The server's RSS before the first connection: what the connections add is the difference.
    rest_rss_mib: float
    seconds: float

    @property
    def kib_per_connection(self) -> float:
        """What each held connection adds to the server's RSS."""
        return (self.rss_mib - self.rest_rss_mib) * _MIB / max(self.connections, 1) / 1024


def hold_connections(files: Files, connections: int, directory: Path) -> Held:
    with running(asyncio_server(files), directory / "hold.log") as server:
        rest_kib = server.status("VmRSS")
        manager = multiprocessing.get_context("fork").Manager()
        established, answer = manager.Queue(), manager.Event()
        share = connections // CLIENT_PROCESSES
        counts = [share + (connections - share * CLIENT_PROCESSES if i == 0 else 0) for i in range(CLIENT_PROCESSES)]
        started = time.monotonic()
        with _pool() as pool:
            futures = [pool.submit(_hold, server.port, str(files.public), n, established, answer) for n in counts]
            opened = sum(established.get(timeout=3600) for _ in counts)
            took = time.monotonic() - started
            threads, rss_kib = server.status("Threads"), server.status("VmRSS")
            answer.set()
            answered = sum(future.result() for future in futures)
        manager.shutdown()
    return Held(connections, opened, answered, threads, rss_kib * 1024 / _MIB, rest_kib * 1024 / _MIB, took)


@dataclass(frozen=True)
class Rates:
    clients: int
    threaded: Rate
    asyncio_one: Rate
    asyncio_two: Rate
    pinned: bool


@contextmanager
def server_pinned(server: ServerProcess) -> Iterator[None]:
    """The server's threads (and those it starts) on the first CPU, this process and the client processes it forks
    on the others: the server's share of the machine no longer depends on how the scheduler weighs its threads
    against the clients'."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise RuntimeError("--pin-server needs at least two CPUs")
    os.sched_setaffinity(0, cpus[1:])
    try:
        for thread in Path(f"/proc/{server.pid}/task").iterdir():
            os.sched_setaffinity(int(thread.name), {cpus[0]})
        yield
    finally:
        os.sched_setaffinity(0, cpus)


def measure_rates(files: Files, clients: int, seconds: float, directory: Path, pin_server: bool = False) -> Rates:
    def rate(command: list[str], name: str, pin: bool) -> Rate:
        with contextlib.ExitStack() as stack:
            server = stack.enter_context(running(command, directory / f"{name}.log"))
            if pin:
                stack.enter_context(server_pinned(server))
            return handshakes_per_second(server, files, clients, seconds)

    return Rates(
        clients,
        threaded=rate(threaded_server(files), "threaded", pin_server),
        asyncio_one=rate(asyncio_server(files, "--no-tickets"), "asyncio-1", pin_server),
        # Two workers on one pinned CPU would measure nothing: they always get the whole machine.
        asyncio_two=rate(asyncio_server(files, "--no-tickets", "--workers", "2"), "asyncio-2", False),
        pinned=pin_server,
    )


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def print_scale(held: Held, rates: Rates) -> None:
    print(f"ibepsk bench scale — {machine_line()}; pairing backend {get_backend().name}")
    print(f"\n{held.connections} concurrent IBE-PSK connections (resumed) held by {CLIENT_PROCESSES} client processes")
    print(f"  established {held.established} in {held.seconds:.1f} s, answered afterwards: {held.answered}")
    everyone = held.established == held.answered == held.connections
    print(f"  every one established and answered: {_met(everyone)}")
    print(f"  server threads: {held.threads}, target <= 8: {_met(held.threads <= 8)}")
    print(
        f"  server RSS: {held.rss_mib:.0f} MiB ({held.kib_per_connection:.1f} KiB per connection above the "
        f"{held.rest_rss_mib:.0f} MiB at rest), target <= 300 MiB: {_met(held.rss_mib <= 300)}"
    )
    print(f"\nfull IBE-PSK handshakes/s, {rates.clients} concurrent clients in {CLIENT_PROCESSES} processes")
    if rates.pinned:
        print("  (threaded and 1 worker: server pinned to the first CPU, clients on the others; --workers 2 unpinned)")
    threaded, one, two = rates.threaded, rates.asyncio_one, rates.asyncio_two
    for label, rate in (("threaded server (a thread per connection)", threaded), ("ibepsk serve", one),
                        ("ibepsk serve --workers 2", two)):  # fmt: skip
        print(f"  {label:42} {rate.handshakes_per_second:8.1f}/s, server CPU {rate.server_cpu_ms:6.2f} ms/handshake")
    versus_threaded = one.handshakes_per_second / threaded.handshakes_per_second
    print(f"  ibepsk serve / threaded: {versus_threaded:.2f}x, target >= 1x: {_met(versus_threaded >= 1)}")
    versus_one = two.handshakes_per_second / one.handshakes_per_second
    print(f"  --workers 2 / 1 worker: {versus_one:.2f}x, target >= 1.7x: {_met(versus_one >= 1.7)}")
    print("  (the clients run on the same machine: their CPU is taken from the server's)")


def bench_scale(connections: int, clients: int, seconds: float, pin_server: bool = False) -> tuple[Held, Rates]:
    raise_open_file_limit()
    with tempfile.TemporaryDirectory(prefix="ibepsk-bench-scale-") as name:
        directory = Path(name)
        files = Files.create(directory)
        held = hold_connections(files, connections, directory)
        rates = measure_rates(files, clients, seconds, directory, pin_server)
    print_scale(held, rates)
    return held, rates


def _main() -> None:
    parser = argparse.ArgumentParser(description="helper processes of ibepsk bench scale")
    parser.add_argument("--threaded-server", metavar="KEY_FILE", required=True)
    _serve_threaded(parser.parse_args().threaded_server)


if __name__ == "__main__":
    _main()

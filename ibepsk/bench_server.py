"""``ibepsk bench server``: a server process's CPU per connection, for ``ibepsk serve`` or any other server.

The server runs as its own process; one client in this process opens
connections one after the other (handshake, one request, its answer, close)
and the server's CPU is read from ``/proc/PID/stat`` (utime + stime, every
thread) before and after. The same loop against another server command
(``--server-cmd``, e.g. ``openssl s_server``) gives a figure to compare with.
"""

from __future__ import annotations

import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tlslite.errors import TLSError

from . import keys
from .bench import REQUEST, machine_line, write_json
from .bench_tls import SERVER_NAME, Material, _process_cpu_seconds
from .tls import TLSConnection

#: ``ibepsk serve`` with the benchmark's identity key and certificate: both handshakes, tickets as deployed.
DEFAULT_SERVER_CMD = (
    f"{shlex.quote(sys.executable)} -m ibepsk.cli serve --accept 127.0.0.1:{{port}} --ibe-key {{ibe_key}} "
    "--cert {cert} --key {key} --quiet"
)
#: What each connection does: a full handshake of either kind, or an IBE-PSK session resumed with the ticket the
#: previous connection received.
HANDSHAKES = ("ibe-psk", "certificate", "resumption")
STARTUP_SECONDS = 15.0


class ServerBenchError(Exception):
    """The server cannot be measured: it does not run, listen or resume (the message says why)."""


@dataclass(frozen=True)
class ServerBenchmark:
    command: str
    handshake: str
    connections: int
    per_connection_ms: list[float]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.per_connection_ms)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _placeholders(material: Material, port: int) -> dict[str, str]:
    """What a server command may name: ``{port}``, ``{cert}``, ``{key}``, ``{ca}``, ``{ibe_key}``, ``{ta}``."""
    files = material.files
    keys.write_key_file(files / "ibe.key", material.ta.extract(SERVER_NAME), force=True)
    keys.write_key_file(files / "ta.pem", material.ta.public, force=True)
    names = {"cert": "server.crt", "key": "server.key", "ca": "ca.pem", "ibe_key": "ibe.key", "ta": "ta.pem"}
    return {"port": str(port), **{name: str(files / file) for name, file in names.items()}}


def _server_argv(command: str, placeholders: dict[str, str]) -> list[str]:
    try:
        return shlex.split(command.format(**placeholders))
    except KeyError as exc:
        raise ServerBenchError(f"unknown placeholder {{{exc.args[0]}}} (known: {', '.join(placeholders)})") from None
    except ValueError as exc:  # unbalanced quotes or braces
        raise ServerBenchError(str(exc)) from None


def _wait_listening(server: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise ServerBenchError(f"the server exited with status {server.returncode}: {_last_line(log)}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise ServerBenchError(f"the server did not listen on port {port} within {STARTUP_SECONDS:g} s")


def _last_line(log: Path) -> str:
    lines = log.read_text(errors="replace").strip().splitlines()
    return lines[-1] if lines else "(no output)"


class Client:
    """One connection after the other: handshake, REQUEST, the first byte of the answer, close."""

    def __init__(self, port: int, handshake: str, settings: Any) -> None:
        self.port, self.handshake, self.settings = port, handshake, settings
        self.resume = handshake == "resumption"
        self.session: Any = None

    def connect(self) -> None:
        try:
            self._connect()
        except (OSError, TLSError) as exc:
            raise ServerBenchError(f"{self.handshake} connection failed: {exc!r}") from None

    def _connect(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as sock:
            conn = TLSConnection(sock)
            conn.handshakeClientCert(settings=self.settings, serverName=SERVER_NAME, session=self.session)
            if self.session is not None and not conn.resumed:
                raise ServerBenchError("the server did not resume the previous connection's session")
            conn.write(REQUEST)
            if not conn.read(max=1):
                raise ServerBenchError("the server closed without answering")
            conn.close()
            if self.resume:  # tickets arrive before the answer
                if not conn.session.tickets:
                    raise ServerBenchError("the server sent no session ticket to resume with")
                self.session = conn.session


def measure_server(command: str, handshake: str, connections: int, runs: int) -> ServerBenchmark:
    """Server CPU per connection, one figure per run of ``connections`` connections."""
    with tempfile.TemporaryDirectory(prefix="ibepsk-bench-server-") as directory:
        material = Material.create(Path(directory))
        port = _free_port()
        argv = _server_argv(command, _placeholders(material, port))
        client = Client(port, handshake, material.ibe_client_settings() if handshake != "certificate" else None)
        log = material.files / "server.log"  # shown only if it fails to start
        with log.open("wb") as log_file:
            try:
                server = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT)
            except OSError as exc:  # no such program, not executable
                raise ServerBenchError(f"cannot run {argv[0] if argv else '(empty command)'}: {exc.strerror}") from None
        try:
            _wait_listening(server, port, log)
            client.connect()  # warm the server's caches (and, to resume, get a ticket) out of the measurement
            samples = []
            for _ in range(runs):
                before = _process_cpu_seconds(server.pid)
                for _ in range(connections):
                    client.connect()
                samples.append((_process_cpu_seconds(server.pid) - before) / connections * 1000)
        finally:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    return ServerBenchmark(command, handshake, connections, samples)


def bench_server(
    command: str | None, handshake: str, connections: int, runs: int, json_file: Path | None = None
) -> ServerBenchmark:
    result = measure_server(command or DEFAULT_SERVER_CMD, handshake, connections, runs)
    print(f"ibepsk bench server — {machine_line()}")
    print(f"server: {'ibepsk serve' if command is None else command}")
    print(f"{handshake} handshake, one request, close; {connections} connections per run, one at a time")
    runs_text = ", ".join(f"{ms:.2f}" for ms in result.per_connection_ms)
    print(f"server CPU per connection, ms: median {result.median_ms:.2f} (runs: {runs_text})")
    if json_file is not None:
        write_json(
            json_file,
            {
                "server": {
                    "command": command or "ibepsk serve",
                    "handshake": handshake,
                    "connections": connections,
                    "server_ms_per_connection": result.median_ms,
                    "runs_ms": result.per_connection_ms,
                }
            },
        )
    return result

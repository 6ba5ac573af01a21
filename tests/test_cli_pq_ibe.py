"""``ibepsk serve`` / ``ibepsk connect`` with ibepsk's post-quantum ``--ibe-scheme lattice`` and ``hybrid``, as real
processes, with the keys of a lattice TA made by ``ibepsk ta init --scheme lattice`` and ``ibepsk ta extract``.

Every ClientHello here is 4 KB or more (a 3,968- or 4,129-byte identity and a 1,216-byte X25519MLKEM768 share), in
several records, to the asyncio server ``ibepsk serve`` runs.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ibepsk import cli, keys
from ibepsk.keys import TAMasterKey
from ibepsk.tls.settings import IBE_SCHEMES

from test_cli_endpoints import ServerProcess
from test_cli_ta import assert_one_line_error, ibepsk


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, ta: TAMasterKey) -> dict[str, Path]:
    """A BF TA's public parameters and localhost key; a lattice TA and its localhost key, made by the CLI."""
    directory = tmp_path_factory.mktemp("pq-ibe")
    paths = {"public": directory / "public.pem", "localhost": directory / "localhost.key"}
    keys.write_key_file(paths["public"], ta.public)
    keys.write_key_file(paths["localhost"], ta.extract("localhost"))
    paths["lattice-ta"], paths["lattice-localhost"] = directory / "lattice-ta", directory / "lattice-localhost.key"
    for command in (
        ("ta", "init", "--scheme", "lattice", str(paths["lattice-ta"])),
        ("ta", "extract", "--master", str(paths["lattice-ta"]), "localhost", "-o", str(paths["lattice-localhost"])),
    ):
        result = ibepsk(*command)
        assert result.returncode == 0, result.stderr
    paths["lattice-public"] = paths["lattice-ta"] / "public.pem"
    return paths


def lattice_options(files: dict[str, Path]) -> tuple[str, ...]:
    return ("--lattice-key", str(files["lattice-localhost"]), "--lattice-ta", str(files["lattice-public"]))


def connect(files: dict[str, Path], port: int, scheme: str, *extra: str) -> tuple[str, ...]:
    """``ibepsk connect`` options for ``scheme``: ibepsk's lattice one needs no BF TA, BF no lattice TA."""
    bf = () if scheme == "lattice" else ("--ta", str(files["public"]))
    lattice = () if scheme == "bf" else ("--lattice-ta", str(files["lattice-public"]))
    return ("connect", f"127.0.0.1:{port}", "--identity", "localhost", "--ibe-scheme", scheme, *bf, *lattice,
            *extra)  # fmt: skip


@pytest.mark.parametrize(("name", "use"), [("lattice-public", "connect"), ("lattice-localhost", "serve")])
def test_ta_show_says_what_a_lattice_file_is_for(files: dict[str, Path], name: str, use: str) -> None:
    result = ibepsk("ta", "show", str(files[name]))
    assert result.returncode == 0, result.stderr
    assert f"  use: ibepsk {use} --ibe-scheme hybrid|lattice" in result.stdout
    assert "or tiiger-hybrid (classical secrecy)" in result.stdout


def test_cli_names_every_scheme() -> None:
    assert cli.IBE_SCHEMES == IBE_SCHEMES


def test_help_says_what_is_post_quantum() -> None:
    for command in ("serve", "connect"):
        text = " ".join(ibepsk(command, "--help").stdout.split())
        assert "{bf,tiiger-hybrid,lattice,hybrid}" in text
        assert "lattice: ibepsk's lattice IBE-PSK, post-quantum (PSK, 0-RTT data, server authentication)" in text
        assert "hybrid (the recommended post-quantum mode)" in text
        assert "bf (default): Boneh-Franklin IBE-PSKs, classical" in text


@pytest.mark.parametrize("scheme", ["hybrid", "lattice"])
def test_lattice_ta_keys_end_to_end(files: dict[str, Path], scheme: str) -> None:
    """Keys from ``ibepsk ta extract`` of a lattice TA, in a 0-RTT handshake and its resumption-free echo."""
    bf = () if scheme == "lattice" else ("--ibe-key", str(files["localhost"]))
    server = ServerProcess(*bf, "--ibe-scheme", scheme, *lattice_options(files), "--max-early-data", "1024")
    try:
        result = ibepsk(*connect(files, server.port, scheme, "--send-early", "early", "--send", "hello"))
    finally:
        log = server.stop()
    assert result.returncode == 0, result.stderr
    assert result.stdout == "earlyhello"
    assert "mode=ibe-psk identity=localhost kex=psk_dhe_ke" in result.stderr and "early_data=accepted" in result.stderr
    assert re.search(r"handshake ok mode=ibe-psk identity=localhost kex=psk_dhe_ke .*early_data=accepted", log), log


def test_hybrid_server_also_takes_the_lattice_and_bf_markers(files: dict[str, Path]) -> None:
    server = ServerProcess("--ibe-key", str(files["localhost"]), "--ibe-scheme", "hybrid", *lattice_options(files))
    try:
        results = [ibepsk(*connect(files, server.port, scheme, "--send", "hi")) for scheme in ("lattice", "bf")]
    finally:
        server.stop()
    assert [(result.returncode, result.stdout) for result in results] == [(0, "hi"), (0, "hi")], results


@pytest.mark.parametrize("scheme", ["hybrid", "lattice"])
def test_server_without_the_lattice_key_refuses(files: dict[str, Path], scheme: str) -> None:
    server = ServerProcess("--ibe-key", str(files["localhost"]))
    try:
        result = ibepsk(*connect(files, server.port, scheme, "--send", "hi"))
    finally:
        server.stop()
    assert_one_line_error(result, "unknown_psk_identity")


def test_lattice_only_server_refuses_bf(files: dict[str, Path]) -> None:
    server = ServerProcess("--ibe-scheme", "lattice", *lattice_options(files))
    try:
        result = ibepsk(*connect(files, server.port, "bf", "--send", "hi"))
    finally:
        server.stop()
    assert_one_line_error(result, "unknown_psk_identity")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("serve", "--accept", "127.0.0.1:0", "--ibe-scheme", "lattice"), "give at least one --ibe-key"),
        (("serve", "--accept", "127.0.0.1:0", "--ibe-key", "{localhost}", "--ibe-scheme", "hybrid"),
         "--ibe-scheme hybrid needs --lattice-ta and --lattice-key (and --ibe-key)"),
        (("serve", "--accept", "127.0.0.1:0", "--ibe-scheme", "lattice", "--lattice-key", "{lattice-localhost}"),
         "--ibe-scheme lattice needs --lattice-ta and --lattice-key"),
        (("serve", "--accept", "127.0.0.1:0", "--psk", "0011", "--psk-identity", "id", "--ibe-scheme", "hybrid",
          "--lattice-key", "{lattice-localhost}", "--lattice-ta", "{lattice-public}"),
         "--ibe-scheme hybrid needs --ibe-key (with --lattice-key and --lattice-ta)"),
        (("connect", "127.0.0.1:9", "--identity", "localhost", "--ibe-scheme", "lattice"),
         "--ibe-scheme lattice needs --lattice-ta"),
        (("connect", "127.0.0.1:9", "--identity", "localhost", "--ibe-scheme", "hybrid", "--lattice-ta",
          "{lattice-public}"), "--ibe-scheme hybrid needs --ta and --lattice-ta"),
        (("connect", "127.0.0.1:9", "--ta", "{public}", "--identity", "localhost", "--ibe-scheme", "hybrid",
          "--lattice-ta", "{public}"), "expected lattice TA public parameters, found TA public parameters"),
    ],
)  # fmt: skip
def test_option_errors(files: dict[str, Path], args: tuple[str, ...], message: str) -> None:
    result = ibepsk(*(arg.format_map({name: str(path) for name, path in files.items()}) for arg in args))
    assert_one_line_error(result, message)


# --- benchmarks ---------------------------------------------------------------------------------

#: A ``bench wire`` row per scheme: "scheme (marker)", ClientHello, client->server, server->client, total.
_WIRE_ROW = re.compile(r"^(\S+) \(\S+\)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$", re.MULTILINE)


def test_bench_wire_sizes_every_scheme() -> None:
    result = ibepsk("bench", "wire")
    assert result.returncode == 0, result.stderr
    rows = {match[0]: [int(n) for n in match[1:]] for match in _WIRE_ROW.findall(result.stdout)}
    assert set(rows) == set(IBE_SCHEMES), result.stdout
    # The ClientHello carries the identity (161, 4,161, 3,968, 4,129 bytes) and its key share (32, or 1,216).
    for scheme, identity_bytes in (("bf", 161), ("tiiger-hybrid", 4161), ("lattice", 3968), ("hybrid", 4129)):
        share = 32 if scheme == "bf" else 1216
        client_hello, client_to_server, server_to_client, total = rows[scheme]
        assert identity_bytes + share < client_hello < identity_bytes + share + 400, (scheme, result.stdout)
        assert client_hello < client_to_server and client_to_server + server_to_client == total


HYBRID_ROWS = ("tiiger-hybrid encapsulate", "tiiger-hybrid decapsulate", "hybrid encapsulate (lattice + BF)",
               "hybrid decapsulate (lattice + BF)")  # fmt: skip


def test_bench_ibe_times_the_hybrids() -> None:
    result = ibepsk("bench", "ibe", "--runs", "1", "--iterations", "2")
    assert result.returncode == 0, result.stderr
    for row in HYBRID_ROWS:
        assert re.search(rf"^{re.escape(row)}\s+\d+\.\d", result.stdout, re.MULTILINE), (row, result.stdout)

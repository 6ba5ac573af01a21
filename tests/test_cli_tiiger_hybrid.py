"""``ibepsk serve`` / ``ibepsk connect`` with ``--ibe-scheme tiiger-hybrid``, as real processes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ibepsk import keys
from ibepsk.keys import LatticeIdentityKey, LatticeTAPublicParams, TAMasterKey

from pq_support import demo_secret_key, demo_ta_public_key
from test_cli_endpoints import ServerProcess
from test_cli_ta import assert_one_line_error, ibepsk


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, ta: TAMasterKey) -> dict[str, Path]:
    """A BF TA and key for localhost, and TiigerTLS's demo lattice TA and localhost key."""
    directory = tmp_path_factory.mktemp("tiiger-hybrid")
    lattice_public = LatticeTAPublicParams.from_polynomial(demo_ta_public_key())
    written = {
        "public": ta.public,
        "localhost": ta.extract("localhost"),
        "lattice-public": lattice_public,
        "lattice-localhost": LatticeIdentityKey.from_coefficients("localhost", demo_secret_key(), lattice_public),
    }
    paths = {name: directory / f"{name}.pem" for name in written}
    for name, key in written.items():
        keys.write_key_file(paths[name], key)
    return paths


def test_help_says_the_secrecy_is_classical() -> None:
    for command in ("serve", "connect"):
        text = " ".join(ibepsk(command, "--help").stdout.split())
        assert "tiiger-hybrid" in text and "Its secrecy is classical, not post-quantum" in text


def test_connect_with_tiiger_hybrid(files: dict[str, Path]) -> None:
    server = ServerProcess(
        "--ibe-key", str(files["localhost"]), "--ibe-scheme", "tiiger-hybrid",
        "--lattice-key", str(files["lattice-localhost"]), "--lattice-ta", str(files["lattice-public"]),
    )  # fmt: skip
    try:
        result = ibepsk(
            "connect", f"127.0.0.1:{server.port}", "--identity", "localhost", "--ta", str(files["public"]),
            "--ibe-scheme", "tiiger-hybrid", "--lattice-ta", str(files["lattice-public"]),
            "--send-early", "early", "--send", "hello",
        )  # fmt: skip
    finally:
        log = server.stop()
    assert result.returncode == 0, result.stderr
    assert "mode=ibe-psk identity=localhost" in result.stderr
    assert re.search(r"handshake ok mode=ibe-psk identity=localhost kex=psk_dhe_ke", log), log


def test_bf_server_does_not_take_the_hybrid(files: dict[str, Path]) -> None:
    server = ServerProcess("--ibe-key", str(files["localhost"]))
    try:
        result = ibepsk(
            "connect", f"127.0.0.1:{server.port}", "--identity", "localhost", "--ta", str(files["public"]),
            "--ibe-scheme", "tiiger-hybrid", "--lattice-ta", str(files["lattice-public"]),
        )  # fmt: skip
    finally:
        server.stop()
    assert_one_line_error(result, "unknown_psk_identity")


def test_serve_tiiger_hybrid_needs_the_lattice_keys(files: dict[str, Path]) -> None:
    result = ibepsk("serve", "--accept", "127.0.0.1:0", "--ibe-key", str(files["localhost"]), "--ibe-scheme",
                    "tiiger-hybrid")  # fmt: skip
    assert_one_line_error(result, "needs --lattice-ta and --lattice-key")


def test_lattice_options_need_the_scheme(files: dict[str, Path]) -> None:
    result = ibepsk(
        "serve", "--accept", "127.0.0.1:0", "--ibe-key", str(files["localhost"]),
        "--lattice-key", str(files["lattice-localhost"]), "--lattice-ta", str(files["lattice-public"]),
    )  # fmt: skip
    assert_one_line_error(result, "go with --ibe-scheme tiiger-hybrid")
    result = ibepsk("connect", "127.0.0.1:9", "--ta", str(files["public"]), "--identity", "localhost",
                    "--ibe-scheme", "tiiger-hybrid")  # fmt: skip
    assert_one_line_error(result, "needs --ta and --lattice-ta")

"""One identity rule everywhere: UTF-8 names work end to end, control characters are refused in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ibepsk import keys
from ibepsk.epochs import EpochError, current_identity
from ibepsk.tls.psk import client_identity, sni_host_name

from test_cli_endpoints import ServerProcess
from test_cli_ta import assert_one_line_error, assert_usage_error, ibepsk

UTF8_NAME = "gätewäy"
UTF8_NAME_SNI = "xn--gtewy-grad"  # its IDNA A-label: what SNI, which is ASCII (RFC 6066), carries


@pytest.fixture(scope="module")
def ta_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("identities")
    assert ibepsk("ta", "init", str(directory)).returncode == 0
    for name in (UTF8_NAME, "localhost"):
        result = ibepsk("ta", "extract", "--master", str(directory), name, "-o", str(directory / f"{name}.key"))
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"wrote identity key for '{name}'"), result.stdout
    return directory


def test_utf8_identity_key_file_is_ascii_and_round_trips(ta_files: Path) -> None:
    text = (ta_files / f"{UTF8_NAME}.key").read_bytes().decode("ascii")
    assert "Identity-UTF8-Base64: Z8OkdGV3w6R5\n" in text  # base64 of the name's UTF-8 bytes
    shown = ibepsk("ta", "show", str(ta_files / f"{UTF8_NAME}.key"), "--ta", str(ta_files / "public.pem"))
    assert shown.returncode == 0, shown.stderr
    assert f"identity: {UTF8_NAME}" in shown.stdout and "verified" in shown.stdout


def test_ascii_identities_keep_the_header_every_version_reads(ta_files: Path) -> None:
    assert "\nIdentity: localhost\n" in (ta_files / "localhost.key").read_text()


def _connect(port: int, ta_files: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return ibepsk("connect", f"127.0.0.1:{port}", "--ta", str(ta_files / "public.pem"), "--send", "hello", *options)


def test_utf8_identity_end_to_end_as_the_default_identity(ta_files: Path) -> None:
    # An SNI that names no key (here the address's own, given as --servername): the server uses its default key,
    # the first one given.
    server = ServerProcess("--ibe-key", str(ta_files / f"{UTF8_NAME}.key"), "--ta", str(ta_files / "public.pem"))
    result = _connect(server.port, ta_files, "--identity", UTF8_NAME, "--servername", "other.example")
    log = server.stop()
    assert result.returncode == 0, result.stderr
    assert f"mode=ibe-psk identity={UTF8_NAME}" in result.stderr and result.stdout == "hello"
    assert f"identity={UTF8_NAME}" in log


@pytest.mark.parametrize("sni_options", [["--servername", UTF8_NAME_SNI], []], ids=["servername", "sni-from-identity"])
def test_utf8_identity_chosen_by_its_a_label_in_sni(ta_files: Path, sni_options: list[str]) -> None:
    # localhost is the default key: only SNI naming gätewäy's A-label makes the server open with gätewäy's key.
    # Without --servername, connect sends the A-label of --identity itself (it connects to an address).
    server = ServerProcess(
        "--ibe-key", str(ta_files / "localhost.key"), "--ibe-key", str(ta_files / f"{UTF8_NAME}.key")
    )
    result = _connect(server.port, ta_files, "--identity", UTF8_NAME, *sni_options)
    server.stop()
    assert result.returncode == 0, result.stderr
    assert f"mode=ibe-psk identity={UTF8_NAME}" in result.stderr


def test_sni_host_names_of_identities() -> None:
    assert sni_host_name(UTF8_NAME) == UTF8_NAME_SNI
    assert sni_host_name("gw.example") == "gw.example"
    assert sni_host_name("device 1") is None  # no host name: the server's default key answers it


BAD_IDENTITIES = [
    ("tab\there", "contains a control character"),
    ("new\nline", "contains a control character"),
    ("del\x7f", "contains a control character"),
    ("c1\x85", "contains a control character"),  # NEL, a C1 control (and a line break to str.splitlines)
    ("escape\x1b[31m", "contains a control character"),
    ("line\u2028separator", "contains a control character"),
    ("", "the identity is empty"),
    (" padded", "starts or ends with a space"),
    ("x" * 1025, "longer than 1024 bytes"),
]


@pytest.mark.parametrize(("identity", "message"), BAD_IDENTITIES)
def test_bad_identities_are_refused_by_ta_extract(tmp_path: Path, identity: str, message: str) -> None:
    result = ibepsk("ta", "extract", "--master", "ta", "-o", "k.key", "--", identity, cwd=tmp_path)
    assert_usage_error(result, message)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("identity", ["tab\there", "c1\x85"])
@pytest.mark.parametrize(
    "command",
    [
        ("ta", "import", "--public-hex", "00", "-o", "out", "--identity"),
        ("connect", "127.0.0.1:1", "--ta", "public.pem", "--identity"),
        ("serve", "--ibe-key", "k.key", "--default-identity"),
    ],
    ids=["ta-import", "connect", "serve"],
)
def test_control_characters_are_refused_everywhere(tmp_path: Path, command: tuple[str, ...], identity: str) -> None:
    result = ibepsk(*command, identity, cwd=tmp_path)
    assert_usage_error(result, "contains a control character")
    assert list(tmp_path.iterdir()) == []


def test_bytes_that_are_not_utf8_are_refused(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "ibepsk.cli", "connect", "127.0.0.1:1", "--ta", "p.pem", "--identity"]
    result = subprocess.run(
        [os.fsencode(arg) for arg in command] + [b"gw\xff"], capture_output=True, text=True, timeout=60
    )
    assert_usage_error(result, "is not valid UTF-8")


def test_the_library_applies_the_same_rule() -> None:
    assert keys.validate_identity(UTF8_NAME) == UTF8_NAME
    assert client_identity(UTF8_NAME, None) == UTF8_NAME
    for identity, message in BAD_IDENTITIES:
        with pytest.raises(ValueError, match=message):
            keys.validate_identity(identity)
        with pytest.raises(ValueError, match=message):
            client_identity(identity, None)
        with pytest.raises(EpochError, match=message):
            current_identity(identity, datetime.now(UTC))


def test_epoch_bound_utf8_identity(ta_files: Path, tmp_path: Path) -> None:
    result = ibepsk(
        "ta", "extract", "--master", str(ta_files), UTF8_NAME, "--epoch", "day", "--at", "2026-11-27T10:00",
        "-o", str(tmp_path / "k.key"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert keys.load_identity_key(tmp_path / "k.key").identity == f"{UTF8_NAME}|2026-11-27"


def test_a_corrupted_utf8_header_is_one_line(ta_files: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.key"
    bad.write_text((ta_files / f"{UTF8_NAME}.key").read_text().replace("Z8OkdGV3w6R5", "/w=="))  # b"\xff"
    result = ibepsk("ta", "show", str(bad))
    assert_one_line_error(result, "is not base64 of UTF-8 text")
    assert "codec" not in result.stderr

"""``ibepsk ta`` through the real command line, in a subprocess."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


def ibepsk(*args: str, cwd: Path | None = None, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run the CLI; ``stdin`` is what it reads there (``ibepsk connect`` without --send sends it)."""
    return subprocess.run(
        [sys.executable, "-m", "ibepsk.cli", *args], input=stdin, capture_output=True, text=True, cwd=cwd, timeout=60
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ibepsk: error:")
    assert fragment in lines[0], lines[0]


def assert_error_after_connecting(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    """Like assert_one_line_error, for ``ibepsk connect`` failing after its "connection to ..." status line."""
    status, _, error = result.stderr.strip().rpartition("\n")
    assert status.startswith("connection to"), result.stderr
    assert_one_line_error(subprocess.CompletedProcess(result.args, result.returncode, result.stdout, error), fragment)


@pytest.fixture(scope="module")
def ta_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("ta")
    result = ibepsk("ta", "init", str(directory))
    assert result.returncode == 0, result.stderr
    return directory


def assert_usage_error(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    """argparse's own refusal while parsing: the usage, then one ``ibepsk ...: error: ...`` line, exit 2."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert re.match(r"ibepsk( [a-z-]+)*: error: ", last), result.stderr
    assert fragment in last, last


def test_init_writes_private_master_and_public(ta_dir: Path) -> None:
    assert stat.S_IMODE((ta_dir / "master.key").stat().st_mode) == 0o600
    assert (ta_dir / "public.pem").read_text().startswith("-----BEGIN IBEPSK TA PUBLIC PARAMETERS-----")


def test_extract_and_show(ta_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "gw.key"
    result = ibepsk("ta", "extract", "--master", str(ta_dir), "gw.example", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    shown = ibepsk("ta", "show", str(out), "--ta", str(ta_dir / "public.pem"))
    assert shown.returncode == 0, shown.stderr
    assert "identity: gw.example" in shown.stdout and "verified" in shown.stdout
    body = "".join(out.read_text().split("\n\n", 1)[1].splitlines()[:-1])
    assert body not in shown.stdout


def test_show_master_does_not_print_secret(ta_dir: Path) -> None:
    shown = ibepsk("ta", "show", str(ta_dir / "master.key"))
    assert shown.returncode == 0
    body = "".join((ta_dir / "master.key").read_text().split("\n\n", 1)[1].splitlines()[:-1])
    assert body not in shown.stdout and "secret not shown" in shown.stdout


def test_init_refuses_to_overwrite(ta_dir: Path) -> None:
    before = (ta_dir / "master.key").read_bytes()
    assert_one_line_error(ibepsk("ta", "init", str(ta_dir)), "already exists")
    assert (ta_dir / "master.key").read_bytes() == before


def test_extract_refuses_to_overwrite(ta_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "existing.key"
    out.write_text("keep me")
    assert_one_line_error(ibepsk("ta", "extract", "--master", str(ta_dir), "x", "-o", str(out)), "already exists")
    assert out.read_text() == "keep me"
    assert ibepsk("ta", "extract", "--master", str(ta_dir), "x", "-o", str(out), "--force").returncode == 0


def test_import_tiiger_demo_keys(tmp_path: Path, vectors: dict[str, Any]) -> None:
    result = ibepsk(
        "ta", "import", "--public-hex", vectors["ta_public_key_g1"],
        "--identity-key-hex", vectors["identity_key_g2"], "--identity", "localhost", "-o", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    shown = ibepsk("ta", "show", str(tmp_path / "localhost.key"), "--ta", str(tmp_path / "public.pem"))
    assert "verified" in shown.stdout


def test_import_refuses_key_of_another_identity(tmp_path: Path, vectors: dict[str, Any]) -> None:
    result = ibepsk(
        "ta", "import", "--public-hex", vectors["ta_public_key_g1"],
        "--identity-key-hex", vectors["identity_key_g2"], "--identity", "example.com", "-o", str(tmp_path),
    )  # fmt: skip
    assert_one_line_error(result, "does not belong to identity 'example.com'")
    assert not (tmp_path / "public.pem").exists()


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "no such file"),
        ("", "not an ibepsk key file"),
        ("-----BEGIN IBEPSK TA MASTER SECRET-----\nFormat: 1\n", "truncated"),
        ("\x00\xff garbage", "not an ibepsk key file (they are ASCII text)"),
    ],
)
def test_bad_files_give_one_line(tmp_path: Path, content: str | None, fragment: str) -> None:
    path = tmp_path / "bad.key"
    if content is not None:
        path.write_bytes(content.encode("latin-1"))
    assert_one_line_error(ibepsk("ta", "show", str(path)), fragment)
    assert_one_line_error(ibepsk("ta", "extract", "--master", str(path), "x", "-o", str(tmp_path / "o")), fragment)


def test_wrong_type_for_extract(ta_dir: Path, tmp_path: Path) -> None:
    result = ibepsk("ta", "extract", "--master", str(ta_dir / "public.pem"), "x", "-o", str(tmp_path / "o"))
    assert_one_line_error(result, "expected a TA master secret")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_directory(ta_dir: Path, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    assert_one_line_error(ibepsk("ta", "extract", "--master", str(ta_dir), "x", "-o", str(locked / "o")), "ermission")


def test_unwritable_location(ta_dir: Path, tmp_path: Path) -> None:
    # Works as root too: a regular file cannot be a directory.
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert_one_line_error(ibepsk("ta", "extract", "--master", str(ta_dir), "x", "-o", str(blocker / "o")), "")


def test_bad_hex_and_bad_identity(tmp_path: Path) -> None:
    assert_one_line_error(ibepsk("ta", "import", "--public-hex", "zz", "-o", str(tmp_path)), "not a hex string")
    assert_one_line_error(ibepsk("ta", "import", "--public-hex", "04", "-o", str(tmp_path)), "97 bytes")


def test_import_refuses_an_identity_that_names_another_path(tmp_path: Path, vectors: dict[str, Any]) -> None:
    out = tmp_path / "out" / "sub"
    result = ibepsk(
        "ta", "import", "--public-hex", vectors["ta_public_key_g1"],
        "--identity-key-hex", vectors["identity_key_g2"], "--identity", "../escaped", "-o", str(out),
    )  # fmt: skip
    assert_one_line_error(result, "")
    assert not (tmp_path / "out").exists(), "nothing is created when the arguments are refused"


def test_at_needs_epoch(ta_dir: Path, tmp_path: Path) -> None:
    result = ibepsk("ta", "extract", "--master", str(ta_dir), "gw", "--at", "2026-11-27", "-o", str(tmp_path / "k"))
    assert_one_line_error(result, "--at only makes sense with --epoch")


def test_init_refuses_an_empty_directory_name(tmp_path: Path) -> None:
    # Path("") is the current directory: the TA would land wherever the command ran.
    assert_usage_error(ibepsk("ta", "init", "", cwd=tmp_path), "argument DIR: the directory name is empty")
    assert list(tmp_path.iterdir()) == []


def test_init_into_a_file_says_so(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert_one_line_error(ibepsk("ta", "init", str(blocker)), f"{blocker}: not a directory")


@pytest.mark.parametrize("force", [(), ("--force",)])
def test_output_that_is_a_directory_is_said_plainly(ta_dir: Path, tmp_path: Path, force: tuple[str, ...]) -> None:
    result = ibepsk("ta", "extract", "--master", str(ta_dir), "x", "-o", str(tmp_path), *force)
    assert_one_line_error(result, f"{tmp_path}: is a directory")
    assert ".tmp" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_write_errors_name_the_target_not_the_temporary_file(ta_dir: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = ibepsk("ta", "extract", "--master", str(ta_dir), "x", "-o", str(blocker / "x.key"))
    assert_one_line_error(result, f"{blocker / 'x.key'}: Not a directory")
    assert ".tmp" not in result.stderr


@pytest.mark.parametrize(
    ("command", "given"),
    [
        (("ta", "show"), "master.key"),
        (("serve", "--ibe-key"), "master.key"),
        (("ta", "extract", "x", "-o", "o", "--master"), "."),  # a TA directory whose master.key is a directory
    ],
)
def test_a_directory_for_a_key_file_is_said_plainly(tmp_path: Path, command: tuple[str, ...], given: str) -> None:
    (tmp_path / "master.key").mkdir()
    result = ibepsk(*command, str(tmp_path / given), cwd=tmp_path)
    assert_one_line_error(result, "master.key: is a directory, not a key file")


def test_errors_name_kinds_of_file_not_python_classes(ta_dir: Path, tmp_path: Path) -> None:
    result = ibepsk("ta", "extract", "--master", str(ta_dir / "public.pem"), "x", "-o", str(tmp_path / "o"))
    assert_one_line_error(result, "expected a TA master secret, found TA public parameters")
    result = ibepsk("connect", "127.0.0.1:1", "--ta", str(ta_dir / "master.key"))
    assert_one_line_error(result, "expected TA public parameters, found a TA master secret")


def test_a_binary_file_is_not_a_codec_error(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(bytes(range(256)))
    result = ibepsk("ta", "show", str(path))
    assert_one_line_error(result, "not an ibepsk key file")
    assert "codec" not in result.stderr

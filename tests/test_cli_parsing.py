"""The ``ibepsk`` command line as a user first meets it: --version, --help, and values refused while parsing."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from ibepsk import keys
from ibepsk.keys import TAMasterKey

from test_cli_endpoints import ServerProcess
from test_cli_ta import assert_usage_error, ibepsk

ROOT = Path(__file__).resolve().parent.parent

COMMANDS = [
    (),
    ("ta",),
    ("ta", "init"),
    ("ta", "extract"),
    ("ta", "show"),
    ("ta", "import"),
    ("ta", "combine"),
    ("ta", "refresh"),
    ("serve",),
    ("connect",),
    ("demo",),
    ("bench",),
    ("bench", "ibe"),
    ("bench", "tls"),
    ("bench", "wire"),
    ("bench", "zero-rtt"),
    ("bench", "iot"),
    ("bench", "all"),
]

#: One name per kind of value, whichever option takes it; {a,b} lists choices.
METAVARS = re.compile(
    r"FILE|DIR|DIR\|FILE|HOST:PORT|BYTES|SECONDS|MS|N|TEXT|IDENTITY|NAME|HEX|SPEC|DATETIME|\{[\w,-]+\}"
)


@pytest.fixture(scope="module")
def helps() -> dict[tuple[str, ...], str]:
    texts = {}
    for command in COMMANDS:
        result = ibepsk(*command, "--help")
        assert result.returncode == 0, result.stderr
        texts[command] = result.stdout
    return texts


def test_version_comes_from_the_package_metadata() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    result = ibepsk("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"ibepsk {version} (tlslite-ng "), result.stdout


def test_version_from_a_source_tree_that_is_not_installed(tmp_path: Path) -> None:
    # A copy of the package beside its pyproject.toml, where no "ibepsk" distribution is installed.
    shutil.copytree(ROOT / "ibepsk", tmp_path / "ibepsk")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "ibepsk"\nversion = "9.8.7"\n')
    code = (
        "import importlib.metadata as m, sys\n"
        "real = m.version\n"
        "def version(name):\n"
        "    if name == 'ibepsk': raise m.PackageNotFoundError(name)\n"
        "    return real(name)\n"
        "m.version = version\n"
        "from ibepsk.cli import main\n"
        "sys.exit(main(['--version']))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ibepsk 9.8.7 ("), result.stdout


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: " ".join(command) or "ibepsk")
def test_every_command_has_a_description(helps: dict[tuple[str, ...], str], command: tuple[str, ...]) -> None:
    _, _, rest = helps[command].partition("\n\n")
    description = rest.split("\n\npositional arguments:")[0].split("\n\noptions:")[0]
    assert not description.startswith(("positional arguments:", "options:")), helps[command]
    assert len(description.split()) >= 5, description


def test_help_is_plain_text(helps: dict[tuple[str, ...], str]) -> None:
    for command, text in helps.items():
        assert "`" not in text, (command, text)


def test_defaults_are_shown_once_and_only_when_there_is_one(helps: dict[tuple[str, ...], str]) -> None:
    assert "(default: 3.0)" in helps["connect",]  # --wait
    assert "(default: 127.0.0.1:4433)" in helps["serve",]  # --accept
    assert "(default: 15)" in helps["bench", "tls"]  # --runs
    for command, text in helps.items():
        flat = " ".join(text.split())
        assert "default: None" not in flat and "default: False" not in flat and "default: []" not in flat, command
        assert not re.search(r"\(default[^)]*\) \(default", flat), (command, flat)


def test_metavars_name_kinds_of_value(helps: dict[tuple[str, ...], str]) -> None:
    for command, text in helps.items():
        options = text.split("\noptions:\n", 1)[1]
        for match in re.finditer(r"^  (?:-\w [^,\s]+, )?(--[\w-]+) (\S+)", options, re.MULTILINE):
            option, metavar = match.groups()
            assert METAVARS.fullmatch(metavar), f"ibepsk {' '.join(command)} {option} {metavar}"


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        (("connect", "127.0.0.1:1", "--wait", "-1"), "argument --wait: expected a number, 0 or more, not '-1'"),
        (("connect", "127.0.0.1:1", "--wait", "nan"), "argument --wait: expected a number, 0 or more"),
        (("connect", "127.0.0.1:1", "--answer-limit", "-3"), "argument --answer-limit: expected a whole number"),
        (("connect", "127.0.0.1:1", "--send", r"GET \x4"), r"argument --send: bad backslash escape (truncated \xXX"),
        (("connect", "127.0.0.1:1", "--send-early", "oops\\"), "argument --send-early: bad backslash escape"),
        (("connect", "127.0.0.1:1", "--send", r"\u20ac"), "write the character itself"),
        (("serve", "--max-early-data", "-5"), "argument --max-early-data: expected a whole number, 0 or more"),
        (("bench", "tls", "--runs", "0"), "argument --runs: expected a whole number, 1 or more, not '0'"),
        (("bench", "zero-rtt", "--delay-ms", "-2"), "argument --delay-ms: expected a number, 0 or more"),
    ],
)
def test_bad_values_are_refused_while_parsing(arguments: tuple[str, ...], fragment: str) -> None:
    result = ibepsk(*arguments)
    assert_usage_error(result, fragment)
    assert "codec" not in result.stderr


def test_escapes_still_decode(tmp_path: Path) -> None:
    # Checked while parsing, decoded when sent: a good --send gets past the parser to the missing --ta/--ca.
    result = ibepsk("connect", "127.0.0.1:1", "--send", r"GET / HTTP/1.0\r\n\xff gätewäy")
    assert result.returncode == 1 and "nothing would authenticate the server" in result.stderr


def test_replay_store_without_early_data_is_warned_about(tmp_path: Path, ta: TAMasterKey) -> None:
    key_file = tmp_path / "localhost.key"
    keys.write_key_file(key_file, ta.extract("localhost"))
    warning = "ibepsk: warning: --replay-store has no effect without --max-early-data"
    assert warning in ServerProcess("--ibe-key", str(key_file), "--replay-store", "memory:10").stop()
    with_early_data = ServerProcess("--ibe-key", str(key_file), "--replay-store", "memory:10", "--max-early-data", "9")
    assert "warning" not in with_early_data.stop()
    assert "warning" not in ServerProcess("--ibe-key", str(key_file)).stop()

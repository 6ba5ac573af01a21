"""Docs that run: every shell and Python block in README.md, docs/*.md and examples/README.md, as written.

Each document runs in a temporary directory of its own, in one bash process (its own process group),
the way a reader would type it into one terminal: blocks in order, so files, shell variables and
background jobs (``ibepsk serve ... &``) carry over from block to block; everything still running
when the document ends is stopped. ``ibepsk`` and ``python`` on PATH are this Python (so
``-m ibepsk.cli``), ``examples/`` is the repository's, and ``mktemp`` works inside the directory.

- ```sh / ```bash: run; every command must succeed (``set -e``).
- ```console: lines starting ``$ `` are commands (a trailing ``\\`` continues one), each must
  succeed; the other lines are output that must appear (in the command's own output or, as in a
  terminal, in a background job's), compared modulo numbers; ``…`` stands for anything, and a
  word ending in ``…`` for any word.
- ```python: run with this Python, in the document's directory.
- ```toml: parsed.
- ```text: not run (output samples, diagrams, formats).

In the Markdown, an HTML comment on the line before a block changes that:
``<!-- docs-test: skip — why -->`` does not run it (the reason shows in pytest's summary), and
``<!-- docs-test: file NAME -->`` saves it as NAME for later blocks instead of running it.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shlex
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")), "examples/README.md"]
SHELL = {"sh", "bash"}
LANGUAGES = {*SHELL, "console", "python", "toml", "text"}

#: Seconds one command (or block) may take, and output shown after it may take to appear.
STEP_TIMEOUT = 60.0
OUTPUT_TIMEOUT = 15.0

_FENCE = re.compile(r"^(`{3,})(\S*)\s*$")
_DIRECTIVE = re.compile(r"^<!--\s*docs-test:\s*(\w+)\s*(.*?)\s*-->$")
_VARIABLE_PART = re.compile(r"\w*…|\d+(?:\.\d+)?")
_TABLE_SEPARATOR = re.compile(r"^\|(\s*:?-+:?\s*\|)+\s*$")


@dataclass(frozen=True)
class Block:
    document: str
    line: int  # the opening fence's line, 1-based
    language: str
    code: str
    directive: str = ""  # "skip" or "file", from the comment before the block
    argument: str = ""  # the reason, or the file name

    def __str__(self) -> str:
        return f"{self.document}:{self.line}"


def read_blocks(document: str) -> list[Block]:
    blocks: list[Block] = []
    lines = (ROOT / document).read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        end = next((i for i in range(index + 1, len(lines)) if lines[i].strip() == opening.group(1)), None)
        assert end is not None, f"{document}:{index + 1}: unclosed code block"
        directive = _directive_before(lines, index)
        code = "\n".join(lines[index + 1 : end]) + "\n"
        blocks.append(Block(document, index + 1, opening.group(2), code, *directive))
        index = end + 1
    return blocks


def _directive_before(lines: list[str], fence: int) -> tuple[str, str]:
    previous = next((line.strip() for line in reversed(lines[:fence]) if line.strip()), "")
    match = _DIRECTIVE.match(previous)
    if not match:
        return "", ""
    kind, argument = match.groups()
    assert kind in {"skip", "file"}, f"unknown docs-test directive {kind!r} before line {fence + 1}"
    return kind, argument.lstrip("—-: ")


ALL_BLOCKS = [block for document in DOCUMENTS for block in read_blocks(document)]


# --- console transcripts --------------------------------------------------------------------


@dataclass
class Command:
    text: str
    shown: list[str] = field(default_factory=list)  # output lines the document shows after it


def console_commands(block: Block) -> list[Command]:
    commands: list[Command] = []
    continued = False
    for line in block.code.splitlines():
        if continued:
            commands[-1].text += "\n" + line
        elif line.startswith("$ "):
            commands.append(Command(line[2:]))
        else:
            assert commands, f"{block}: output before the first command: {line!r}"
            commands[-1].shown.append(line)
        continued = line.endswith("\\")
    return commands


def output_pattern(line: str) -> re.Pattern[str] | None:
    """What a shown output line must match: numbers vary, ``…`` is anything (None: a line of its own)."""
    text = line.strip()
    if text in {"", "…"}:
        return None
    parts, position = [], 0
    for variable in _VARIABLE_PART.finditer(text):
        parts.append(re.escape(text[position : variable.start()]))
        parts.append(".*" if variable.group().endswith("…") else r"\d+(?:\.\d+)?")
        position = variable.end()
    parts.append(re.escape(text[position:]))
    return re.compile("".join(parts))


def missing_output(shown: list[str], output: str) -> list[str]:
    lines = output.splitlines()
    return [
        line
        for line in shown
        if (pattern := output_pattern(line)) is not None and not any(pattern.search(actual) for actual in lines)
    ]


# --- one terminal per document ----------------------------------------------------------------


class Terminal:
    """bash in its own process group, fed one step at a time; everything it prints goes to one transcript."""

    def __init__(self, work: Path, harness: Path) -> None:
        self.work = work
        self.harness = harness
        self.transcript = harness / "transcript"
        self.steps = 0
        env = {
            **os.environ,
            "PATH": f"{_wrappers(harness / 'bin')}{os.pathsep}{os.environ['PATH']}",
            "PYTHONUNBUFFERED": "1",  # stdout and stderr interleave as they would on a terminal
            "TMPDIR": str(work),
        }
        with self.transcript.open("ab") as errors:  # the shell's own complaints
            self.process = subprocess.Popen(
                ["bash", "--noprofile", "--norc", "-e", "-o", "pipefail"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                cwd=work,
                env=env,
                start_new_session=True,
            )

    def run(self, script: str, where: str) -> None:
        """Run ``script`` in the shell; fail (naming ``where``) if it fails. Background jobs keep running."""
        self.steps += 1
        step = self.harness / f"step{self.steps}.sh"
        step.write_text(script + "\n")
        start = self.transcript.stat().st_size
        command = f"source {shlex.quote(str(step))} </dev/null >>{shlex.quote(str(self.transcript))} 2>&1\necho done\n"
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            self.process.stdin.write(command.encode())
            self.process.stdin.flush()
        except BrokenPipeError:
            pytest.fail(f"{where}: the shell had exited\n{self.output_since(0)}")
        if not _readable(self.process.stdout, STEP_TIMEOUT):
            pytest.fail(f"{where}: still running after {STEP_TIMEOUT:.0f} s:\n{script}\n{self.output_since(start)}")
        if self.process.stdout.readline() != b"done\n":
            status = self.process.wait(timeout=STEP_TIMEOUT)
            pytest.fail(f"{where}: failed (exit status {status}):\n{script}\n--- output:\n{self.output_since(start)}")

    def output_since(self, offset: int) -> str:
        with self.transcript.open("rb") as transcript:
            transcript.seek(offset)
            return transcript.read().decode("utf-8", "replace")

    def close(self) -> None:
        """Stop whatever the document left running (servers in the background), and the shell."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
            deadline = time.monotonic() + 10
            while _running_in_group(self.process.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if not _running_in_group(self.process.pid):
                break
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()


def _wrappers(directory: Path) -> Path:
    directory.mkdir()
    for name, command in (
        ("ibepsk", f"{shlex.quote(sys.executable)} -m ibepsk.cli"),
        ("python", shlex.quote(sys.executable)),
    ):
        wrapper = directory / name
        wrapper.write_text(f'#!/bin/sh\nexec {command} "$@"\n')
        wrapper.chmod(0o755)
    return directory


def _readable(pipe: object, timeout: float) -> bool:
    readable, _, _ = select.select([pipe], [], [], timeout)
    return bool(readable)


def _running_in_group(pgid: int) -> bool:
    """Whether a process of the group still runs (zombies waiting for init to reap them do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # pid (comm) state ppid pgrp ...: comm may contain spaces, so split after its closing parenthesis.
            state, _, group = stat.read_text().rpartition(")")[2].split()[:3]
            if int(group) == pgid and state != "Z":
                return True
    return False


# --- running a document ---------------------------------------------------------------------------


@pytest.fixture()
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    work, harness = tmp_path / "work", tmp_path / "harness"
    work.mkdir()
    harness.mkdir()
    (work / "examples").symlink_to(ROOT / "examples")
    shell = Terminal(work, harness)
    try:
        yield shell
    finally:
        shell.close()


def run_block(block: Block, terminal: Terminal) -> None:
    if block.directive == "file":
        assert block.argument, f"{block}: docs-test: file needs a name"
        (terminal.work / block.argument).write_text(block.code)
    elif block.language in SHELL:
        terminal.run(block.code, str(block))
    elif block.language == "python":
        script = terminal.harness / f"line{block.line}.py"
        script.write_text("\n" * block.line + block.code)  # a traceback's line numbers are the document's
        terminal.run(f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}", str(block))
    elif block.language == "console":
        for command in console_commands(block):
            run_console_command(command, block, terminal)
    elif block.language == "toml":
        try:
            tomllib.loads(block.code)
        except tomllib.TOMLDecodeError as exc:
            pytest.fail(f"{block}: not TOML: {exc}")


def run_console_command(command: Command, block: Block, terminal: Terminal) -> None:
    start = terminal.transcript.stat().st_size
    terminal.run(command.text, f"{block}: $ {command.text}")
    # What a command shows may come from a background job (a server's log line), a little later.
    deadline = time.monotonic() + OUTPUT_TIMEOUT
    while missing := missing_output(command.shown, terminal.output_since(start)):
        if time.monotonic() > deadline:
            pytest.fail(
                f"{block}: $ {command.text}\nshown in the document but not printed: {missing}\n"
                f"--- printed:\n{terminal.output_since(start)}"
            )
        time.sleep(0.1)


RUNNABLE_DOCUMENTS = sorted(
    {b.document for b in ALL_BLOCKS if b.language in LANGUAGES - {"text"} and b.directive != "skip"}
)


@pytest.mark.parametrize("document", RUNNABLE_DOCUMENTS)
def test_document_runs(document: str, terminal: Terminal) -> None:
    taken = [port for port in ports_used(document) if not _free(port)]
    assert not taken, f"{document} runs servers on fixed ports, and another process holds {taken}"
    for block in read_blocks(document):
        if block.directive != "skip":
            run_block(block, terminal)
    transcript = terminal.output_since(0)
    assert "Traceback" not in transcript, f"{document}: a traceback was printed:\n{transcript}"


def ports_used(document: str) -> set[int]:
    """The fixed ports on 127.0.0.1 the document's blocks name (the docs show what a reader would type)."""
    return {
        int(port)
        for block in read_blocks(document)
        if block.directive != "skip"
        for port in re.findall(r"127\.0\.0\.1:(\d+)", block.code)
        if int(port)
    }


def _free(port: int) -> bool:
    try:
        socket.create_server(("127.0.0.1", port)).close()  # SO_REUSEADDR, as the servers in the docs bind
    except OSError:
        return False
    return True


def test_every_block_says_what_it_is() -> None:
    """An untagged block would be neither run nor marked as output: each has a known language."""
    unknown = [f"{block}: {block.language or '(none)'}" for block in ALL_BLOCKS if block.language not in LANGUAGES]
    assert not unknown, f"code blocks need one of {sorted(LANGUAGES)}: {unknown}"


@pytest.mark.parametrize("block", [b for b in ALL_BLOCKS if b.directive == "skip"], ids=str)
def test_skipped_block(block: Block) -> None:
    """Blocks the test does not run, listed in pytest's summary with the reason the document gives."""
    assert block.argument, f"{block}: docs-test: skip needs a reason"
    assert block.language in LANGUAGES - {"text"}, f"{block}: only runnable blocks need a skip"
    pytest.skip(f"{block} not run: {block.argument}")


@pytest.mark.parametrize("document", DOCUMENTS)
def test_tables_are_whole(document: str) -> None:
    """Each table row belongs to a table (a header and its separator) and has the header's number of cells."""
    problems = []
    for first, rows in table_runs(document):
        if len(rows) < 2 or not _TABLE_SEPARATOR.match(rows[1]):
            problems.append(f"{document}:{first}: a table row outside a table: {rows[0]}")
            continue
        width = len(_table_cells(rows[0]))
        problems += [
            f"{document}:{first + offset}: {len(_table_cells(row))} cells, the header has {width}"
            for offset, row in enumerate(rows)
            if len(_table_cells(row)) != width
        ]
    assert not problems, "\n".join(problems)


def table_runs(document: str) -> Iterator[tuple[int, list[str]]]:
    """(first line number, lines) of each run of consecutive ``|`` lines outside code blocks."""
    fenced, run, first = False, [], 0
    for number, line in enumerate([*(ROOT / document).read_text(encoding="utf-8").splitlines(), ""], 1):
        fenced ^= bool(_FENCE.match(line))
        if line.startswith("|") and not fenced:
            first = first if run else number
            run.append(line)
        elif run:
            yield first, run
            run = []


def _table_cells(row: str) -> list[str]:
    return re.split(r"(?<!\\)\|", row.strip()[1:-1])


def test_console_output_patterns() -> None:
    """The comparison is loose where output varies (numbers, ``…``) and strict elsewhere."""
    pattern = output_pattern("connection to 127.0.0.1:4433: TLS 1.3 mode=ibe-psk cipher=aes128gcm 31.5ms")
    assert pattern is not None
    assert pattern.search("connection to 127.0.0.1:4433: TLS 1.3 mode=ibe-psk cipher=aes128gcm 9.0ms")
    assert not pattern.search("connection to 127.0.0.1:4433: TLS 1.3 mode=resumption cipher=aes128gcm 9.0ms")
    fingerprint = output_pattern("  TA fingerprint: 6c1f…")
    assert fingerprint is not None and fingerprint.search("  TA fingerprint: 4e97048be727")
    assert output_pattern("…") is None
    assert missing_output(["a 1", "…", "b"], "a 22\nc\n") == ["b"]

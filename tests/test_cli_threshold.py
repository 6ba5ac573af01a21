"""A threshold TA through the real command line: ``ta init --shares``, ``extract --share``, ``combine``, ``refresh``,
and the combined key in a real ``ibepsk serve`` that a real ``ibepsk connect`` reaches."""

from __future__ import annotations

import itertools
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from test_cli_endpoints import ServerProcess
from test_cli_ta import assert_one_line_error, assert_usage_error, ibepsk

IDENTITY = "localhost"


def run_ok(*args: str) -> str:
    result = ibepsk(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def init_threshold_ta(directory: Path, threshold: int = 2, shares: int = 3) -> Path:
    run_ok("ta", "init", str(directory), "--shares", str(shares), "--threshold", str(threshold))
    return directory


def extract(ta: Path, index: int, output: Path, identity: str = IDENTITY) -> Path:
    run_ok("ta", "extract", "--share", str(ta / f"share-{index}.key"), identity, "-o", str(output))
    return output


@pytest.fixture(scope="module")
def ta(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init_threshold_ta(tmp_path_factory.mktemp("threshold") / "ta")


@pytest.fixture(scope="module")
def partials(ta: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    directory = tmp_path_factory.mktemp("partials")
    return {index: extract(ta, index, directory / f"partial-{index}.key") for index in (1, 2, 3)}


def combine(ta: Path, output: Path, *partials: Path) -> subprocess.CompletedProcess[str]:
    return ibepsk("ta", "combine", "--ta", str(ta / "threshold.pem"), *map(str, partials), "-o", str(output))


def test_init_writes_public_files_and_private_shares_and_no_master(ta: Path) -> None:
    names = sorted(path.name for path in ta.iterdir())
    assert names == ["public.pem", "share-1.key", "share-2.key", "share-3.key", "threshold.pem"]
    for name in names:
        mode = 0o600 if name.endswith(".key") else 0o644
        assert stat.S_IMODE((ta / name).stat().st_mode) == mode, name
        shown = run_ok("ta", "show", str(ta / name))
        assert "master" not in shown
    assert "TA key share 2 of 3" in run_ok("ta", "show", str(ta / "share-2.key"), "--ta", str(ta / "threshold.pem"))
    assert "any 2 of 3 shares issue keys" in run_ok("ta", "show", str(ta / "threshold.pem"))


def test_every_pair_of_shares_gives_the_same_key_file(ta: Path, partials: dict[int, Path], tmp_path: Path) -> None:
    contents = set()
    for number, pair in enumerate(itertools.permutations((1, 2, 3), 2)):
        output = tmp_path / f"combined-{number}.key"
        result = combine(ta, output, *(partials[index] for index in pair))
        assert result.returncode == 0, result.stderr
        assert stat.S_IMODE(output.stat().st_mode) == 0o600
        contents.add(output.read_bytes())
    assert len(contents) == 1
    shown = run_ok("ta", "show", str(output), "--ta", str(ta / "public.pem"))
    assert "identity key" in shown and "verified against the given TA public parameters" in shown


def test_combined_key_serves_a_client_that_knows_only_the_public_parameters(
    ta: Path, partials: dict[int, Path], tmp_path: Path
) -> None:
    key = tmp_path / "localhost.key"
    assert combine(ta, key, partials[3], partials[1]).returncode == 0
    server = ServerProcess("--ibe-key", str(key), "--ta", str(ta / "threshold.pem"))
    try:
        for public in ("public.pem", "threshold.pem"):  # the threshold file serves as public parameters too
            result = ibepsk(
                "connect", f"127.0.0.1:{server.port}", "--ta", str(ta / public), "--identity", IDENTITY,
                "--send", "hello threshold",
            )  # fmt: skip
            assert result.returncode == 0, result.stderr
            assert "mode=ibe-psk identity=localhost" in result.stderr
            assert result.stdout == "hello threshold"
    finally:
        log = server.stop()
    assert "Traceback" not in log


def test_refresh_keeps_the_ta_public_key_and_retires_old_shares(tmp_path: Path) -> None:
    ta = init_threshold_ta(tmp_path / "ta")
    before = {path.name: path.read_bytes() for path in ta.iterdir()}
    old_partial = extract(ta, 1, tmp_path / "old-1.key")
    assert combine(ta, tmp_path / "before.key", old_partial, extract(ta, 2, tmp_path / "old-2.key")).returncode == 0
    stolen = tmp_path / "stolen-share-3.key"
    shutil.copy(ta / "share-3.key", stolen)

    assert "generation 1" in run_ok("ta", "refresh", str(ta))
    after = {path.name: path.read_bytes() for path in ta.iterdir()}
    assert after.keys() == before.keys()
    assert after["public.pem"] == before["public.pem"]
    assert all(after[name] != before[name] for name in after if name != "public.pem")
    assert "refresh generation: 1" in run_ok("ta", "show", str(ta / "threshold.pem"))

    new = [extract(ta, index, tmp_path / f"new-{index}.key") for index in (2, 3)]
    assert combine(ta, tmp_path / "after.key", *new).returncode == 0
    assert (tmp_path / "after.key").read_bytes() == (tmp_path / "before.key").read_bytes()

    output = tmp_path / "mixed.key"
    assert_one_line_error(combine(ta, output, old_partial, new[0]), "shares from different refresh generations")
    leaked = tmp_path / "leaked.key"
    run_ok("ta", "extract", "--share", str(stolen), IDENTITY, "-o", str(leaked))
    assert_one_line_error(combine(ta, output, new[0], leaked), "shares from different refresh generations")
    assert not output.exists()


def test_refresh_needs_every_share_and_changes_nothing_without(tmp_path: Path) -> None:
    ta = init_threshold_ta(tmp_path / "ta")
    (ta / "share-2.key").unlink()
    before = {path.name: path.read_bytes() for path in ta.iterdir()}
    assert_one_line_error(ibepsk("ta", "refresh", str(ta)), "share-2.key: no such file")
    assert {path.name: path.read_bytes() for path in ta.iterdir()} == before


def test_refresh_refuses_a_share_under_another_name(tmp_path: Path) -> None:
    ta = init_threshold_ta(tmp_path / "ta")
    shutil.copy(ta / "share-1.key", ta / "share-2.key")
    assert_one_line_error(ibepsk("ta", "refresh", str(ta)), "share-2.key: holds share 1")


def test_extract_with_epoch_from_a_share(ta: Path, tmp_path: Path) -> None:
    output = tmp_path / "epoch.key"
    result = ibepsk(
        "ta", "extract", "--share", str(ta / "share-1.key"), IDENTITY, "--epoch", "day", "--at", "2026-12-01",
        "-o", str(output),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "wrote partial key (share 1) for 'localhost|2026-12-01'" in result.stdout


# --- bad input: one line, non-zero exit, nothing written ---------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        (("--shares", "3", "--threshold", "4"), "threshold 4 is more than the 3 shares"),
        (("--shares", "256", "--threshold", "2"), "256 shares is more than 255"),
        (("--shares", "3", "--threshold", "1"), "threshold 1 is below 2"),
        (("--shares", "3"), "--shares and --threshold go together"),
        (("--threshold", "2"), "--shares and --threshold go together"),
    ],
)
def test_init_refuses_impossible_sharings(tmp_path: Path, arguments: tuple[str, ...], fragment: str) -> None:
    assert_one_line_error(ibepsk("ta", "init", str(tmp_path / "ta"), *arguments), fragment)
    assert not (tmp_path / "ta").exists()


def test_init_refuses_to_overwrite_shares(ta: Path) -> None:
    before = (ta / "share-1.key").read_bytes()
    assert_one_line_error(ibepsk("ta", "init", str(ta), "--shares", "3", "--threshold", "2"), "already exists")
    assert (ta / "share-1.key").read_bytes() == before


def test_extract_takes_a_share_or_a_master_not_both(ta: Path, tmp_path: Path) -> None:
    result = ibepsk(
        "ta", "extract", "--share", str(ta / "share-1.key"), "--master", str(ta), "x", "-o", str(tmp_path / "o")
    )
    assert_usage_error(result, "not allowed with argument")
    assert_usage_error(ibepsk("ta", "extract", "x", "-o", str(tmp_path / "o")), "one of the arguments")
    assert not (tmp_path / "o").exists()


def _corrupted_share(ta: Path, directory: Path) -> Path:
    lines = (ta / "share-1.key").read_text().splitlines()
    lines[-2] = lines[-2][:3] + ("A" if lines[-2][3] != "A" else "B") + lines[-2][4:]
    path = directory / "corrupted-share.key"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_bad_share_files_for_extract(ta: Path, partials: dict[int, Path], tmp_path: Path) -> None:
    output = tmp_path / "out.key"
    for share, fragment in (
        (tmp_path / "missing.key", "missing.key: no such file"),
        (_corrupted_share(ta, tmp_path), "does not match its Share-Fingerprint header"),
        (partials[1], "expected a TA key share, found a partial identity key"),
        (ta / "public.pem", "expected a TA key share, found TA public parameters"),
    ):
        assert_one_line_error(ibepsk("ta", "extract", "--share", str(share), IDENTITY, "-o", str(output)), fragment)
        assert not output.exists()


def test_a_share_used_as_public_parameters(ta: Path, partials: dict[int, Path], tmp_path: Path) -> None:
    output = tmp_path / "out.key"
    result = ibepsk(
        "ta", "combine", "--ta", str(ta / "share-1.key"), str(partials[1]), str(partials[2]), "-o", str(output)
    )
    assert_one_line_error(result, "expected threshold TA public parameters, found a TA key share")
    result = ibepsk(
        "ta", "combine", "--ta", str(ta / "public.pem"), str(partials[1]), str(partials[2]), "-o", str(output)
    )
    assert_one_line_error(result, "expected threshold TA public parameters, found TA public parameters")
    assert_one_line_error(ibepsk("connect", "127.0.0.1:1", "--ta", str(ta / "share-1.key")), "found a TA key share")
    assert not output.exists()


def _with_identity(partial: Path, identity: str, directory: Path) -> Path:
    path = directory / f"relabelled-{partial.name}"
    path.write_text(partial.read_text().replace(f"Identity: {IDENTITY}\n", f"Identity: {identity}\n"))
    return path


def test_bad_partial_keys_for_combine(ta: Path, partials: dict[int, Path], tmp_path: Path) -> None:
    other_ta = init_threshold_ta(tmp_path / "other")
    foreign = extract(other_ta, 2, tmp_path / "foreign-2.key")
    other_identity = extract(ta, 2, tmp_path / "other-identity-2.key", "gateway.example")
    truncated = tmp_path / "truncated.key"
    truncated.write_text(partials[2].read_text()[:200])
    output = tmp_path / "out.key"
    for given, fragment in (
        ((partials[1],), "1 partial key(s) given; this TA needs 2"),
        ((partials[1], partials[1]), "partial-1.key (index 1) repeats the share index of partial-1.key (index 1)"),
        ((partials[1], foreign), "foreign-2.key (index 2) is from TA"),
        ((partials[1], other_identity), "partial keys for different identities"),
        ((partials[1], tmp_path / "missing.key"), "missing.key: no such file"),
        ((partials[1], truncated), "truncated.key: truncated file"),
        ((partials[1], ta / "share-2.key"), "expected a partial identity key, found a TA key share"),
        (
            (_with_identity(partials[1], "evil.example", tmp_path), partials[2]),
            "partial keys for different identities",
        ),
        (
            (
                _with_identity(partials[1], "evil.example", tmp_path),
                _with_identity(partials[2], "evil.example", tmp_path),
            ),
            "partial key check failed for relabelled-partial-1.key (index 1), relabelled-partial-2.key (index 2): "
            "not issued for 'evil.example'",
        ),
    ):
        assert_one_line_error(combine(ta, output, *given), fragment)
        assert not output.exists()


def test_combine_refuses_to_overwrite(ta: Path, partials: dict[int, Path], tmp_path: Path) -> None:
    output = tmp_path / "existing.key"
    output.write_text("keep me")
    assert_one_line_error(combine(ta, output, partials[1], partials[2]), "already exists")
    assert output.read_text() == "keep me"


def test_bench_ibe_reports_partial_extraction_and_combination() -> None:
    result = ibepsk("bench", "ibe", "--runs", "1", "--iterations", "2")
    assert result.returncode == 0, result.stderr
    rows = {line[:36].strip(): line[36:].split() for line in result.stdout.splitlines()}
    for name in ("threshold: partial key s_i·H1(ID)", "threshold: combine 2 of 3, checked"):
        median, ratio, *_ = rows[name]
        assert float(median) > 0 and float(ratio) > 0

"""A lattice TA through the real command line: ``ibepsk ta init --scheme lattice``, extract, show, import, bench."""

from __future__ import annotations

import dataclasses
import stat
from pathlib import Path

import pytest

from ibepsk import keys
from ibepsk.ibe.lattice import LatticeDecapsulator, LatticeEncapsulator, TiigerLatticeDecapsulator

from pq_support import demo_secret_key, pq_vectors
from test_cli_ta import assert_one_line_error, ibepsk


@pytest.fixture(scope="module")
def lattice_ta(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("lattice-ta")
    result = ibepsk("ta", "init", "--scheme", "lattice", str(directory))
    assert result.returncode == 0, result.stderr
    return directory


@pytest.fixture(scope="module")
def localhost_key(lattice_ta: Path) -> Path:
    path = lattice_ta / "localhost.key"
    result = ibepsk("ta", "extract", "--master", str(lattice_ta), "localhost", "-o", str(path))
    assert result.returncode == 0, result.stderr
    return path


def integers_file(path: Path, values: list[int]) -> Path:
    path.write_text("{" + ", ".join(map(str, values)) + "}\n")  # as a C initializer in TiigerTLS's source
    return path


@pytest.fixture
def demo_files(tmp_path: Path) -> tuple[Path, Path]:
    stored = pq_vectors()["ta_public_key"]["stored_ntt_montgomery"]
    return integers_file(tmp_path / "H.txt", stored), integers_file(tmp_path / "s.txt", demo_secret_key())


def test_init_writes_a_lattice_master_and_public_key(lattice_ta: Path) -> None:
    assert stat.S_IMODE((lattice_ta / "master.key").stat().st_mode) == 0o600
    assert "Scheme: LATTICE-NTRU1024-TIIGER" in (lattice_ta / "public.pem").read_text()
    master = keys.load_ta_master(lattice_ta / "master.key")
    assert isinstance(master, keys.LatticeTAMasterKey)
    assert keys.load_lattice_public_params(lattice_ta / "public.pem") == master.public


def test_extracted_key_works_end_to_end(lattice_ta: Path, localhost_key: Path) -> None:
    assert stat.S_IMODE(localhost_key.stat().st_mode) == 0o600
    shown = ibepsk("ta", "show", str(localhost_key), "--ta", str(lattice_ta / "public.pem"))
    assert shown.returncode == 0, shown.stderr
    assert "lattice identity key" in shown.stdout and "verified" in shown.stdout
    public = keys.load_lattice_public_params(lattice_ta / "public.pem")
    key = keys.load_lattice_identity_key(localhost_key, public)
    sent = LatticeEncapsulator("localhost", public.h).encapsulate()
    assert LatticeDecapsulator("localhost", key.key, public.h).decapsulate(sent.ciphertext) == sent.psk


def test_show_never_prints_the_secrets(lattice_ta: Path, localhost_key: Path) -> None:
    master = keys.load_ta_master(lattice_ta / "master.key")
    assert isinstance(master, keys.LatticeTAMasterKey)
    secrets = [
        (lattice_ta / "master.key", master.trapdoor.f),
        (localhost_key, keys.load_lattice_identity_key(localhost_key).key),
    ]
    for path, secret in secrets:
        shown = ibepsk("ta", "show", str(path))
        assert shown.returncode == 0, shown.stderr
        assert "not shown" in shown.stdout
        assert ", ".join(map(str, secret[:4])) not in shown.stdout


def test_import_of_tiiger_demo_keys(tmp_path: Path, demo_files: tuple[Path, Path]) -> None:
    stored, secret = demo_files
    out = tmp_path / "demo"
    result = ibepsk(
        "ta", "import", "--scheme", "lattice", "--public-ints", str(stored),
        "--identity-key-ints", str(secret), "--identity", "localhost", "-o", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    public = keys.load_lattice_public_params(out / "public.pem")
    assert public.fingerprint == pq_vectors()["ta_public_key"]["stored_sha256_be4"]
    key = keys.load_lattice_identity_key(out / "localhost.key", public)
    decapsulator = TiigerLatticeDecapsulator("localhost", key.key, public.h)
    for vector in pq_vectors()["encapsulations"]:
        assert decapsulator.decapsulate(bytes.fromhex(vector["ciphertext"])).hex() == vector["key"]


def test_bench_has_lattice_ta_rows() -> None:
    result = ibepsk("bench", "ibe", "--runs", "1", "--iterations", "1")
    assert result.returncode == 0, result.stderr
    rows = {line[:36].strip(): line[36:].split() for line in result.stdout.splitlines()}
    assert rows["lattice TA setup (ta init)"][2:] == ["60000000", "met"]
    assert rows["lattice TA extract one key"][2:] == ["1000000", "met"]
    assert "lattice TA keys: 200 encapsulations to extracted keys, 0 decapsulation failures" in result.stdout


# --- bad input: one line each, nothing written ---------------------------------------------------


def test_threshold_lattice_ta_is_refused(tmp_path: Path) -> None:
    result = ibepsk("ta", "init", "--scheme", "lattice", "--shares", "3", "--threshold", "2", str(tmp_path / "t"))
    assert_one_line_error(result, "Boneh–Franklin only")
    assert not (tmp_path / "t").exists()


def test_extract_refuses_to_overwrite(lattice_ta: Path, localhost_key: Path) -> None:
    before = localhost_key.read_text()
    result = ibepsk("ta", "extract", "--master", str(lattice_ta), "localhost", "-o", str(localhost_key))
    assert_one_line_error(result, "already exists")
    assert localhost_key.read_text() == before


def write_raw(path: Path, key: keys.KeyObject) -> Path:
    """A key file written without the checks its constructors make: what a corrupted or forged file holds."""
    path.write_text(key.to_pem())
    return path


def test_master_with_broken_equation_is_refused(lattice_ta: Path, tmp_path: Path) -> None:
    master = keys.load_ta_master(lattice_ta / "master.key")
    assert isinstance(master, keys.LatticeTAMasterKey)
    big_f = (master.trapdoor.big_f[0] + 1, *master.trapdoor.big_f[1:])
    broken = dataclasses.replace(master, trapdoor=dataclasses.replace(master.trapdoor, big_f=big_f))
    path = write_raw(tmp_path / "master.key", broken)
    assert_one_line_error(ibepsk("ta", "show", str(path)), "f·G − g·F is not q")
    assert_one_line_error(ibepsk("ta", "extract", "--master", str(path), "x", "-o", str(tmp_path / "x")), "is not q")
    assert not (tmp_path / "x").exists()


def test_key_outside_int16_is_refused(localhost_key: Path, tmp_path: Path) -> None:
    key = keys.load_lattice_identity_key(localhost_key)
    path = write_raw(tmp_path / "wide.key", dataclasses.replace(key, key=(-32768, *key.key[1:])))
    assert_one_line_error(ibepsk("ta", "show", str(path)), "integers in ±32767")


def test_key_for_another_identity_fails_verification(lattice_ta: Path, localhost_key: Path, tmp_path: Path) -> None:
    key = keys.load_lattice_identity_key(localhost_key)
    path = write_raw(tmp_path / "other.key", dataclasses.replace(key, identity="example.com"))
    result = ibepsk("ta", "show", str(path), "--ta", str(lattice_ta / "public.pem"))
    assert_one_line_error(result, "does not belong to identity 'example.com'")


def test_lattice_key_against_a_bf_ta_is_refused(localhost_key: Path, tmp_path: Path) -> None:
    bf = tmp_path / "bf"
    assert ibepsk("ta", "init", str(bf)).returncode == 0
    result = ibepsk("ta", "show", str(localhost_key), "--ta", str(bf / "public.pem"))
    assert_one_line_error(result, "expected lattice TA public parameters, found TA public parameters")


def test_import_refuses_a_key_of_another_identity(tmp_path: Path, demo_files: tuple[Path, Path]) -> None:
    stored, secret = demo_files
    result = ibepsk(
        "ta", "import", "--scheme", "lattice", "--public-ints", str(stored),
        "--identity-key-ints", str(secret), "--identity", "example.com", "-o", str(tmp_path / "out"),
    )  # fmt: skip
    assert_one_line_error(result, "does not belong to identity 'example.com'")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("content", "fragment"),
    [("1, 2, 3", "1024 integers in [0, q)"), ("{1, two, 3}", "not a list of decimal integers")],
)
def test_import_refuses_a_bad_public_key(tmp_path: Path, content: str, fragment: str) -> None:
    (tmp_path / "H.txt").write_text(content)
    result = ibepsk(
        "ta", "import", "--scheme", "lattice", "--public-ints", str(tmp_path / "H.txt"), "-o", str(tmp_path)
    )
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "public.pem").exists()


def test_import_refuses_mixed_schemes(tmp_path: Path, demo_files: tuple[Path, Path]) -> None:
    result = ibepsk("ta", "import", "--public-ints", str(demo_files[0]), "-o", str(tmp_path / "out"))
    assert_one_line_error(result, "imported with --public-hex")

"""Key objects and their files: round trips, checks on load, no secrets shown."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

from ibepsk import keys


@pytest.fixture(scope="module")
def ta() -> keys.TAMasterKey:
    return keys.TAMasterKey.generate()


def test_files_round_trip(tmp_path: Path, ta: keys.TAMasterKey) -> None:
    identity_key = ta.extract("gateway.example")
    for name, obj in (("m.key", ta), ("p.pem", ta.public), ("i.key", identity_key)):
        keys.write_key_file(tmp_path / name, obj)
        assert keys.read_key_file(tmp_path / name) == obj


def test_secret_files_are_private(tmp_path: Path, ta: keys.TAMasterKey) -> None:
    keys.write_key_file(tmp_path / "m.key", ta)
    keys.write_key_file(tmp_path / "p.pem", ta.public)
    assert stat.S_IMODE((tmp_path / "m.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "p.pem").stat().st_mode) == 0o644


def test_existing_file_is_not_overwritten(tmp_path: Path, ta: keys.TAMasterKey) -> None:
    target = tmp_path / "m.key"
    target.write_text("precious")
    with pytest.raises(FileExistsError):
        keys.write_key_file(target, ta)
    assert target.read_text() == "precious"
    keys.write_key_file(target, ta, force=True)
    assert keys.read_key_file(target) == ta
    assert [p.name for p in tmp_path.iterdir()] == ["m.key"], "no temporary file may be left behind"


def test_secrets_never_in_text_output(ta: keys.TAMasterKey) -> None:
    identity_key = ta.extract("gateway.example")
    secret_hex = ta.secret.to_bytes(32, "big").hex()
    for text in (repr(ta), ta.describe(), repr(identity_key), identity_key.describe()):
        assert secret_hex not in text
        assert identity_key.key.hex() not in text


def test_identity_key_verifies_against_its_ta(ta: keys.TAMasterKey) -> None:
    ta.extract("gateway.example").verify(ta.public)


def test_identity_key_from_another_ta_is_refused(ta: keys.TAMasterKey) -> None:
    other = keys.TAMasterKey.generate()
    with pytest.raises(keys.KeyMismatchError, match="issued by TA"):
        other.extract("gateway.example").verify(ta.public)


def test_identity_key_for_another_identity_is_refused(ta: keys.TAMasterKey) -> None:
    forged = keys.IdentityKey("alice.example", ta.extract("bob.example").key, ta.public.fingerprint)
    with pytest.raises(keys.KeyMismatchError, match=r"does not belong to identity 'alice\.example'"):
        forged.verify(ta.public)


def test_import_of_tiiger_demo_keys(vectors: dict[str, Any]) -> None:
    public = keys.TAPublicParams.from_bytes(bytes.fromhex(vectors["ta_public_key_g1"]))
    key = keys.IdentityKey.from_bytes("localhost", bytes.fromhex(vectors["identity_key_g2"]), public)
    assert key.ta_fingerprint == public.fingerprint


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda t: t[: len(t) // 2], "truncated"),
        (lambda t: t.replace("Format: 1", "Format: 9"), "unsupported format"),
        (lambda t: t.replace("BF-BLS12381-TIIGER", "BF-BN254"), "unsupported scheme"),
        (lambda t: t.replace("IDENTITY KEY", "SOMETHING ELSE"), "unknown key file type"),
        (lambda t: "hello\n", "not an ibepsk key file"),
        (lambda t: t.replace("Identity: gateway.example\n", ""), "missing header"),
    ],
)
def test_malformed_files_are_refused(tmp_path: Path, ta: keys.TAMasterKey, mangle: Any, message: str) -> None:
    path = tmp_path / "i.key"
    path.write_text(mangle(ta.extract("gateway.example").to_pem()))
    with pytest.raises(keys.KeyFileError, match=message):
        keys.read_key_file(path)


def test_corrupted_body_is_refused(tmp_path: Path, ta: keys.TAMasterKey) -> None:
    lines = ta.to_pem().splitlines()
    body_line = lines.index("") + 1
    lines[body_line] = ("A" if lines[body_line][0] != "A" else "B") + lines[body_line][1:]
    path = tmp_path / "m.key"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(keys.KeyFileError, match="does not match its TA-Fingerprint"):
        keys.read_key_file(path)


def test_wrong_kind_is_named(tmp_path: Path, ta: keys.TAMasterKey) -> None:
    keys.write_key_file(tmp_path / "p.pem", ta.public)
    with pytest.raises(keys.KeyFileError, match="expected an identity key, found TA public parameters"):
        keys.load_identity_key(tmp_path / "p.pem")

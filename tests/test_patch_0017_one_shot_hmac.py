"""patches/0017: tlslite-ng's key schedule builds an hmac object per HMAC (and one HKDF block too many)."""

from __future__ import annotations

from pathlib import Path

from patch_support import patched_tlslite, run_python

# RFC 8448 §3 (simple 1-RTT handshake): the early secret and Derive-Secret(early secret, "derived", "").
SCENARIO = """
    from types import SimpleNamespace
    from tlslite import HandshakeSettings
    from tlslite.utils import cryptomath
    from patch_harness import server_handshake_outcome

    early_secret = bytearray.fromhex("33ad0a1c607ec03b09e6cd9893680ce210adf300aa1f2660e1b22e10f170f92a")
    derived = cryptomath.derive_secret(early_secret, bytearray(b"derived"), None, "sha256")
    assert derived.hex() == "6f2615a108c702c5678f54fc9dbab69716c076189c48250cebeac3576c3611ba", derived.hex()

    objects = []  # hmac objects the key schedule builds from here on
    stock_new = cryptomath.hmac.new
    cryptomath.hmac = SimpleNamespace(new=lambda *args: objects.append(1) or stock_new(*args))
    settings = HandshakeSettings()
    settings.pskConfigs = [(bytearray(b"id"), bytearray(32), "sha256")]
    print(server_handshake_outcome(settings, settings), len(objects))
"""


def _outcome(path_entry: Path | None = None) -> tuple[str, int]:
    result = run_python(SCENARIO, path_entry)
    words = result.stdout.split()
    assert len(words) == 2, result.stderr
    return words[0], int(words[1])


def test_stock_tlslite_builds_an_hmac_object_per_hmac() -> None:
    outcome, hmac_objects = _outcome()
    assert outcome == "ok"
    assert hmac_objects > 50  # both sides' key schedule, one object per HMAC


def test_patch_computes_the_same_secrets_in_one_call_each(tmp_path: Path) -> None:
    outcome, hmac_objects = _outcome(patched_tlslite("0017-cryptomath-one-shot-hmac.patch", tmp_path))
    assert (outcome, hmac_objects) == ("ok", 0)

"""``ibepsk bench ibe`` reports both lattice KEMs on every ring installed, the default ring against the 2 ms target."""

from __future__ import annotations

from ibepsk.ibe._ring import available_rings

from test_cli_ta import ibepsk


def test_bench_ibe_has_lattice_rows() -> None:
    result = ibepsk("bench", "ibe", "--runs", "1", "--iterations", "2")
    assert result.returncode == 0, result.stderr
    rows = {line[:36].strip(): line[36:].split() for line in result.stdout.splitlines()}
    assert "decapsulate" in rows, "the Boneh–Franklin rows stay"
    for index, ring in enumerate(available_rings()):
        for operation in ("encapsulate", "decapsulate"):
            for scheme in ("Tiiger", "sound"):
                cells = rows[f"lattice {operation} ({scheme}) {ring}"]
                assert float(cells[0]) > 0
                assert (cells[2] == "2000") == (index == 0), "the default ring carries the target"

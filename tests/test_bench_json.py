"""``ibepsk bench … --json FILE``: the figures as issue 12 keys them, and the same-run ratio targets."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from test_cli_ta import assert_one_line_error, ibepsk

HANDSHAKES = {"certificate", "certificate_x25519", "external_psk", "ibe_psk", "ibe_psk_pha", "resumption"}
WITH_SSL = {"certificate", "certificate_x25519", "resumption"}  # Python 3.11's ssl module has no PSK API


def _assert_cpu(figures: Any) -> None:
    assert set(figures) == {"client_ms", "server_ms"}
    assert all(isinstance(v, float) and v > 0 for v in figures.values()), figures


def test_bench_tls_json_has_every_figure(tmp_path: Path) -> None:
    output, plot = tmp_path / "tls.json", tmp_path / "tls.png"
    with_plot = ("--plot", str(plot)) if importlib.util.find_spec("matplotlib") else ()
    result = ibepsk("bench", "tls", "--runs", "1", "--capacity-seconds", "0.3", "--json", str(output), *with_plot)
    assert result.returncode == 0, result.stderr
    assert plot.exists() == bool(with_plot), "the plot (handshakes, ratios, capacity) is drawn when it can be"
    data = json.loads(output.read_text())
    assert set(data) == {"handshakes", "bulk", "capacity", "machine"}
    assert set(data["handshakes"]) == HANDSHAKES
    for name, sides in data["handshakes"].items():
        assert set(sides) == {"ibepsk", "stock", "ssl"}
        _assert_cpu(sides["ibepsk"])
        _assert_cpu(sides["stock"])
        if name in WITH_SSL:
            _assert_cpu(sides["ssl"])
        else:
            assert sides["ssl"] is None
    bulk = data["bulk"]
    assert set(bulk) == {"aes128gcm", "chacha20-poly1305", "ssl_mb_s"}
    assert bulk["ssl_mb_s"] > 0
    for cipher in ("aes128gcm", "chacha20-poly1305"):
        assert set(bulk[cipher]) == {"ibepsk_mb_s", "stock_mb_s"}
        assert bulk[cipher]["ibepsk_mb_s"] > bulk[cipher]["stock_mb_s"] > 0
    assert [row["clients"] for row in data["capacity"]] == [1, 8, 64]
    assert all(row["handshakes_per_second"] > 0 and row["server_cpu_ms"] > 0 for row in data["capacity"])
    assert data["machine"]["cores"] >= 1 and data["machine"]["pairing_backend"]
    # The printed table quotes ratios to ssl and judges the targets on same-run ratios, not absolute figures.
    assert "ibepsk/ssl" in result.stdout
    ratio_lines = [line.strip() for line in result.stdout.splitlines() if "x, target" in line]
    assert len(ratio_lines) == 3, result.stdout
    assert all(line.endswith((": met", ": missed")) for line in ratio_lines), ratio_lines
    assert "MISSED" not in result.stdout


def test_bench_tls_json_refuses_to_overwrite_before_running(tmp_path: Path) -> None:
    output = tmp_path / "tls.json"
    output.write_text("kept")
    result = ibepsk("bench", "tls", "--json", str(output))
    assert_one_line_error(result, "already exists (use --force to overwrite)")
    assert result.stdout == "", "nothing ran"
    assert output.read_text() == "kept"


def test_bench_ibe_json(tmp_path: Path) -> None:
    output = tmp_path / "ibe.json"
    result = ibepsk("bench", "ibe", "--runs", "1", "--iterations", "3", "--json", str(output))
    assert result.returncode == 0, result.stderr
    data = json.loads(output.read_text())
    assert set(data) == {"ibe", "machine"}
    operations = data["ibe"]["operations"]
    assert operations["pairing e(Q, P) [baseline]"]["ratio_to_pairing"] == 1.0
    assert operations["decapsulate"]["median_us"] > 0 and operations["decapsulate"]["ratio_to_pairing"] > 0
    assert data["ibe"]["backend"] == data["machine"]["pairing_backend"]


def test_bench_zero_rtt_json(tmp_path: Path) -> None:
    output = tmp_path / "zero-rtt.json"
    result = ibepsk("bench", "zero-rtt", "--runs", "1", "--delay-ms", "5", "--json", str(output))
    assert result.returncode == 0, result.stderr
    figures = json.loads(output.read_text())["zero_rtt"]
    assert figures["one_way_delay_ms"] == 5
    assert figures["one_rtt_ms"] > 0 and figures["zero_rtt_ms"] > 0 and "saved_round_trips" in figures

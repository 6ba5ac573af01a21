"""The PNG for docs/performance.md (``ibepsk bench tls --plot FILE``; needs matplotlib)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .bench_tls import TlsBenchmark


class PlotError(Exception):
    """The plot cannot be drawn: said before the benchmark runs."""


def check_plotting(path: Path) -> None:
    """Raise PlotError unless matplotlib is there and ``path`` can name a new PNG."""
    if path.is_dir():
        raise PlotError(f"--plot {path}: is a directory (give the PNG file's name)")
    if not path.resolve().parent.is_dir():
        raise PlotError(f"--plot {path}: no such directory {path.parent}")
    _pyplot()


def _pyplot() -> Any:  # matplotlib.pyplot (untyped)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot
    except ImportError:
        raise PlotError("--plot needs matplotlib (pip install 'ibepsk[plot]')") from None
    return matplotlib.pyplot


def plot_tls_benchmark(result: TlsBenchmark, path: Path) -> None:
    from .bench_tls import ratio_targets

    plt = _pyplot()
    names = [row.scenario for row in result.handshakes]
    series = {
        "ibepsk": [row.ibepsk.total_ms for row in result.handshakes],
        "stock tlslite-ng": [row.stock.total_ms for row in result.handshakes],
        "ssl (OpenSSL)": [row.openssl.total_ms if row.openssl else 0.0 for row in result.handshakes],
    }
    figure, (left, middle, right) = plt.subplots(1, 3, figsize=(16, 4.5), gridspec_kw={"width_ratios": [3, 1.6, 1]})
    width = 0.27
    for offset, (label, values) in enumerate(series.items()):
        left.bar([i + (offset - 1) * width for i in range(len(names))], values, width, label=label)
    left.set_xticks(range(len(names)), [n.replace(" (", "\n(") for n in names], fontsize=8)
    left.set_ylabel("client + server CPU per handshake, ms")
    left.set_title("Handshake CPU (lower is better; 0 = not available)")
    left.legend()
    _plot_ratios(middle, ratio_targets(result))
    clients = [str(row.clients) for row in result.capacity]
    right.bar(clients, [row.handshakes_per_second for row in result.capacity], color="tab:green")
    right.set_xlabel("concurrent clients")
    right.set_ylabel("IBE-PSK handshakes per second")
    right.set_title("Server capacity")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _plot_ratios(axes: Any, targets: list[Any]) -> None:
    """Each same-run ratio as a bar, its target as a black tick: green when met, red when missed."""
    positions = range(len(targets))
    axes.bar(positions, [t.ratio for t in targets], color=["tab:green" if t.met else "tab:red" for t in targets])
    axes.scatter(positions, [t.limit for t in targets], marker="_", s=900, color="black", label="target")
    axes.set_xticks(list(positions), [t.short.replace(" / ", "\n/ ") for t in targets], fontsize=8)
    axes.set_ylabel("ratio, same run")
    axes.set_title("Targets (issue 12): ratios")
    axes.legend()

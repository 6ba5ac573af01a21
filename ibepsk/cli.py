"""The ibepsk command line: TA key management, TLS endpoints, and benchmarks.

Every expected failure (bad file, bad argument, existing output) ends in one
line on stderr and a non-zero exit; tracebacks are for bugs only.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import math
import os
import sys
import textwrap
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from . import keys, threshold
from .epochs import EpochPeriod, epoch_identity
from .ibe.errors import IbeError
from .stopping import STOPPING_HELP

MASTER_FILE = "master.key"
BF = "bf"
LATTICE = "lattice"
PUBLIC_FILE = "public.pem"
THRESHOLD_PUBLIC_FILE = "threshold.pem"
DEFAULT_REPLAY_STORE = "memory"

EXIT_FAILURE = 1


class CliError(Exception):
    """A problem to report to the user in one line."""


Handler = Callable[[argparse.Namespace], int]


# --- ibepsk ta ----------------------------------------------------------------


def _ta_init(args: argparse.Namespace) -> int:
    directory = _output_directory(args.dir)
    if (args.shares is None) != (args.threshold is None):
        raise CliError("--shares and --threshold go together")
    if args.shares is not None and args.scheme == LATTICE:
        raise CliError("a threshold TA (--shares, --threshold) is Boneh–Franklin only, not --scheme lattice")
    if args.shares is not None:
        return _ta_init_threshold(directory, args.threshold, args.shares, args.force)
    directory.mkdir(parents=True, exist_ok=True)
    targets = [directory / MASTER_FILE, directory / PUBLIC_FILE]
    _refuse_existing(targets, args.force)
    master = keys.LatticeTAMasterKey.generate() if args.scheme == LATTICE else keys.TAMasterKey.generate()
    keys.write_key_file(targets[0], master, force=args.force)
    keys.write_key_file(targets[1], master.public, force=args.force)
    print(f"wrote {targets[0]} (secret, mode 0600) and {targets[1]}")
    print(f"TA fingerprint: {master.public.fingerprint}")
    return 0


def _share_file(index: int) -> str:
    return f"share-{index}.key"


def _threshold_files(directory: Path, ta: threshold.ThresholdTA) -> list[tuple[Path, keys.KeyObject]]:
    """Where a threshold TA's files go: threshold.pem and share-I.key (and public.pem, written once by init)."""
    shares = [(directory / _share_file(share.index), share) for share in ta.shares]
    return [(directory / THRESHOLD_PUBLIC_FILE, ta.public), *shares]


def _ta_init_threshold(directory: Path, threshold_count: int, share_count: int, force: bool) -> int:
    ta = threshold.deal(threshold_count, share_count)
    writes = [(directory / PUBLIC_FILE, ta.public.public), *_threshold_files(directory, ta)]
    _refuse_existing([path for path, _ in writes], force)
    directory.mkdir(parents=True, exist_ok=True)
    for path, obj in writes:
        keys.write_key_file(path, obj, force=force)
    print(f"wrote {writes[0][0]} and {writes[1][0]} (public)")
    print(
        f"wrote {share_count} shares, {writes[2][0]} … {writes[-1][0]} (secret, mode 0600): give each to its own "
        f"TA node; any {threshold_count} of them issue keys. No file holds the master secret."
    )
    print(f"TA fingerprint: {ta.public.fingerprint}")
    return 0


def _ta_refresh(args: argparse.Namespace) -> int:
    directory = Path(args.dir)
    public = keys.load_threshold_public_params(directory / THRESHOLD_PUBLIC_FILE)
    paths = [directory / _share_file(index) for index in range(1, public.sharing.shares + 1)]
    shares = []
    for path in paths:
        share = keys.load_key_share(path)
        if path.name != _share_file(share.index):
            raise CliError(f"{path}: holds share {share.index}, not the share its name says")
        shares.append(share)
    refreshed = threshold.refresh(threshold.ThresholdTA(public, tuple(shares)))
    # The old shares must not survive: each file is replaced (atomically), the shares first, so an interruption
    # leaves shares of the new generation that the old threshold.pem refuses by generation, never a silent mix.
    for path, obj in reversed(_threshold_files(directory, refreshed)):
        keys.write_key_file(path, obj, force=True)
    print(
        f"refreshed the {len(shares)} shares in {directory} to generation {refreshed.public.sharing.generation} "
        f"and rewrote {directory / THRESHOLD_PUBLIC_FILE}; the TA public key is unchanged"
    )
    return 0


def _ta_combine(args: argparse.Namespace) -> int:
    public = keys.load_threshold_public_params(args.ta)
    output = Path(args.output)
    _refuse_existing([output], args.force)
    partials = [keys.load_partial_key(path) for path in args.partials]
    identity_key = threshold.combine(public, partials, names=[Path(path).name for path in args.partials])
    keys.write_key_file(output, identity_key, force=args.force)
    print(
        f"checked {len(partials)} partial keys and wrote the identity key for {identity_key.identity!r} to {output} "
        "(secret, mode 0600)"
    )
    return 0


def _master_path(ta: str) -> Path:
    path = Path(ta)
    return path / MASTER_FILE if path.is_dir() else path


def _ta_extract(args: argparse.Namespace) -> int:
    master: keys.TAMasterKey | keys.LatticeTAMasterKey | keys.KeyShare = (
        keys.load_key_share(args.share) if args.share else keys.load_ta_master(_master_path(args.master))
    )
    output = Path(args.output)
    _refuse_existing([output], args.force)
    identity = args.identity
    if args.at and not args.epoch:
        raise CliError("--at only makes sense with --epoch")
    if args.epoch:
        identity = _epoch_bound(identity, args.epoch, args.at)
    identity_key = master.extract(identity)
    keys.write_key_file(output, identity_key, force=args.force)
    what = (
        f"partial key (share {identity_key.index})"
        if isinstance(identity_key, keys.PartialIdentityKey)
        else "identity key"
    )
    print(f"wrote {what} for {identity_key.identity!r} to {output} (secret, mode 0600)")
    return 0


#: What ``ta show`` says a lattice file is for: ibepsk's post-quantum schemes, or TiigerTLS's classical hybrid.
_LATTICE_USES = {
    keys.LatticeTAPublicParams: "  use: ibepsk connect --ibe-scheme hybrid|lattice --lattice-ta FILE (post-quantum), "
    "or tiiger-hybrid (classical secrecy)",
    keys.LatticeIdentityKey: "  use: ibepsk serve --ibe-scheme hybrid|lattice --lattice-key FILE (post-quantum), "
    "or tiiger-hybrid (classical secrecy)",
}


def _ta_show(args: argparse.Namespace) -> int:
    key = keys.read_key_file(args.file)
    print(f"{args.file}: {key.describe()}")
    if type(key) in _LATTICE_USES:
        print(_LATTICE_USES[type(key)])
    if isinstance(key, keys.IdentityKey) and args.ta:
        key.verify(keys.load_public_params(args.ta))
        print("  verified against the given TA public parameters")
    if isinstance(key, keys.LatticeIdentityKey) and args.ta:
        key.verify(keys.load_lattice_public_params(args.ta))
        print("  verified against the given lattice TA public parameters: ‖(s1, s)‖ within spec §7's bound")
    if isinstance(key, keys.PartialIdentityKey | keys.KeyShare) and args.ta:
        public = keys.load_threshold_public_params(args.ta)
        if isinstance(key, keys.KeyShare):
            public.verify_share(key)
        else:
            public.verify_partial(key)
        print("  verified against the given threshold TA public parameters")
    return 0


def _ta_import(args: argparse.Namespace) -> int:
    directory = _output_directory(args.output)
    writes = _lattice_imports(args) if args.scheme == LATTICE else _bf_imports(args)
    _refuse_existing([path for path, _ in writes], args.force)
    directory.mkdir(parents=True, exist_ok=True)
    for path, obj in writes:
        keys.write_key_file(path, obj, force=args.force)
        print(f"wrote {path}")
    return 0


def _bf_imports(args: argparse.Namespace) -> list[tuple[Path, keys.KeyObject]]:
    if args.public_hex is None or args.public_ints or args.identity_key_ints:
        raise CliError("a Boneh–Franklin TA is imported with --public-hex (and --identity-key-hex)")
    directory = Path(args.output)
    public = keys.TAPublicParams.from_bytes(_hex_arg(args.public_hex, "--public-hex"))
    writes: list[tuple[Path, keys.KeyObject]] = [(directory / PUBLIC_FILE, public)]
    if (args.identity_key_hex is None) != (args.identity is None):
        raise CliError("--identity-key-hex and --identity go together")
    if args.identity is not None:
        key = keys.IdentityKey.from_bytes(args.identity, _hex_arg(args.identity_key_hex, "--identity-key-hex"), public)
        writes.append((directory / _key_file_name(args.identity), key))
    return writes


def _lattice_imports(args: argparse.Namespace) -> list[tuple[Path, keys.KeyObject]]:
    if args.public_ints is None or args.public_hex or args.identity_key_hex:
        raise CliError("a lattice TA is imported with --public-ints (and --identity-key-ints)")
    directory = Path(args.output)
    public = keys.LatticeTAPublicParams.from_stored(_integers_file(args.public_ints, "--public-ints"))
    writes: list[tuple[Path, keys.KeyObject]] = [(directory / PUBLIC_FILE, public)]
    if (args.identity_key_ints is None) != (args.identity is None):
        raise CliError("--identity-key-ints and --identity go together")
    if args.identity is not None:
        coefficients = _integers_file(args.identity_key_ints, "--identity-key-ints")
        key = keys.LatticeIdentityKey.from_coefficients(args.identity, coefficients, public)
        writes.append((directory / _key_file_name(args.identity), key))
    return writes


def _integers_file(path: str, option: str) -> list[int]:
    """Decimal integers separated by commas or white space, optionally in braces or brackets (a C array's
    initializer, as in TiigerTLS's source, or a JSON list)."""
    try:
        text = Path(path).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"{option} {path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    words = text.replace(",", " ").strip().strip("{}[]").split()
    try:
        return [int(word) for word in words]
    except ValueError:
        raise CliError(f"{option} {path}: not a list of decimal integers") from None


def _epoch_bound(host: str, period: str, at: str | None) -> str:
    try:
        when = datetime.fromisoformat(at) if at else datetime.now(UTC)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return str(epoch_identity(host, when, EpochPeriod(period)))
    except ValueError as exc:
        raise CliError(f"cannot bind {host!r} to an epoch: {exc}") from None


def _key_file_name(identity: str) -> str:
    """IDENTITY.key in the output directory: an identity that would name a path elsewhere is refused."""
    if "/" in identity or "\\" in identity or identity.startswith("."):
        raise CliError(f"cannot name a key file after identity {identity!r}")
    return f"{identity}.key"


def _hex_arg(value: str, option: str) -> bytes:
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise CliError(f"{option} is not a hex string") from None


def _output_directory(name: str) -> Path:
    directory = Path(name)
    if directory.exists() and not directory.is_dir():
        raise CliError(f"{directory}: not a directory")
    return directory


def _refuse_existing(paths: Sequence[Path], force: bool) -> None:
    # Checked for every output before writing any, so a refusal changes nothing on disk.
    for path in paths:
        if path.is_dir():
            raise CliError(f"{path}: is a directory (give the key file's name)")
        if path.exists() and not force:
            raise CliError(f"{path} already exists (use --force to overwrite)")


# --- ibepsk serve / connect / demo ----------------------------------------------------


def _parse_hostport(value: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = default_host, value
    try:
        number = int(port)
    except ValueError:
        raise CliError(f"{value!r} is not HOST:PORT") from None
    if not 0 <= number <= 65535:
        raise CliError(f"port {number} is out of range")
    return host.strip("[]") or default_host, number


def _serve(args: argparse.Namespace) -> int:
    from .endpoints import run_server

    if args.replay_store is None:
        args.replay_store = DEFAULT_REPLAY_STORE
    elif not args.max_early_data:
        print("ibepsk: warning: --replay-store has no effect without --max-early-data", file=sys.stderr)
    host, port = _parse_hostport(args.accept)
    return run_server(args, host, port)


def _connect(args: argparse.Namespace) -> int:
    from .endpoints import run_client

    host, port = _parse_hostport(args.target)
    return run_client(args, host, port)


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo()


# --- ibepsk bench ---------------------------------------------------------------


def _bench_ibe(args: argparse.Namespace) -> int:
    from .bench import bench_ibe

    _check_json_output(args.json, args.force)
    bench_ibe(backend_name=args.backend, iterations=args.iterations, runs=args.runs, json_file=args.json)
    return 0


def _bench_tls(args: argparse.Namespace) -> int:
    from .bench_tls import bench_tls

    _check_plotting(args.plot)
    _check_json_output(args.json, args.force)
    bench_tls(runs=args.runs, capacity_seconds=args.capacity_seconds, plot=args.plot, json_file=args.json)
    return 0


def _check_plotting(plot: Path | None) -> None:
    """Before a benchmark runs for minutes, not after: can it draw the plot it was asked for?"""
    from .bench_plot import PlotError, check_plotting

    if plot is not None:
        try:
            check_plotting(plot)
        except PlotError as exc:
            raise CliError(str(exc)) from None


def _check_json_output(path: Path | None, force: bool) -> None:
    """Before a benchmark runs, not after: can it write its ``--json`` file?"""
    if path is None:
        return
    if path.is_dir() or not path.resolve().parent.is_dir():
        raise CliError(f"--json {path}: not a file in an existing directory")
    _refuse_existing([path], force)


def _bench_server(args: argparse.Namespace) -> int:
    from .bench_server import ServerBenchError, bench_server

    _check_json_output(args.json, args.force)
    try:
        bench_server(args.server_cmd, args.handshake, args.connections, args.runs, json_file=args.json)
    except ServerBenchError as exc:
        raise CliError(f"bench server: {exc}") from None
    return 0


def _bench_wire(args: argparse.Namespace) -> int:
    from .bench_wire import bench_wire

    bench_wire()
    return 0


def _bench_zero_rtt(args: argparse.Namespace) -> int:
    from .bench import bench_zero_rtt

    _check_json_output(args.json, args.force)
    bench_zero_rtt(delay_ms=args.delay_ms, runs=args.runs, json_file=args.json)
    return 0


def _bench_scale(args: argparse.Namespace) -> int:
    from .bench_scale import bench_scale

    if args.pin_server and len(os.sched_getaffinity(0)) < 2:
        raise CliError("--pin-server needs at least two CPUs (one for the server, one for the clients)")
    bench_scale(connections=args.connections, clients=args.clients, seconds=args.seconds, pin_server=args.pin_server)
    return 0


def _bench_iot(args: argparse.Namespace) -> int:
    from .iot.bench import bench_iot

    bench_iot(delay_ms=args.delay_ms, runs=args.runs)
    return 0


def _bench_all(args: argparse.Namespace) -> int:
    from .bench import bench_ibe, bench_zero_rtt
    from .bench_tls import bench_tls
    from .bench_wire import bench_wire
    from .iot.bench import bench_iot

    _check_plotting(args.plot)
    started = time.monotonic()
    for run in (
        lambda: bench_ibe(backend_name=None, iterations=50, runs=5),
        lambda: bench_tls(runs=15, capacity_seconds=4.0, plot=args.plot),
        bench_wire,
        lambda: bench_zero_rtt(delay_ms=20.0, runs=9),
        lambda: bench_iot(delay_ms=20.0, runs=9),
    ):
        run()
        print()
    print(f"ibepsk bench all: {time.monotonic() - started:.0f} s")
    return 0


# --- the parser -------------------------------------------------------------------


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each paragraph of a description wrapped on its own; an option's default shown when it says something.

    No "(default: None)" for options without one, nor a second default after a help text that names its own.
    """

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = (_wrap(part, width, indent) for part in text.split("\n\n"))
        return "\n\n".join("\n".join(lines) for lines in paragraphs)

    def _split_lines(self, text: str, width: int) -> list[str]:
        return _wrap(text, width)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        says_nothing = action.default is None or action.default is False or action.default == []  # not 0 == False
        if says_nothing or "(default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _wrap(text: str, width: int, indent: str = "") -> list[str]:
    # Never at a hyphen: option names like --max-early-data stay whole.
    return textwrap.wrap(
        " ".join(text.split()), width, initial_indent=indent, subsequent_indent=indent, break_on_hyphens=False
    )


class Parser(argparse.ArgumentParser):
    """Every ibepsk (sub)command parser: subparsers are made of this class, so they share the formatter."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


Commands = argparse._SubParsersAction  # the type add_subparsers returns (argparse gives it no public name)


def _add_command(commands: Commands[Parser], name: str, summary: str, description: str) -> Parser:
    """A subcommand: ``summary`` for the list of commands, ``description`` (paragraphs) for its own --help."""
    return commands.add_parser(name, help=summary, description=textwrap.dedent(description).strip())


def _version() -> str:
    """The installed distribution's version; from a source tree that is not installed, its pyproject.toml."""
    version = _distribution_version("ibepsk") or _source_tree_version()
    tlslite = _distribution_version("tlslite-ng") or "unknown"
    return f"ibepsk {version} (tlslite-ng {tlslite}, Python {sys.version.split()[0]})"


def _distribution_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _source_tree_version() -> str:
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    try:
        return str(tomllib.loads(pyproject.read_text())["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


# Argument types: a bad value is refused while parsing, with argparse's one-line usage error.


def _non_negative_int(text: str) -> int:
    return _number(text, int, "a whole number, 0 or more", lambda value: value >= 0)


def _positive_int(text: str) -> int:
    return _number(text, int, "a whole number, 1 or more", lambda value: value >= 1)


def _non_negative_float(text: str) -> float:
    return _number(text, float, "a number, 0 or more", lambda value: value >= 0)


def _positive_float(text: str) -> float:
    return _number(text, float, "a number greater than 0", lambda value: value > 0)


_N = TypeVar("_N", int, float)


def _number(text: str, kind: type[_N], wanted: str, acceptable: Callable[[_N], bool]) -> _N:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {wanted}, not {text!r}") from None
    if not math.isfinite(value) or not acceptable(value):
        raise argparse.ArgumentTypeError(f"expected {wanted}, not {text!r}")
    return value


def _identity(text: str) -> str:
    try:
        return keys.validate_identity(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _directory(text: str) -> str:
    if not text:
        raise argparse.ArgumentTypeError("the directory name is empty")
    return text


def _escaped_text(text: str) -> str:
    """Checks the escapes now; the text is decoded where it is sent."""
    from .endpoints import _decode_text

    try:
        _decode_text(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def build_parser() -> Parser:
    parser = Parser(prog="ibepsk", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_ta_commands(
        _add_command(
            commands,
            "ta",
            "Trusted Authority: keys and parameters",
            f"""
            The Trusted Authority (TA) holds the master secret, publishes its public parameters, and issues
            each server the identity key for a name it answers to.

            Start with "ibepsk ta init DIR" (DIR/{MASTER_FILE}, secret, and DIR/{PUBLIC_FILE}), then
            "ibepsk ta extract --master DIR NAME -o NAME.key" for each server.

            A threshold TA ("ta init DIR --shares N --threshold T") has no master secret file: each of N nodes
            holds a share and issues partial keys ("ta extract --share"); any T of them "ta combine" into a key.
            """,
        )
    )
    _add_serve_command(
        _add_command(
            commands,
            "serve",
            "TLS server, like openssl s_server",
            f"""
            TLS 1.3 server, like openssl s_server: IBE-PSK handshakes with the identity keys given, certificate
            handshakes with --cert/--key, resumption, 0-RTT with --max-early-data, client authentication after
            the handshake with --request-client-auth or --require-client-auth.

            It echoes what each client sends, or with --www answers each request with a page describing the
            connection. {STOPPING_HELP}
            """,
        )
    )
    _add_connect_command(
        _add_command(
            commands,
            "connect",
            "TLS client, like openssl s_client",
            """
            TLS 1.3 client, like openssl s_client. With --ta it offers an IBE-PSK encapsulated to the server's
            identity (--identity, else --servername, else HOST); with --ca it can authenticate the server by
            certificate instead. It prints one line per connection, sends --send, and prints what comes back.
            """,
        )
    )
    demo = _add_command(
        commands,
        "demo",
        "on loopback: IBE-PSK, 0-RTT and a refused replay, resumption, client authentication",
        """
        A tour on loopback, with no files and no options: a TA is made, a server gets the key for
        "localhost", and a client that knows only that name and the TA's public parameters connects with an
        IBE-PSK, sends 0-RTT data, has a replay refused, resumes, and authenticates with a certificate.
        """,
    )
    demo.set_defaults(handler=_demo)
    _add_bench_commands(
        _add_command(
            commands,
            "bench",
            "benchmarks (medians and ratios)",
            """
            Benchmarks measured against baselines in the same run (medians and ratios, so results from
            different machines compare). "ibepsk bench all" runs every suite with its defaults.
            """,
        )
    )
    return parser


#: ``--ibe-scheme`` values: ``ibepsk.tls.settings.IBE_SCHEMES`` (not imported: the CLI loads tlslite-ng only to run).
IBE_SCHEMES = ("bf", "tiiger-hybrid", "lattice", "hybrid")


def _add_ibe_scheme_option(parser: argparse.ArgumentParser, hybrid_does: str, ours_do: str) -> None:
    parser.add_argument(
        "--ibe-scheme",
        choices=IBE_SCHEMES,
        default="bf",
        help=(
            "bf (default): Boneh-Franklin IBE-PSKs, classical (a quantum computer breaks the PSK, the 0-RTT data "
            f"and the server's authentication). tiiger-hybrid: {hybrid_does}. Its secrecy is classical, "
            "not post-quantum: TiigerTLS's lattice half hides nothing, so the PSK is only as secret as the "
            f"Boneh-Franklin half. For interop with TiigerTLS. lattice and hybrid: {ours_do}. lattice: ibepsk's "
            "lattice IBE-PSK, post-quantum (PSK, 0-RTT data, server authentication). hybrid (the recommended "
            "post-quantum mode): ibepsk's lattice and Boneh-Franklin IBE-PSKs in one, PSK through HKDF: "
            "post-quantum, with Boneh-Franklin as a classical second line. The X25519MLKEM768 key share makes the "
            "1-RTT traffic post-quantum: tiiger-hybrid, lattice and hybrid send it, bf sends x25519. Client "
            "certificates (post-handshake authentication) stay as classical as their keys"
        ),
    )


def _add_serve_command(serve: argparse.ArgumentParser) -> None:
    serve.add_argument("--accept", default="127.0.0.1:4433", metavar="HOST:PORT", help="listen address")
    serve.add_argument(
        "--ibe-key", action="append", default=[], metavar="FILE", help="identity key (repeatable; chosen by SNI)"
    )
    serve.add_argument(
        "--default-identity",
        type=_identity,
        metavar="IDENTITY",
        help="identity for clients whose SNI names none of the keys (default: the first --ibe-key's)",
    )
    serve.add_argument("--ta", metavar="FILE", help="TA public parameters: check every --ibe-key against them")
    _add_ibe_scheme_option(
        serve,
        "also open TiigerTLS's hybrid IBE-PSKs (marker 3) with --lattice-key",
        "also open ibepsk's lattice IBE-PSKs with --lattice-key (no --ibe-key needed for lattice), and its hybrid "
        "ones for identities that also have an --ibe-key",
    )
    serve.add_argument(
        "--lattice-key",
        action="append",
        default=[],
        metavar="FILE",
        help="lattice identity key (repeatable): TiigerTLS's, for an identity that also has an --ibe-key "
        "(tiiger-hybrid), or from 'ibepsk ta extract' of a lattice TA (lattice, hybrid)",
    )
    serve.add_argument("--lattice-ta", metavar="FILE", help="the lattice TA's public parameters (of --lattice-key)")
    serve.add_argument("--cert", metavar="FILE", help="certificate chain (PEM) for certificate handshakes")
    serve.add_argument("--key", metavar="FILE", help="private key (PEM) of --cert")
    serve.add_argument("--www", action="store_true", help="answer each request with a page describing the connection")
    serve.add_argument("--ca", metavar="FILE", help="CA certificate(s) client certificates must chain to (PHA)")
    auth = serve.add_mutually_exclusive_group()
    auth.add_argument(
        "--request-client-auth", action="store_true", help="ask each client for a certificate after the handshake"
    )
    auth.add_argument(
        "--require-client-auth",
        action="store_true",
        help="authenticate each client after the handshake and serve nothing until it has",
    )
    serve.add_argument(
        "--verify-client",
        action="store_true",
        help="certificate handshakes: require a client certificate in the handshake, like s_server -Verify "
        "(needs --cert/--key and --ca; TLS 1.3 only)",
    )
    serve.add_argument(
        "--client-cert-profile",
        choices=_ClientCertProfiles(),
        metavar="NAME",  # not the choices: argparse would list them, loading the TLS layer, to build the parser
        default="openssl",
        help="rules for client certificates: openssl (RFC 5280 with OpenSSL's defaults) or webpki (CA/Browser "
        "Forum: SAN, keyUsage, key identifiers required) (default openssl)",
    )
    serve.add_argument("--psk-ke", action="store_true", help="also allow psk_ke (no (EC)DHE) when a client asks")
    serve.add_argument("--no-tickets", action="store_true", help="do not issue NewSessionTickets")
    serve.add_argument(
        "--max-early-data",
        type=_non_negative_int,
        default=0,
        metavar="BYTES",
        help="accept up to BYTES of 0-RTT data (default: 0, refuse it)",
    )
    serve.add_argument(
        "--replay-store",
        metavar="SPEC",
        help="0-RTT strike register: memory, memory:MAX_ENTRIES, or redis://HOST:PORT/DB (shared by a fleet); "
        f"with --max-early-data only (default: {DEFAULT_REPLAY_STORE})",
    )
    serve.add_argument("--quiet", action="store_true", help="no per-connection log lines")
    serve.add_argument(
        "--idle-timeout",
        type=_positive_float,
        default=10.0,
        metavar="SECONDS",
        help="close a connection that stays idle this long after the handshake (default 10); a handshake "
        "must complete within 10 s",
    )
    serve.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        metavar="N",
        help="N processes sharing the port (SO_REUSEPORT), each with its own event loop (default 1); "
        "with --max-early-data they need --replay-store redis://...",
    )
    serve.add_argument(
        "--ticket-key",
        action="append",
        default=[],
        metavar="FILE",
        help="session ticket key: a file of 32+ secret bytes, mode 0600; servers with the same file resume each "
        "other's tickets. Repeat to rotate: the first encrypts new tickets, all decrypt (default: a random key)",
    )
    _add_external_psk_options(serve)
    serve.set_defaults(handler=_serve)


def _add_external_psk_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--psk", metavar="HEX", help="external PSK (TLS 1.3), like openssl's -psk")
    parser.add_argument("--psk-identity", metavar="IDENTITY", help="identity of --psk, like openssl's -psk_identity")
    parser.add_argument(
        "--psk-hash", choices=["sha256", "sha384"], default="sha256", help="hash of --psk (sha256 as in openssl)"
    )


def _add_connect_command(connect: argparse.ArgumentParser) -> None:
    connect.add_argument("target", metavar="HOST:PORT", help="the server (HOST defaults to 127.0.0.1)")
    connect.add_argument("--ta", metavar="FILE", help="TA public parameters: offer an IBE-PSK")
    _add_ibe_scheme_option(
        connect,
        "offer TiigerTLS's hybrid IBE-PSK (marker 3) to --ta and --lattice-ta",
        "offer ibepsk's IBE-PSK to --lattice-ta (lattice; no --ta needed) or to --ta and --lattice-ta (hybrid)",
    )
    connect.add_argument(
        "--lattice-ta", metavar="FILE", help="the lattice TA's public parameters (tiiger-hybrid, lattice, hybrid)"
    )
    connect.add_argument(
        "--identity", type=_identity, help="server identity to encapsulate to (default: --servername or HOST)"
    )
    connect.add_argument(
        "--servername",
        metavar="NAME",
        help="SNI host name (default: HOST when it is a name, else --identity when it is a DNS name)",
    )
    connect.add_argument("--ca", metavar="FILE", help="trust anchors: validate a server certificate (allows fallback)")
    connect.add_argument("--cert", metavar="FILE", help="client certificate chain (PEM) to answer the server's PHA")
    connect.add_argument("--key", metavar="FILE", help="private key (PEM) of --cert")
    connect.add_argument(
        "--answer-limit", type=_non_negative_int, default=1, metavar="N", help="answer at most N certificate requests"
    )
    connect.add_argument(
        "--send",
        type=_escaped_text,
        metavar="TEXT",
        help=r"send TEXT (backslash escapes like \r\n are decoded; default: stdin, read to EOF)",
    )
    connect.add_argument(
        "--send-early",
        type=_escaped_text,
        metavar="TEXT",
        help="send TEXT as 0-RTT data in the first flight (escapes decoded)",
    )
    connect.add_argument(
        "--wait", type=_non_negative_float, default=3.0, metavar="SECONDS", help="how long to wait for a reply"
    )
    connect.add_argument("--psk-ke", action="store_true", help="offer psk_ke as well as psk_dhe_ke")
    connect.add_argument(
        "--epoch", choices=[period.value for period in EpochPeriod], help="encapsulate to IDENTITY|current epoch"
    )
    connect.add_argument("--reconnect", action="store_true", help="connect a second time, resuming with a ticket")
    connect.add_argument(
        "--key-update", action="store_true", help="send KeyUpdate(update_requested) after the handshake, before --send"
    )
    _add_external_psk_options(connect)
    connect.set_defaults(handler=_connect)


def _add_ta_commands(ta: Parser) -> None:
    sub = ta.add_subparsers(dest="ta_command", required=True, metavar="ACTION")
    init = _add_command(
        sub,
        "init",
        f"create a TA: DIR/{MASTER_FILE} (secret) and DIR/{PUBLIC_FILE}",
        f"""
        Create a Trusted Authority: a fresh master secret in DIR/{MASTER_FILE} (mode 0600; keep it offline)
        and the public parameters in DIR/{PUBLIC_FILE}, which every client needs. DIR is created if needed;
        existing files are kept unless --force.

        With --shares N --threshold T, a threshold TA: the master secret is generated, split into N shares
        (DIR/share-1.key … DIR/share-N.key, mode 0600, one for each TA node) and forgotten; any T shares issue
        keys, fewer learn nothing. DIR/{THRESHOLD_PUBLIC_FILE} holds the public parameters with the per-share
        public keys that "ta combine" checks partial keys against.

        With --scheme lattice, a lattice TA (DLP identity-based encryption over NTRU lattices, in TiigerTLS's
        ring): the master secret is an NTRU trapdoor f, g, F, G with fG - gF = q, and DIR/{PUBLIC_FILE} holds
        h = g/f mod q in TiigerTLS's stored form. Its keys are for the lattice IBE-PSKs (docs/post-quantum.md).
        """,
    )
    init.add_argument("dir", type=_directory, metavar="DIR", help="directory for the files")
    _add_scheme_option(init, "the TA's scheme: Boneh–Franklin, or a lattice TA (an NTRU trapdoor; needs numpy)")
    init.add_argument("--force", action="store_true", help="overwrite existing files")
    init.add_argument(
        "--shares",
        type=_positive_int,
        metavar="N",
        help=f"threshold TA: split the master secret into N shares, DIR/share-I.key, with DIR/{PUBLIC_FILE} and "
        f"DIR/{THRESHOLD_PUBLIC_FILE}; no file holds the master secret (2 to 255; with --threshold)",
    )
    init.add_argument(
        "--threshold", type=_positive_int, metavar="N", help="threshold TA: how many shares issue a key (2 to --shares)"
    )
    init.set_defaults(handler=_ta_init)

    extract = _add_command(
        sub,
        "extract",
        "issue the identity key of IDENTITY (with --share: a partial key)",
        """
        Issue the identity key of IDENTITY (usually the server's host name) from the TA master secret, into a
        file of mode 0600 for the server that answers to that name ("ibepsk serve --ibe-key FILE").

        On a node of a threshold TA, --share FILE issues this share's partial key instead; "ibepsk ta combine"
        turns enough of them into the identity key.

        An identity is any text, UTF-8 included, on one line, without control characters or surrounding
        spaces. With --epoch the key is for IDENTITY|DATE only, so it stops working once the server drops it.

        A lattice TA's key is sampled from a Gaussian over its NTRU lattice; it is checked against spec §7's
        bound and TiigerTLS's int16 range before it is written.
        """,
    )
    issuer = extract.add_mutually_exclusive_group(required=True)
    issuer.add_argument("--master", metavar="DIR|FILE", help=f"TA directory (holding {MASTER_FILE}) or master key file")
    issuer.add_argument(
        "--share", metavar="FILE", help="threshold TA: this node's share; writes a partial key for ta combine"
    )
    extract.add_argument("identity", type=_identity, metavar="IDENTITY", help="e.g. the server's host name")
    extract.add_argument("-o", "--output", required=True, metavar="FILE", help="identity key file to write")
    extract.add_argument(
        "--epoch",
        choices=[period.value for period in EpochPeriod],
        help="bind the identity to one epoch: IDENTITY|YYYY-MM-DD (day) or IDENTITY|YYYY-MM-DDTHH (hour)",
    )
    extract.add_argument(
        "--at", metavar="DATETIME", help="with --epoch: a time in the epoch (ISO 8601, UTC; default now)"
    )
    extract.add_argument("--force", action="store_true", help="overwrite an existing file")
    extract.set_defaults(handler=_ta_extract)

    combine = _add_command(
        sub,
        "combine",
        "threshold TA: combine partial keys into an identity key",
        f"""
        Check each partial key against the per-share public keys in --ta (the threshold TA's
        {THRESHOLD_PUBLIC_FILE}) and combine them into the identity key of their identity: an ordinary key file
        for "ibepsk serve --ibe-key". Any T partial keys of the same identity and refresh generation give the
        same key.

        Every bad partial key is named (file and share index) and nothing is written; so are fewer partial keys
        than the threshold, a share index given twice, and partial keys of different identities, TAs or
        refresh generations.
        """,
    )
    combine.add_argument(
        "--ta", required=True, metavar="FILE", help=f"the threshold TA's public parameters ({THRESHOLD_PUBLIC_FILE})"
    )
    combine.add_argument("partials", nargs="+", metavar="PARTIAL", help="partial key files, from different shares")
    combine.add_argument("-o", "--output", required=True, metavar="FILE", help="identity key file to write")
    combine.add_argument("--force", action="store_true", help="overwrite an existing file")
    combine.set_defaults(handler=_ta_combine)

    refresh = _add_command(
        sub,
        "refresh",
        "threshold TA: re-randomize every share, same TA public key",
        f"""
        Proactive refresh of a threshold TA: add a fresh sharing of zero to every share in DIR (DIR/share-I.key,
        all N of them, and DIR/{THRESHOLD_PUBLIC_FILE}). The master secret and the TA public key
        ({PUBLIC_FILE}, what clients hold) stay the same; every share and per-share public key changes, and the
        refresh generation goes up by one, so shares that leaked before the refresh are useless after it: old
        and new shares never combine.

        The files are replaced in place: that is the point, the old shares must not survive.
        """,
    )
    refresh.add_argument(
        "dir", type=_directory, metavar="DIR", help=f"directory holding {THRESHOLD_PUBLIC_FILE} and every share"
    )
    refresh.set_defaults(handler=_ta_refresh)

    show = _add_command(
        sub,
        "show",
        "describe a key file (never prints secrets)",
        """
        Check a key file (format, scheme, point encodings, fingerprints) and say what it holds: TA public
        parameters, a TA master secret, or the identity key of one identity; for a threshold TA, its public
        parameters, a share, or a partial key. Secrets are never printed. With --ta an identity key is also
        verified against the TA's public parameters, a share or partial key against the threshold TA's.

        A lattice TA's files are checked on load (f·G - g·F = q; int16 keys); with --ta a lattice identity key
        is also checked to be short for its identity under that TA (spec §7's bound).
        """,
    )
    show.add_argument("file", metavar="FILE", help="the key file")
    show.add_argument(
        "--ta", metavar="FILE", help="also verify an identity key, share or partial key against these public parameters"
    )
    show.set_defaults(handler=_ta_show)

    imp = _add_command(
        sub,
        "import",
        "import TiigerTLS's keys: MIRACL-encoded hex, or lattice integers (e.g. its demo TAs)",
        f"""
        Turn raw keys in MIRACL's encoding (hex), as TiigerTLS prints them, into key files: DIR/{PUBLIC_FILE}
        and, with --identity-key-hex and --identity, DIR/IDENTITY.key. The identity key is checked against
        the public key before anything is written.

        With --scheme lattice, TiigerTLS's lattice keys as the integers of its source: --public-ints, the
        stored TA constant H, and --identity-key-ints, the identity key s (checked: s1 = H_ID(ID) - s*h short).
        """,
    )
    _add_scheme_option(imp, "the scheme of the keys")
    imp.add_argument("--public-hex", metavar="HEX", help="Boneh–Franklin: TA public key Ppub, 97-byte G1 point")
    imp.add_argument("--identity-key-hex", metavar="HEX", help="Boneh–Franklin: identity key D_ID, 193-byte G2 point")
    imp.add_argument(
        "--public-ints",
        metavar="FILE",
        help="lattice: TiigerTLS's stored TA constant H, 1024 integers in [0, q) (commas or spaces; braces allowed)",
    )
    imp.add_argument(
        "--identity-key-ints", metavar="FILE", help="lattice: identity key s, 1024 integers in ±32767 (int16)"
    )
    imp.add_argument("--identity", type=_identity, help="the identity the key was issued for")
    imp.add_argument("-o", "--output", required=True, metavar="DIR", help="directory to write the files to")
    imp.add_argument("--force", action="store_true", help="overwrite existing files")
    imp.set_defaults(handler=_ta_import)


def _add_scheme_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("--scheme", choices=[BF, LATTICE], default=BF, help=f"{help_text} (default: {BF})")


def _add_bench_commands(bench: Parser) -> None:
    sub = bench.add_subparsers(dest="bench_command", required=True, metavar="SUITE")
    ibe = _add_command(
        sub,
        "ibe",
        "IBE primitives: H1, H3, encapsulate, decapsulate",
        """
        Time the IBE primitives (hashing to G1 and G2, encapsulation, decapsulation) on one pairing backend,
        each also as a ratio to one pairing measured in the same run, against the targets they were built to.
        """,
    )
    ibe.add_argument("--backend", default=None, metavar="NAME", help="pairing backend: arkworks or pymcl")
    ibe.add_argument("--iterations", type=_positive_int, default=50, metavar="N", help="calls per run")
    ibe.add_argument(
        "--runs", type=_positive_int, default=5, metavar="N", help="runs; the median of the run medians is reported"
    )
    ibe.add_argument("--json", type=Path, metavar="FILE", help="also write the figures to FILE as JSON")
    ibe.add_argument("--force", action="store_true", help="overwrite an existing --json file")
    ibe.set_defaults(handler=_bench_ibe)
    tls = _add_command(
        sub,
        "tls",
        "handshake CPU, bulk throughput, server capacity vs stock tlslite-ng and ssl",
        """
        Handshake CPU (client and server) for certificate, external PSK, IBE-PSK, IBE-PSK with client
        authentication and resumption; bulk throughput; and the handshakes per second of an "ibepsk serve"
        process. Each against stock tlslite-ng and, where it can do the same, Python's ssl module (OpenSSL).
        """,
    )
    tls.add_argument(
        "--runs", type=_positive_int, default=15, metavar="N", help="handshakes per scenario; medians are reported"
    )
    tls.add_argument(
        "--capacity-seconds",
        type=_positive_float,
        default=4.0,
        metavar="SECONDS",
        help="how long each capacity step runs",
    )
    tls.add_argument("--plot", type=Path, metavar="FILE", help="also draw the results as a PNG (needs matplotlib)")
    tls.add_argument("--json", type=Path, metavar="FILE", help="also write every figure to FILE as JSON")
    tls.add_argument("--force", action="store_true", help="overwrite an existing --json file")
    tls.set_defaults(handler=_bench_tls)
    server = _add_command(
        sub,
        "server",
        "server process CPU per connection, for ibepsk serve or any server command",
        """
        Start a server process (ibepsk serve, or --server-cmd) and open connections to it one after the other:
        handshake, one request, its answer, close. Report the server's CPU per connection (utime + stime of its
        process from /proc), the median of --runs runs.
        """,
    )
    server.add_argument(
        "--connections", type=_positive_int, default=200, metavar="N", help="connections per run (default 200)"
    )
    server.add_argument(
        "--runs", type=_positive_int, default=3, metavar="N", help="runs; the median is reported (default 3)"
    )
    server.add_argument(
        "--server-cmd",
        metavar="CMD",
        help=(
            "server command instead of ibepsk serve, run without a shell; {port} is where it must listen on "
            "127.0.0.1, and {cert}, {key}, {ca}, {ibe_key}, {ta} name the benchmark's files "
            "(e.g. 'openssl s_server -accept {port} -cert {cert} -key {key} -www' with --handshake certificate)"
        ),
    )
    server.add_argument(
        "--handshake",
        choices=("ibe-psk", "certificate", "resumption"),
        default="ibe-psk",
        help="the client's handshake (resumption: an IBE-PSK session, resumed with the previous connection's ticket)",
    )
    server.add_argument("--json", type=Path, metavar="FILE", help="also write the figures to FILE as JSON")
    server.add_argument("--force", action="store_true", help="overwrite an existing --json file")
    server.set_defaults(handler=_bench_server)
    wire = _add_command(
        sub,
        "wire",
        "bytes on the wire per handshake, IBE-PSK against certificate chains",
        """
        Count the bytes of complete TLS 1.3 handshakes, records included: IBE-PSK against certificate
        handshakes with chains of realistic sizes.
        """,
    )
    wire.set_defaults(handler=_bench_wire)
    zero = _add_command(
        sub,
        "zero-rtt",
        "time to first response byte, 0-RTT against 1-RTT, with added latency",
        """
        Time from TCP connect to the first byte of the answer, with the request sent in the first flight
        (0-RTT) or after the handshake (1-RTT), through a proxy that adds a one-way delay.
        """,
    )
    zero.add_argument(
        "--delay-ms", type=_non_negative_float, default=20.0, metavar="MS", help="one-way delay the proxy adds"
    )
    zero.add_argument(
        "--runs", type=_positive_int, default=9, metavar="N", help="connections of each kind; medians are reported"
    )
    zero.add_argument("--json", type=Path, metavar="FILE", help="also write the figures to FILE as JSON")
    zero.add_argument("--force", action="store_true", help="overwrite an existing --json file")
    zero.set_defaults(handler=_bench_zero_rtt)
    iot = _add_command(
        sub,
        "iot",
        "IoT device: bytes per reading, time to acknowledgement, peak RSS",
        """
        An IoT device delivering readings to its gateway: bytes on the wire per reading, time to the
        acknowledgement through a delaying proxy, and the device process's peak memory, IBE-PSK with 0-RTT
        against mutual TLS with certificates.
        """,
    )
    iot.add_argument(
        "--delay-ms", type=_non_negative_float, default=20.0, metavar="MS", help="one-way delay the proxy adds"
    )
    iot.add_argument(
        "--runs", type=_positive_int, default=9, metavar="N", help="readings of each kind; medians are reported"
    )
    iot.set_defaults(handler=_bench_iot)
    scale = _add_command(
        sub,
        "scale",
        "connections one ibepsk serve holds; handshakes/s vs the threaded server and --workers 2",
        """
        Hold many concurrent IBE-PSK connections (resumed) open against one "ibepsk serve" process and have
        every one answered, reporting the server's threads and RSS; then full IBE-PSK handshakes per second at
        --clients concurrent clients against the threaded server, "ibepsk serve" and "ibepsk serve --workers 2".
        """,
    )
    scale.add_argument(
        "--connections", type=_positive_int, default=10000, metavar="N", help="connections to hold open at once"
    )
    scale.add_argument(
        "--clients", type=_positive_int, default=64, metavar="N", help="concurrent clients for the handshake rate"
    )
    scale.add_argument(
        "--seconds", type=_positive_float, default=10.0, metavar="SECONDS", help="how long each rate runs"
    )
    scale.add_argument(
        "--pin-server",
        action="store_true",
        help="for the threaded and one-worker rates, pin the server to the first CPU and the clients to the others",
    )
    scale.set_defaults(handler=_bench_scale)
    every = _add_command(
        sub,
        "all",
        "every suite above with its defaults, one after the other",
        """
        Run ibe, tls, wire, zero-rtt and iot one after the other, each with its defaults (a few minutes).
        """,
    )
    every.add_argument(
        "--plot", type=Path, metavar="FILE", help="also draw the TLS results as a PNG (needs matplotlib)"
    )
    every.set_defaults(handler=_bench_all)


class _ClientCertProfiles:
    """``--client-cert-profile``'s choices, looked up only when parsing it or showing ``serve --help``: building
    the parser (for ``ibepsk --help``) does not load the TLS layer."""

    @staticmethod
    def _values() -> list[str]:
        from .tls.certs import ClientCertProfile

        return [profile.value for profile in ClientCertProfile]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values())

    def __contains__(self, value: object) -> bool:
        return value in self._values()


def _reportable_errors() -> tuple[type[BaseException], ...]:
    """The errors reported in one line; tlslite's only once loaded (nothing can have raised them before)."""
    errors: tuple[type[BaseException], ...] = (CliError, keys.KeyFileError, IbeError, FileExistsError, ValueError)
    tlslite_errors = sys.modules.get("tlslite.errors")
    return (*errors, tlslite_errors.TLSError) if tlslite_errors is not None else errors


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except _reportable_errors() as exc:
        print(f"ibepsk: error: {exc}", file=sys.stderr)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"ibepsk: error: {where}{exc.strerror or exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("ibepsk: interrupted", file=sys.stderr)
    return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())

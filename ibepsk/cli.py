"""The ``ibepsk`` command line: TA key management, benchmarks, and TLS endpoints.

Every expected failure (bad file, bad argument, existing output) ends in one
line on stderr and a non-zero exit; tracebacks are for bugs only.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from tlslite.errors import TLSError

from . import keys
from .epochs import EpochPeriod, epoch_identity
from .ibe.errors import IbeError
from .server import STOPPING_HELP
from .tls.certs import ClientCertProfile

MASTER_FILE = "master.key"
PUBLIC_FILE = "public.pem"

EXIT_FAILURE = 1


class CliError(Exception):
    """A problem to report to the user in one line."""


Handler = Callable[[argparse.Namespace], int]


# --- ibepsk ta ----------------------------------------------------------------


def _ta_init(args: argparse.Namespace) -> int:
    directory = Path(args.dir)
    directory.mkdir(parents=True, exist_ok=True)
    targets = [directory / MASTER_FILE, directory / PUBLIC_FILE]
    _refuse_existing(targets, args.force)
    master = keys.TAMasterKey.generate()
    keys.write_key_file(targets[0], master, force=args.force)
    keys.write_key_file(targets[1], master.public, force=args.force)
    print(f"wrote {targets[0]} (secret, mode 0600) and {targets[1]}")
    print(f"TA fingerprint: {master.public.fingerprint}")
    return 0


def _master_path(ta: str) -> Path:
    path = Path(ta)
    return path / MASTER_FILE if path.is_dir() else path


def _ta_extract(args: argparse.Namespace) -> int:
    master = keys.load_master_key(_master_path(args.master))
    output = Path(args.output)
    _refuse_existing([output], args.force)
    identity = _checked_identity(args.identity)
    if args.at and not args.epoch:
        raise CliError("--at only makes sense with --epoch")
    if args.epoch:
        identity = _epoch_bound(identity, args.epoch, args.at)
    identity_key = master.extract(identity)
    keys.write_key_file(output, identity_key, force=args.force)
    print(f"wrote identity key for {identity_key.identity!r} to {output} (secret, mode 0600)")
    return 0


def _ta_show(args: argparse.Namespace) -> int:
    key = keys.read_key_file(args.file)
    print(f"{args.file}: {key.describe()}")
    if isinstance(key, keys.IdentityKey) and args.ta:
        key.verify(keys.load_public_params(args.ta))
        print("  verified against the given TA public parameters")
    return 0


def _ta_import(args: argparse.Namespace) -> int:
    directory = Path(args.output)
    public = keys.TAPublicParams.from_bytes(_hex_arg(args.public_hex, "--public-hex"))
    writes: list[tuple[Path, keys.KeyObject]] = [(directory / PUBLIC_FILE, public)]
    if (args.identity_key_hex is None) != (args.identity is None):
        raise CliError("--identity-key-hex and --identity go together")
    if args.identity is not None:
        identity = _checked_identity(args.identity)
        key = keys.IdentityKey.from_bytes(identity, _hex_arg(args.identity_key_hex, "--identity-key-hex"), public)
        writes.append((directory / _key_file_name(identity), key))
    _refuse_existing([path for path, _ in writes], args.force)
    directory.mkdir(parents=True, exist_ok=True)
    for path, obj in writes:
        keys.write_key_file(path, obj, force=args.force)
        print(f"wrote {path}")
    return 0


def _epoch_bound(host: str, period: str, at: str | None) -> str:
    try:
        when = datetime.fromisoformat(at) if at else datetime.now(UTC)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return str(epoch_identity(host, when, EpochPeriod(period)))
    except ValueError as exc:
        raise CliError(f"cannot bind {host!r} to an epoch: {exc}") from None


def _checked_identity(identity: str) -> str:
    try:
        return keys.validate_identity(identity)
    except ValueError as exc:
        raise CliError(str(exc)) from None


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


def _refuse_existing(paths: Sequence[Path], force: bool) -> None:
    # Checked for every output before writing any, so a refusal changes nothing on disk.
    if force:
        return
    for path in paths:
        if path.exists():
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

    bench_ibe(backend_name=args.backend, iterations=args.iterations, runs=args.runs)
    return 0


def _bench_tls(args: argparse.Namespace) -> int:
    from .bench_tls import bench_tls

    bench_tls(runs=args.runs, capacity_seconds=args.capacity_seconds, plot=args.plot)
    return 0


def _bench_wire(args: argparse.Namespace) -> int:
    from .bench_wire import bench_wire

    bench_wire()
    return 0


def _bench_zero_rtt(args: argparse.Namespace) -> int:
    from .bench import bench_zero_rtt

    bench_zero_rtt(delay_ms=args.delay_ms, runs=args.runs)
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ibepsk", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_ta_commands(commands.add_parser("ta", help="Trusted Authority: keys and parameters"))
    _add_serve_command(
        commands.add_parser(
            "serve",
            help="TLS server, like openssl s_server",
            description=f"TLS server, like openssl s_server. {STOPPING_HELP}",
        )
    )
    _add_connect_command(commands.add_parser("connect", help="TLS client, like openssl s_client"))
    demo = commands.add_parser(
        "demo", help="on loopback: IBE-PSK, 0-RTT and a refused replay, resumption, client authentication"
    )
    demo.set_defaults(handler=_demo)
    _add_bench_commands(commands.add_parser("bench", help="benchmarks (medians and ratios)"))
    return parser


def _add_serve_command(serve: argparse.ArgumentParser) -> None:
    serve.add_argument("--accept", default="127.0.0.1:4433", metavar="HOST:PORT", help="listen address")
    serve.add_argument(
        "--ibe-key", action="append", default=[], metavar="FILE", help="identity key (repeatable; chosen by SNI)"
    )
    serve.add_argument("--default-identity", help="identity for clients whose SNI names none of the keys")
    serve.add_argument("--ta", metavar="PUBLIC", help="TA public parameters: check every --ibe-key against them")
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
        choices=[profile.value for profile in ClientCertProfile],
        default=ClientCertProfile.OPENSSL.value,
        help="rules for client certificates: openssl (RFC 5280 with OpenSSL's defaults) or webpki (CA/Browser "
        "Forum: SAN, keyUsage, key identifiers required) (default openssl)",
    )
    serve.add_argument("--psk-ke", action="store_true", help="also allow psk_ke (no (EC)DHE) when a client asks")
    serve.add_argument("--no-tickets", action="store_true", help="do not issue NewSessionTickets")
    serve.add_argument(
        "--max-early-data",
        type=int,
        default=0,
        metavar="BYTES",
        help="accept up to BYTES of 0-RTT data (default 0: refuse)",
    )
    serve.add_argument(
        "--replay-store",
        default="memory",
        metavar="SPEC",
        help="0-RTT strike register: memory, memory:MAX_ENTRIES, or redis://HOST:PORT/DB (shared by a fleet)",
    )
    serve.add_argument("--quiet", action="store_true", help="no per-connection log lines")
    _add_external_psk_options(serve)
    serve.set_defaults(handler=_serve)


def _add_external_psk_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--psk", metavar="HEX", help="external PSK (TLS 1.3), like openssl's -psk")
    parser.add_argument("--psk-identity", metavar="ID", help="identity of --psk, like openssl's -psk_identity")
    parser.add_argument(
        "--psk-hash", choices=["sha256", "sha384"], default="sha256", help="hash of --psk (default sha256, as openssl)"
    )


def _add_connect_command(connect: argparse.ArgumentParser) -> None:
    connect.add_argument("target", metavar="HOST:PORT")
    connect.add_argument("--ta", metavar="PUBLIC", help="TA public parameters: offer an IBE-PSK")
    connect.add_argument("--identity", help="server identity to encapsulate to (default: --servername or HOST)")
    connect.add_argument(
        "--servername", help="SNI host name (default: HOST when it is a name, else --identity when it is a DNS name)"
    )
    connect.add_argument("--ca", metavar="FILE", help="trust anchors: validate a server certificate (allows fallback)")
    connect.add_argument("--cert", metavar="FILE", help="client certificate chain (PEM) to answer the server's PHA")
    connect.add_argument("--key", metavar="FILE", help="private key (PEM) of --cert")
    connect.add_argument(
        "--answer-limit", type=int, default=1, metavar="N", help="answer at most N certificate requests (default 1)"
    )
    connect.add_argument(
        "--send",
        metavar="TEXT",
        help=r"send TEXT (backslash escapes like \r\n are decoded; default: stdin, read to EOF)",
    )
    connect.add_argument(
        "--send-early", metavar="TEXT", help="send TEXT as 0-RTT data in the first flight (escapes decoded)"
    )
    connect.add_argument("--wait", type=float, default=3.0, metavar="SECONDS", help="how long to wait for a reply")
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


def _add_ta_commands(ta: argparse.ArgumentParser) -> None:
    sub = ta.add_subparsers(dest="ta_command", required=True, metavar="ACTION")
    init = sub.add_parser("init", help=f"create a TA: DIR/{MASTER_FILE} (secret) and DIR/{PUBLIC_FILE}")
    init.add_argument("dir", metavar="DIR")
    init.add_argument("--force", action="store_true", help="overwrite existing files")
    init.set_defaults(handler=_ta_init)

    extract = sub.add_parser("extract", help="issue the identity key of IDENTITY")
    extract.add_argument(
        "--master", required=True, metavar="DIR|FILE", help=f"TA directory (holding {MASTER_FILE}) or master key file"
    )
    extract.add_argument("identity", metavar="IDENTITY", help="identity string, e.g. the server's host name")
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

    show = sub.add_parser("show", help="describe a key file (never prints secrets)")
    show.add_argument("file", metavar="FILE")
    show.add_argument("--ta", metavar="PUBLIC", help="also verify an identity key against these public parameters")
    show.set_defaults(handler=_ta_show)

    imp = sub.add_parser("import", help="import raw MIRACL-encoded hex keys (e.g. TiigerTLS's demo TA)")
    imp.add_argument("--public-hex", required=True, help="TA public key Ppub, 97-byte G1 point in hex")
    imp.add_argument("--identity-key-hex", help="identity key D_ID, 193-byte G2 point in hex")
    imp.add_argument("--identity", help="the identity the key was issued for")
    imp.add_argument("-o", "--output", required=True, metavar="DIR", help="directory to write the files to")
    imp.add_argument("--force", action="store_true", help="overwrite existing files")
    imp.set_defaults(handler=_ta_import)


def _add_bench_commands(bench: argparse.ArgumentParser) -> None:
    sub = bench.add_subparsers(dest="bench_command", required=True, metavar="SUITE")
    ibe = sub.add_parser("ibe", help="IBE primitives: H1, H3, encapsulate, decapsulate")
    ibe.add_argument("--backend", default=None, help="pairing backend (arkworks, pymcl)")
    ibe.add_argument("--iterations", type=int, default=50, help="calls per run")
    ibe.add_argument("--runs", type=int, default=5, help="runs; the median of the run medians is reported")
    ibe.set_defaults(handler=_bench_ibe)
    tls = sub.add_parser("tls", help="handshake CPU, bulk throughput, server capacity vs stock tlslite-ng and ssl")
    tls.add_argument("--runs", type=int, default=15, help="handshakes per scenario; medians are reported")
    tls.add_argument("--capacity-seconds", type=float, default=4.0, help="how long each capacity step runs")
    tls.add_argument("--plot", type=Path, metavar="PNG", help="also draw the results (needs matplotlib)")
    tls.set_defaults(handler=_bench_tls)
    wire = sub.add_parser("wire", help="bytes on the wire per handshake, IBE-PSK against certificate chains")
    wire.set_defaults(handler=_bench_wire)
    zero = sub.add_parser("zero-rtt", help="time to first response byte, 0-RTT against 1-RTT, with added latency")
    zero.add_argument("--delay-ms", type=float, default=20.0, help="one-way delay the proxy adds (default 20)")
    zero.add_argument("--runs", type=int, default=9, help="connections of each kind; medians are reported")
    zero.set_defaults(handler=_bench_zero_rtt)
    iot = sub.add_parser("iot", help="IoT device: bytes per reading, time to acknowledgement, peak RSS")
    iot.add_argument("--delay-ms", type=float, default=20.0, help="one-way delay the proxy adds (default 20)")
    iot.add_argument("--runs", type=int, default=9, help="readings of each kind; medians are reported")
    iot.set_defaults(handler=_bench_iot)
    every = sub.add_parser("all", help="every suite above with its defaults, one after the other")
    every.add_argument("--plot", type=Path, metavar="PNG", help="also draw the TLS results (needs matplotlib)")
    every.set_defaults(handler=_bench_all)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except (CliError, keys.KeyFileError, IbeError, FileExistsError, ValueError, TLSError) as exc:
        print(f"ibepsk: error: {exc}", file=sys.stderr)
    except OSError as exc:
        print(f"ibepsk: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
    except KeyboardInterrupt:
        print("ibepsk: interrupted", file=sys.stderr)
    return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())

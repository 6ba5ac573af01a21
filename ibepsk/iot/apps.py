"""Command lines of the IoT prototypes: the device, the gateway, and provisioning.

``examples/iot_device.py``, ``examples/iot_gateway.py`` and
``examples/provision.py`` run these; so does ``python -m ibepsk.iot
{device,gateway,provision}``. Expected failures end in one line on stderr and
exit status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from tlslite.errors import TLSError

from ..keys import KeyFileError
from ..server import STOPPING_HELP, stop_on_sigterm
from ..tls import Signer
from ..tls.early_data import EarlyDataStatus
from .config import DEFAULT_PIN_VARIABLE, ConfigError, Pkcs11Key, load_device_file, load_gateway_file
from .device import Delivery, Device, GatewayUnreachableError
from .gateway import Gateway
from .protocol import JsonValue, decode_value
from .provisioning import (
    CA_CERTIFICATE,
    create_device_ca,
    load_device_ca,
    provision_key_file,
    provision_token,
    write_device_file,
    write_gateway_file,
)
from .queue import ReadingQueue

EXIT_FAILURE = 1
#: Where ``ibepsk ta init DIR/ta`` puts the TA's public parameters.
TA_PUBLIC = Path("ta") / "public.pem"

Main = Callable[[argparse.Namespace], int]


def _run(parser: argparse.ArgumentParser, main: Main, argv: Sequence[str] | None) -> int:
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
        format="%(asctime)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    try:
        return main(args)
    except (ConfigError, KeyFileError, ValueError, OSError, TLSError, GatewayUnreachableError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print(f"{parser.prog}: stopped", file=sys.stderr)
    return EXIT_FAILURE


# --- the device -----------------------------------------------------------------------------


def device_parser(prog: str = "iot_device") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="IoT device: readings to the gateway over IBE-PSK")
    parser.add_argument("--config", required=True, metavar="FILE", help="device configuration (TOML)")
    parser.add_argument("--value", action="append", default=[], metavar="JSON", help="send this reading (repeatable)")
    parser.add_argument(
        "--readings", type=int, metavar="N", help="take N simulated sensor readings (default: for ever)"
    )
    parser.add_argument("--interval", type=float, default=10.0, metavar="SECONDS", help="between simulated readings")
    parser.add_argument("-v", "--verbose", action="store_true", help="log connections and retries")
    return parser


def device_main(argv: Sequence[str] | None = None) -> int:
    """Deliver what the queue holds, then each given or simulated reading as it is taken."""
    return _run(device_parser(), _device, argv)


def _device(args: argparse.Namespace) -> int:
    file = load_device_file(args.config)
    values = [_json_argument(value) for value in args.value]
    with _opened(file.open_signer()) as signer, ReadingQueue(file.queue) as queue:
        device = Device(file.device, signer, queue)
        _deliver_and_report(device)
        for value in values:
            device.record(value)
        _deliver_and_report(device)
        if not values or args.readings is not None:
            _take_readings(device, args.readings, args.interval)
    return 0


def _take_readings(device: Device, count: int | None, interval: float) -> None:
    for number, value in enumerate(simulated_temperature(random.Random())):
        if count is not None and number >= count:
            return
        if number:
            time.sleep(interval)
        device.record(value)
        _deliver_and_report(device)


def _deliver_and_report(device: Device) -> None:
    for delivery in device.deliver_all():
        print(describe_delivery(delivery), flush=True)


def describe_delivery(delivery: Delivery) -> str:
    early = "no 0-RTT" if delivery.early_data == EarlyDataStatus.NOT_OFFERED else f"0-RTT {delivery.early_data}"
    signed = "certificate signed" if delivery.signed else "identity restored from the ticket"
    how = [str(delivery.mode), early, signed]
    plural = "" if delivery.acknowledged == 1 else "s"
    return (
        f"delivered {delivery.acknowledged} reading{plural} ({', '.join(how)}): handshake "
        f"{delivery.handshake_ms:.1f} ms, acknowledged after {delivery.acknowledged_ms:.1f} ms"
    )


def simulated_temperature(rng: random.Random, start: float = 21.0) -> Iterator[JsonValue]:
    """A sensor for the example: a temperature in °C taking a small random walk."""
    celsius = start
    while True:
        yield {"temperature_c": round(celsius, 2)}
        celsius += rng.uniform(-0.25, 0.25)


def _json_argument(text: str) -> JsonValue:
    try:
        return decode_value(text)
    except ValueError:
        raise ValueError(f"--value {text!r} is not JSON") from None


@contextlib.contextmanager
def _opened(signer: Signer) -> Iterator[Signer]:
    """The signer, closed afterwards if it holds a resource (a PKCS#11 session)."""
    try:
        yield signer
    finally:
        close = getattr(signer, "close", None)
        if close is not None:
            close()


# --- the gateway ----------------------------------------------------------------------------


def gateway_parser(prog: str = "iot_gateway") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=f"IoT gateway: stores readings of authenticated devices. {STOPPING_HELP}"
    )
    parser.add_argument("--config", required=True, metavar="FILE", help="gateway configuration (TOML)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every connection")
    return parser


def gateway_main(argv: Sequence[str] | None = None) -> int:
    return _run(gateway_parser(), _gateway, argv)


def _gateway(args: argparse.Namespace) -> int:
    file = load_gateway_file(args.config)
    stop_on_sigterm()
    gateway = Gateway(file.gateway, *file.listen)
    try:
        host, port = gateway.address
        identities = ", ".join(key.identity for key in file.gateway.identity_keys)
        print(f"iot gateway: listening on {host}:{port} (identities: {identities})", flush=True)
        print(f"iot gateway: readings go to {file.gateway.database}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C or SIGTERM: stop serving, report, close the database
            gateway.serve_forever()
    finally:
        outcome = gateway.close()
    print(f"iot gateway: stopped ({outcome}); {gateway.stats.summary()}", file=sys.stderr)
    return 0


# --- provisioning ---------------------------------------------------------------------------


def provision_parser(prog: str = "provision") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="provision a device CA, a gateway and devices in DIR")
    sub = parser.add_subparsers(dest="what", required=True, metavar="WHAT")
    ca = sub.add_parser("ca", help=f"a device CA: DIR/{CA_CERTIFICATE} and its key")
    ca.add_argument("dir", type=Path, metavar="DIR")
    ca.set_defaults(handler=_provision_ca)

    gateway = sub.add_parser("gateway", help=f"DIR/gateway.toml, using DIR/{TA_PUBLIC} and DIR/NAME.key")
    gateway.add_argument("dir", type=Path, metavar="DIR")
    gateway.add_argument("--name", required=True, help="the gateway's identity (its key is DIR/NAME.key)")
    gateway.add_argument("--listen", default="127.0.0.1:4443", metavar="HOST:PORT")
    gateway.set_defaults(handler=_provision_gateway)

    device = sub.add_parser("device", help="a device certificate and key, and DIR/NAME.toml")
    device.add_argument("dir", type=Path, metavar="DIR")
    device.add_argument("name", metavar="NAME", help="the device's name (its certificate's common name)")
    device.add_argument("--gateway", required=True, metavar="HOST:PORT", help="where the gateway listens")
    device.add_argument("--gateway-name", required=True, help="the gateway's identity")
    device.add_argument("--pkcs11-module", type=Path, metavar="PATH", help="generate the key in this PKCS#11 module")
    device.add_argument("--token", help="with --pkcs11-module: the token's label")
    device.add_argument("--key-label", default="device-p256", help="with --pkcs11-module: the key's label")
    device.add_argument("--pin-env", default=DEFAULT_PIN_VARIABLE, help="the variable holding the token's user PIN")
    device.set_defaults(handler=_provision_device)
    return parser


def provision_main(argv: Sequence[str] | None = None) -> int:
    return _run(provision_parser(), lambda args: int(args.handler(args)), argv)


def _provision_ca(args: argparse.Namespace) -> int:
    args.dir.mkdir(parents=True, exist_ok=True)
    ca = create_device_ca(args.dir)
    print(f"wrote {args.dir / CA_CERTIFICATE} ({ca.certificate.subject.rfc4514_string()}) and its key (mode 0600)")
    return 0


def _provision_gateway(args: argparse.Namespace) -> int:
    path = args.dir / "gateway.toml"
    write_gateway_file(
        path,
        listen=args.listen,
        identity_keys=[args.dir / f"{args.name}.key"],
        ta=args.dir / TA_PUBLIC,
        device_ca=args.dir / CA_CERTIFICATE,
    )
    print(f"wrote {path}")
    return 0


def _provision_device(args: argparse.Namespace) -> int:
    ca = load_device_ca(args.dir)
    key: Path | Pkcs11Key
    if args.pkcs11_module is not None:
        if not args.token:
            raise ValueError("--pkcs11-module needs --token (the token's label)")
        key = Pkcs11Key(args.pkcs11_module.resolve(), args.token, args.key_label, args.pin_env)
        pin = os.environ.get(args.pin_env)
        if pin is None:
            raise ValueError(f"set the token's user PIN in the environment variable {args.pin_env}")
        certificate = provision_token(ca, args.dir, args.name, key, pin)
        print(f"generated key {args.key_label!r} in token {args.token!r}; wrote {certificate}")
    else:
        certificate, key = provision_key_file(ca, args.dir, args.name)
        print(f"wrote {certificate} and {key} (mode 0600)")
    path = args.dir / f"{args.name}.toml"
    write_device_file(
        path, gateway=args.gateway, gateway_name=args.gateway_name, ta=args.dir / TA_PUBLIC,
        certificate=certificate, key=key,
    )  # fmt: skip
    print(f"wrote {path}")
    return 0


MAINS: dict[str, Callable[[Sequence[str] | None], int]] = {
    "device": device_main,
    "gateway": gateway_main,
    "provision": provision_main,
}

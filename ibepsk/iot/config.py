"""Device and gateway configuration files (TOML), and the objects they describe.

Relative paths in a file are relative to the file's directory. Unknown keys are
errors, so a misspelt option is not silently ignored. A PKCS#11 PIN is never
in the file: the file names the environment variable that holds it.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from cryptography import x509

from .. import keys
from ..epochs import EpochPeriod
from ..tls import KeySigner, Signer, TrustAnchors
from ..tls.replay import ReplayStore, ReplayStoreError, open_replay_store
from ..tls.settings import DEFAULT_REPLAY_WINDOW_SECONDS
from .device import DeviceConfig, RetryPolicy
from .gateway import DEFAULT_TICKET_LIFETIME, GatewayConfig

DEFAULT_PIN_VARIABLE = "IBEPSK_PKCS11_PIN"

_T = TypeVar("_T")
_S = TypeVar("_S")


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Pkcs11Key:
    """Where the device key lives in a PKCS#11 token; the PIN is read from ``pin_variable`` when opened."""

    module: Path
    token: str
    key: str
    pin_variable: str = DEFAULT_PIN_VARIABLE


@dataclass(frozen=True)
class DeviceFile:
    """A device configuration file: the device, its certificate chain, its key, its queue."""

    device: DeviceConfig
    certificate: Path
    queue: Path
    key_file: Path | None = None
    pkcs11: Pkcs11Key | None = None

    def open_signer(self) -> Signer:
        """The signer that answers the gateway's CertificateRequest (close it if it has ``close``)."""
        if self.pkcs11 is None:
            assert self.key_file is not None
            return KeySigner.from_pem_files(self.certificate, self.key_file)
        from ..tls.pkcs11_signer import Pkcs11Signer

        token = self.pkcs11
        pin = os.environ.get(token.pin_variable)
        if pin is None:
            raise ConfigError(f"set the PKCS#11 user PIN in the environment variable {token.pin_variable}")
        chain = x509.load_pem_x509_certificates(self.certificate.read_bytes())
        return Pkcs11Signer(token.module, token.token, pin, token.key, chain)


@dataclass(frozen=True)
class GatewayFile:
    listen: tuple[str, int]
    gateway: GatewayConfig


class _Required:
    """Marks a key without a default."""


_REQUIRED = _Required()


class _Table:
    """Typed access to one TOML table, remembering which keys were read (the rest are typos)."""

    def __init__(self, values: dict[str, Any], where: str, base: Path) -> None:
        self._values, self.where, self._base = values, where, base
        self._read: set[str] = set()

    def get(self, name: str, kind: type[_T], default: _T | _Required = _REQUIRED) -> _T:
        value = self.optional(name, kind)
        if value is not None:
            return value
        if isinstance(default, _Required):
            raise ConfigError(f"{self.where}: missing {name!r}")
        return default

    def optional(self, name: str, kind: type[_T]) -> _T | None:
        self._read.add(name)
        value = self._values.get(name)
        if value is None:
            return None
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise ConfigError(f"{self.where}: {name!r} must be a {kind.__name__}, not {type(value).__name__}")
        return value

    def path(self, name: str) -> Path:
        return self._base / self.get(name, str)

    def optional_path(self, name: str) -> Path | None:
        value = self.optional(name, str)
        return None if value is None else self._base / value

    def paths(self, name: str) -> list[Path]:
        values = self.get(name, list)
        if not values or not all(isinstance(value, str) for value in values):
            raise ConfigError(f"{self.where}: {name!r} must be a non-empty list of paths")
        return [self._base / value for value in values]

    def table(self, name: str) -> _Table:
        return _Table(self.get(name, dict), f"{self.where} [{name}]", self._base)

    def optional_table(self, name: str) -> _Table | None:
        values = self.optional(name, dict)
        return None if values is None else _Table(values, f"{self.where} [{name}]", self._base)

    def convert(self, name: str, convert: Callable[[_S], _T], value: _S) -> _T:
        """``convert(value)``, its failure reported as a problem with key ``name``."""
        try:
            return convert(value)
        except (ValueError, OSError, keys.KeyFileError, ReplayStoreError) as exc:
            raise ConfigError(f"{self.where}: {name!r}: {exc}") from None

    def finish(self) -> None:
        unknown = sorted(set(self._values) - self._read)
        if unknown:
            raise ConfigError(f"{self.where}: unknown key {unknown[0]!r}")


def _read_toml(path: Path) -> _Table:
    try:
        values = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not TOML: {exc}") from None
    return _Table(values, str(path), path.parent)


def parse_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{text!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def load_device_file(path: str | Path) -> DeviceFile:
    top = _read_toml(Path(path))
    gateway, device = top.table("gateway"), top.table("device")
    epoch = gateway.optional("epoch", str)
    config = DeviceConfig(
        gateway=gateway.convert("address", parse_address, gateway.get("address", str)),
        gateway_name=gateway.get("name", str),
        ta_public=gateway.convert("ta", keys.load_public_params, gateway.path("ta")),
        epoch=gateway.convert("epoch", EpochPeriod, epoch) if epoch is not None else None,
        timeout=gateway.get("timeout", float, 10.0),
        batch=gateway.get("batch", int, 100),
        retry=_retry_policy(top.optional_table("retry")),
    )
    key_file, pkcs11 = device.optional_path("key"), _pkcs11_key(device.optional_table("pkcs11"))
    if (key_file is None) == (pkcs11 is None):
        raise ConfigError(f"{path} [device]: give either 'key' (a key file) or a [device.pkcs11] table")
    result = DeviceFile(config, device.path("certificate"), device.path("queue"), key_file, pkcs11)
    for table in (gateway, device, top):
        table.finish()
    return result


def _retry_policy(table: _Table | None) -> RetryPolicy:
    if table is None:
        return RetryPolicy()
    try:
        policy = RetryPolicy(
            initial_delay=table.get("initial_delay", float, 1.0),
            max_delay=table.get("max_delay", float, 60.0),
            multiplier=table.get("multiplier", float, 2.0),
            max_attempts=table.get("max_attempts", int, 0) or None,  # 0: retry for ever
        )
    except ValueError as exc:
        raise ConfigError(f"{table.where}: {exc}") from None
    table.finish()
    return policy


def _pkcs11_key(table: _Table | None) -> Pkcs11Key | None:
    if table is None:
        return None
    key = Pkcs11Key(
        module=table.path("module"),
        token=table.get("token", str),
        key=table.get("key", str),
        pin_variable=table.get("pin_env", str, DEFAULT_PIN_VARIABLE),
    )
    table.finish()
    return key


def load_gateway_file(path: str | Path) -> GatewayFile:
    top = _read_toml(Path(path))
    public = top.convert("ta", keys.load_public_params, top.path("ta"))
    identity_keys = [
        top.convert("identity_keys", lambda p: keys.load_identity_key(p, public), key_path)
        for key_path in top.paths("identity_keys")
    ]
    early_data = top.get("early_data", int, 4096)
    replay_spec = top.get("replay_store", str, "memory")
    config = GatewayConfig(
        identity_keys=identity_keys,
        device_anchors=top.convert("device_ca", TrustAnchors.from_pem_file, top.path("device_ca")),
        database=top.path("database"),
        early_data=early_data,
        replay_store=top.convert("replay_store", _replay_store, replay_spec) if early_data else None,
        timeout=top.get("timeout", float, 10.0),
        tickets=top.get("tickets", bool, True),
        ticket_lifetime=top.get("ticket_lifetime", int, DEFAULT_TICKET_LIFETIME),
    )
    listen = top.convert("listen", parse_address, top.get("listen", str, "127.0.0.1:4443"))
    top.finish()
    return GatewayFile(listen, config)


def _replay_store(spec: str) -> ReplayStore:
    return open_replay_store(spec, DEFAULT_REPLAY_WINDOW_SECONDS)

"""IoT test support: a TA and device CA, devices with their queues, gateways on 127.0.0.1."""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ibepsk.client import open_tcp
from ibepsk.iot.device import Device, DeviceConfig, RetryPolicy, SocketOpener
from ibepsk.iot.gateway import Gateway, GatewayConfig
from ibepsk.iot.queue import ReadingQueue
from ibepsk.keys import TAMasterKey
from ibepsk.tls import KeySigner, TrustAnchors

from pki import Issued, issue, make_ca
from test_cli_ta import ibepsk
from tls_support import ListeningProcess

GATEWAY_NAME = "gateway.example"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
#: Quick retries for tests that take the gateway away.
FAST_RETRY = RetryPolicy(initial_delay=0.05, max_delay=0.2, max_attempts=100)


@dataclass
class Fleet:
    """A TA whose key for GATEWAY_NAME the gateways hold, a device CA, and a directory for databases and queues."""

    ta: TAMasterKey
    ca: Issued
    directory: Path
    _devices: dict[str, Issued] = field(default_factory=dict)

    def certificate(self, name: str) -> Issued:
        if name not in self._devices:
            self._devices[name] = issue(self.ca, name, server=False)
        return self._devices[name]

    def gateway_config(self, database: str = "gateway.sqlite", **fields: Any) -> GatewayConfig:
        config = GatewayConfig(
            [self.ta.extract(GATEWAY_NAME)], TrustAnchors([self.ca.certificate]), self.directory / database
        )
        return dataclasses.replace(config, **fields)

    def device(
        self,
        name: str,
        address: tuple[str, int],
        *,
        certificate: Issued | None = None,
        retry: RetryPolicy = FAST_RETRY,
        open_socket: SocketOpener = open_tcp,
        **fields: Any,
    ) -> Device:
        issued = certificate or self.certificate(name)
        config = DeviceConfig(address, GATEWAY_NAME, self.ta.public, retry=retry, **fields)
        queue = ReadingQueue(self.directory / f"{name}.queue")
        return Device(config, KeySigner([issued.certificate], issued.key), queue, open_socket=open_socket)


def new_fleet(directory: Path, ta: TAMasterKey) -> Fleet:
    return Fleet(ta, make_ca("ibepsk IoT test device CA"), directory)


@contextlib.contextmanager
def running_gateway(config: GatewayConfig, port: int = 0) -> Iterator[Gateway]:
    gateway = Gateway(config, "127.0.0.1", port).start()
    try:
        yield gateway
    finally:
        gateway.close()


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def provision_factory(directory: Path) -> None:
    """The TA, the gateway's identity key, the device CA and the gateway's configuration."""
    for result in (
        ibepsk("ta", "init", str(directory / "ta")),
        ibepsk(
            "ta",
            "extract",
            "--master",
            str(directory / "ta"),
            GATEWAY_NAME,
            "-o",
            str(directory / f"{GATEWAY_NAME}.key"),
        ),
        run_example("provision.py", "ca", str(directory)),
        run_example("provision.py", "gateway", str(directory), "--name", GATEWAY_NAME, "--listen", "127.0.0.1:0"),
    ):
        assert result.returncode == 0, result.stderr


def run_example(script: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True, timeout=120, env=env
    )


class GatewayProcess(ListeningProcess):
    """``examples/iot_gateway.py`` as a process."""

    def __init__(self, config: Path, env: dict[str, str] | None = None) -> None:
        super().__init__([sys.executable, str(EXAMPLES / "iot_gateway.py"), "--config", str(config), "--verbose"], env)

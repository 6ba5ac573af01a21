#!/usr/bin/env python3
"""A gateway on ``ibepsk.asyncio``: IBE-PSK handshakes (0-RTT welcome), devices authenticated after the
handshake against a device CA, one acknowledgement per line they send.

    python examples/asyncio_gateway.py --ibe-key gateway.key --ta ta/public.pem --ca device-ca.pem

A device: ``ibepsk connect 127.0.0.1:4440 --ta ta/public.pem --identity NAME --cert dev.pem --key dev.key``.
The API is in docs/asyncio.md; ``ibepsk serve`` and ibepsk/iot/ are fuller servers on the same machinery.
"""

from __future__ import annotations

import argparse
import asyncio
import os

import ibepsk.asyncio
from ibepsk import HandshakeSettings, IbeKeyring, TrustAnchors
from ibepsk.keys import load_identity_key, load_public_params
from ibepsk.tls.replay import MemoryReplayStore

#: Seconds a device may take to answer the certificate request, or stay silent after.
TIMEOUT = 30.0


def gateway_settings(args: argparse.Namespace) -> HandshakeSettings:
    settings = HandshakeSettings()
    public = load_public_params(args.ta)
    settings.ibe_keyring = IbeKeyring([load_identity_key(path, public) for path in args.ibe_key])
    settings.client_auth_anchors = TrustAnchors.from_pem_file(args.ca)  # who may be a device
    settings.ticketKeys = [os.urandom(32)]  # a resumed device is known by its ticket: no new signature
    settings.accept_early_data = 1024
    settings.replay_store = MemoryReplayStore(10)
    return settings


async def serve_device(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    tls = writer.get_extra_info("tls")
    try:
        device = tls.client_auth or await asyncio.wait_for(ibepsk.asyncio.request_client_auth(writer), TIMEOUT)
        print(f"{device.subject} ({device.method}, {tls.handshake_mode})", flush=True)
        # 0-RTT data is acted on only now, once the device is authenticated (it may be a replay otherwise).
        for line in tls.early_data.splitlines(keepends=True):
            writer.write(f"ack {device.subject} ".encode() + line)
        while line := await asyncio.wait_for(reader.readline(), TIMEOUT):
            writer.write(f"ack {device.subject} ".encode() + line)
            await writer.drain()
    except Exception as exc:  # a refused certificate (the device got the alert), a timeout, a reset
        print(f"device refused or gone: {type(exc).__name__} {exc}", flush=True)
    writer.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ibe-key", action="append", required=True, metavar="FILE")
    parser.add_argument("--ta", required=True, metavar="FILE", help="the TA's public parameters")
    parser.add_argument("--ca", required=True, metavar="FILE", help="the device CA certificate (PEM)")
    parser.add_argument("--port", type=int, default=4440)
    args = parser.parse_args()
    server = await ibepsk.asyncio.start_server(serve_device, "127.0.0.1", args.port, settings=gateway_settings(args))
    print(f"asyncio gateway: listening on 127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())

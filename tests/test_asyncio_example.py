"""examples/asyncio_gateway.py as a process: a device authenticates after the handshake and gets its acks."""

from __future__ import annotations

import sys
from pathlib import Path

from ibepsk import keys
from ibepsk.keys import TAMasterKey

from pki import issue, make_ca
from test_cli_ta import ibepsk
from tls_support import ListeningProcess

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "asyncio_gateway.py"


def test_a_device_of_the_ca_is_acknowledged_and_a_stranger_is_refused(tmp_path: Path, ta: TAMasterKey) -> None:
    keys.write_key_file(tmp_path / "gateway.key", ta.extract("gateway.example"))
    keys.write_key_file(tmp_path / "public.pem", ta.public)
    device_ca = make_ca("device CA")
    (tmp_path / "ca.pem").write_bytes(device_ca.cert_pem())
    device_cert, device_key = issue(device_ca, "sensor-9", server=False).write(tmp_path, "device")
    stranger_cert, stranger_key = issue(make_ca("stranger CA"), "intruder", server=False).write(tmp_path, "stranger")
    gateway = ListeningProcess([
        sys.executable, str(EXAMPLE), "--ibe-key", str(tmp_path / "gateway.key"), "--ta", str(tmp_path / "public.pem"),
        "--ca", str(tmp_path / "ca.pem"), "--port", "0",
    ])  # fmt: skip
    connect = ["connect", f"127.0.0.1:{gateway.port}", "--ta", str(tmp_path / "public.pem"), "--identity",
               "gateway.example", "--wait", "2"]  # fmt: skip
    try:
        device = ibepsk(*connect, "--cert", str(device_cert), "--key", str(device_key), "--send", r"t=21.5\n")
        stranger = ibepsk(*connect, "--cert", str(stranger_cert), "--key", str(stranger_key), "--send", r"t=99\n")
    finally:
        gateway.process.terminate()
        output, _ = gateway.process.communicate(timeout=10)
    assert device.returncode == 0, device.stderr
    assert device.stdout == "ack CN=sensor-9 t=21.5\n"
    assert "CN=sensor-9 (post-handshake, ibe-psk)" in output
    assert stranger.returncode != 0 and "unknown_ca" in stranger.stderr
    assert "device refused or gone: TLSLocalAlert" in output

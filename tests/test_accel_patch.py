"""patches/0007-cryptography-backend.patch: tlslite-ng with a cryptography backend, against stock tlslite-ng.

A patched copy of the installed tlslite-ng serves from a child process; this
process's stock tlslite-ng client talks to it. The server reports which
implementation protected the records and which key class signed.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import tlslite
from tlslite.constants import GroupName

from patch_support import patched_tlslite
from pki import issue, make_ca
from tls_support import TIMEOUT

PATCH = "0007-cryptography-backend.patch"

SERVER = """
import socket, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import tlslite
from tlslite.keyexchange import ECDHKeyExchange
from tlslite.utils.cipherfactory import createAESGCM
from tlslite.utils.keyfactory import parsePEMKey
from tlslite.x509certchain import X509CertChain

assert tlslite.__file__.startswith(sys.argv[1]), tlslite.__file__
cert, key_file, count = Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
chain = X509CertChain()
chain.parsePemList(cert.read_text())
key = parsePEMKey(key_file.read_text(), private=True)
p256 = ECDHKeyExchange(tlslite.constants.GroupName.secp256r1, (3, 4)).get_random_private_key()
print(createAESGCM(bytearray(16)).implementation, type(p256).__module__.split(".")[0], flush=True)
settings = tlslite.HandshakeSettings()
settings.cipherNames = ["aes128gcm", "aes256gcm", "chacha20-poly1305", "aes128ccm", "aes128ccm_8"]
with socket.create_server(("127.0.0.1", 0)) as listener:
    print(listener.getsockname()[1], flush=True)
    for _ in range(count):
        sock, _ = listener.accept()
        sock.settimeout(10)
        conn = tlslite.TLSConnection(sock)
        conn.handshakeServer(certChain=chain, privateKey=key, settings=settings)
        data = conn.read()
        conn.write(f"{conn.getCipherImplementation()} {type(key).__name__} ".encode() + data)
        conn.close()
"""

#: (server key kind, [(client cipher, client group), ...]) — one child process each.
CASES = [
    ("p256", [("aes128gcm", "x25519"), ("chacha20-poly1305", "secp256r1"), ("aes256gcm", "x448")]),
    ("rsa2048", [("aes128ccm", "secp384r1")]),
    ("ed25519", [("aes128ccm_8", "secp521r1")]),
]
KEY_CLASSES = {"p256": "Cryptography_ECDSAKey", "rsa2048": "Cryptography_RSAKey", "ed25519": "Cryptography_EdDSAKey"}


@pytest.fixture(scope="module")
def patched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return patched_tlslite(PATCH, tmp_path_factory.mktemp("patch0007"))


@contextlib.contextmanager
def patched_server(root: Path, workdir: Path, kind: str, count: int) -> Iterator[tuple[list[str], int]]:
    """The child's backend report and its port; on exit, waits for it to serve ``count`` connections."""
    cert, key = issue(make_ca(), "localhost", kind=kind).write(workdir, kind)
    script = workdir / "serve.py"
    script.write_text(textwrap.dedent(SERVER))
    command = [sys.executable, str(script), str(root), str(cert), str(key), str(count)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as child:
        try:
            assert child.stdout is not None
            report = child.stdout.readline().split()
            port = child.stdout.readline().strip()
            assert port.isdigit(), (
                f"the patched server did not start: {report} {child.stderr.read() if child.stderr else ''}"
            )
            yield report, int(port)
            assert child.wait(timeout=TIMEOUT) == 0, child.stderr.read() if child.stderr else ""
        finally:
            if child.poll() is None:
                child.kill()


def stock_client_exchange(port: int, cipher: str, group: str, message: bytes) -> tuple[bytes, int]:
    settings = tlslite.HandshakeSettings()
    settings.cipherNames, settings.eccCurves, settings.keyShares = [cipher], [group], [group]
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        conn = tlslite.TLSConnection(sock)
        conn.handshakeClientCert(settings=settings, serverName="localhost")
        assert conn.getCipherImplementation() == "python", "the client must be stock tlslite-ng"
        conn.write(message)
        reply = bytes(conn.read())
        curve = conn.ecdhCurve
        conn.close()
    return reply, curve


@pytest.mark.parametrize(("kind", "connections"), CASES, ids=[kind for kind, _ in CASES])
def test_patched_tlslite_uses_cryptography_and_talks_to_stock(
    patched: Path, tmp_path: Path, kind: str, connections: list[tuple[str, str]]
) -> None:
    with patched_server(patched, tmp_path, kind, len(connections)) as (report, port):
        assert report == ["cryptography", "cryptography"], "AES-GCM and the P-256 key exchange must use cryptography"
        for cipher, group in connections:
            message = f"{cipher} over {group}".encode()
            reply, curve = stock_client_exchange(port, cipher, group, message)
            assert reply == f"cryptography {KEY_CLASSES[kind]} ".encode() + message
            assert curve == getattr(GroupName, group)

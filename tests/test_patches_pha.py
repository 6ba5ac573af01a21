"""patches/0002-0006 and 0009: the tlslite-ng bugs around client certificates, on stock and patched tlslite-ng.

Each scenario runs plain ``tlslite.TLSConnection`` objects over a socketpair
in a fresh interpreter and prints what it observed; the same fixes through
ibepsk are tested in test_pha.py and test_pha_bad_input.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import tlslite

from patch_support import patched_tlslite, run_python
from pki import issue, make_ca

# A PSK handshake (no server certificate) between two stock connections whose client offers PHA.
PRELUDE = """
    import socket, threading
    from tlslite import TLSConnection, HandshakeSettings
    from tlslite.utils.keyfactory import parsePEMKey
    from tlslite.x509certchain import X509CertChain
    from patch_harness import in_thread, outcome

    def psk_settings():
        settings = HandshakeSettings()
        settings.pskConfigs = [(bytearray(b"id"), bytearray(32), "sha256")]
        return settings

    def credentials():
        chain = X509CertChain()
        chain.parsePemList(open(CERT).read())
        return chain, parsePEMKey(open(KEY).read(), private=True, implementations=["python"])

    def connect(server_settings=None, client_class=TLSConnection, server_class=TLSConnection, **server_args):
        a, b = socket.socketpair()
        a.settimeout(10), b.settimeout(10)
        server, client = server_class(b), client_class(a)
        thread = threading.Thread(
            target=server.handshakeServer, kwargs=dict(settings=server_settings or psk_settings(), **server_args)
        )
        thread.start()
        client.handshakeClientCert(*credentials(), settings=psk_settings())
        thread.join(10)
        return server, client

    def request_and_read(server, settings=None):
        for _ in server.request_post_handshake_auth(settings):
            pass
        server.read()
"""


@pytest.fixture(scope="module")
def credentials(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An ECDSA P-256 client certificate and key, as PEM files."""
    return issue(make_ca(), "client", server=False).write(tmp_path_factory.mktemp("pki"), "client")


def scenario(code: str, credentials: tuple[Path, Path], patch: str | None, tmp_path: Path) -> list[str]:
    cert, key = credentials
    source = f"\n    CERT, KEY = {str(cert)!r}, {str(key)!r}" + PRELUDE + code
    result = run_python(source, patched_tlslite(patch, tmp_path) if patch else None)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


# --- patches/0002-pha-no-common-signature-scheme.patch ------------------------------------------------

NO_COMMON_SCHEME = """
    server, client = connect()
    rsa_only = psk_settings()
    rsa_only.ecdsaSigHashes, rsa_only.more_sig_schemes, rsa_only.dsaSigHashes = [], [], []
    server_done = in_thread(lambda: request_and_read(server, rsa_only))
    client_outcome = outcome(lambda: (client.read(min=0), client.write(b"after")))
    server_outcome = server_done()
    print(client_outcome, server_outcome, len(server._cert_requests))  # a request is dropped once answered
"""


def test_0002_stock_client_crashes_without_a_common_scheme(credentials: tuple[Path, Path], tmp_path: Path) -> None:
    # The client's read() ends in a TypeError: no alert, the server sees the connection drop.
    client, server, unanswered = scenario(NO_COMMON_SCHEME, credentials, None, tmp_path)
    assert client == "TypeError"
    assert server != "ok" and unanswered == "1"


def test_0002_patched_client_declines(credentials: tuple[Path, Path], tmp_path: Path) -> None:
    patch = "0002-pha-no-common-signature-scheme.patch"
    result = scenario(NO_COMMON_SCHEME, credentials, patch, tmp_path)
    assert result == ["ok", "ok", "0"], "an empty Certificate and a Finished, which the server accepts"


# --- patches/0003-pha-empty-certificate-compression.patch ---------------------------------------------

NO_COMPRESSION = """
    server, client = connect()
    uncompressed = psk_settings()
    uncompressed.certificate_compression_receive = []
    server_done = in_thread(lambda: request_and_read(server, uncompressed))
    client_outcome = outcome(lambda: (client.read(min=0), client.write(b"after")))
    server_outcome = server_done()
    chain = server.session.clientCertChain
    print(server_outcome, client_outcome, bool(chain and chain.x509List))
"""


def test_0003_stock_server_breaks_its_own_pha_without_compression(
    credentials: tuple[Path, Path], tmp_path: Path
) -> None:
    # Both ends reject the empty list the server sent and send decode_error at once: one of them
    # may find the socket already closed by the other.
    server, client, authenticated = scenario(NO_COMPRESSION, credentials, None, tmp_path)
    assert "decode_error" in server + client
    assert server != "ok" and authenticated == "False"


def test_0003_patched_server_authenticates_without_compression(credentials: tuple[Path, Path], tmp_path: Path) -> None:
    result = scenario(NO_COMPRESSION, credentials, "0003-pha-empty-certificate-compression.patch", tmp_path)
    assert result == ["ok", "ok", "True"]


# --- patches/0004-pha-certificate-request-signature-list.patch -----------------------------------------

SIGNATURE_LIST = """
    class RecordingClient(TLSConnection):
        def _handle_pha(self, cert_request):
            self.requested = list(cert_request.supported_signature_algs)
            return super()._handle_pha(cert_request)

    server, client = connect(client_class=RecordingClient)
    server_done = in_thread(lambda: request_and_read(server))
    outcome(lambda: (client.read(min=0), client.write(b"after")))
    server_done()
    # RFC 8446 4.2.3: no PKCS#1 v1.5 (x, 1), no DSA (x, 2), no ECDSA with SHA-1 (2, 3) or SHA-224 (3, 3)
    legacy = [s for s in client.requested if s[1] in (1, 2) or s in ((2, 3), (3, 3))]
    print(len(client.requested), len(legacy))
"""


def test_0004_stock_request_offers_legacy_schemes(credentials: tuple[Path, Path], tmp_path: Path) -> None:
    _, legacy = scenario(SIGNATURE_LIST, credentials, None, tmp_path)
    assert int(legacy) > 0


def test_0004_patched_request_offers_only_tls13_schemes(credentials: tuple[Path, Path], tmp_path: Path) -> None:
    requested, legacy = scenario(
        SIGNATURE_LIST, credentials, "0004-pha-certificate-request-signature-list.patch", tmp_path
    )
    assert int(requested) > 0 and int(legacy) == 0


# --- patches/0005-pha-reject-empty-context.patch --------------------------------------------------------

EMPTY_CONTEXT = """
    from tlslite.extensions import CompressedCertificateExtension
    from tlslite.messages import CertificateRequest

    def request_with_empty_context(server):
        zlib = CompressedCertificateExtension().create([1])  # stock readAsync needs one (patches/0003)
        request = CertificateRequest((3, 4)).create(context=b"", sig_algs=[(4, 3)], extensions=[zlib])
        server._cert_requests[b""] = request
        for _ in server._sendMsg(request):
            pass
        server.read()

    server, client = connect()
    server_done = in_thread(lambda: request_with_empty_context(server))
    client_outcome = outcome(lambda: client.read())
    print(client_outcome, server_done())
"""


def test_0005_stock_client_answers_an_empty_context(credentials: tuple[Path, Path], tmp_path: Path) -> None:
    # The client signs and sends its certificate; only the tlslite server then objects.
    client, server = scenario(EMPTY_CONTEXT, credentials, None, tmp_path)
    assert server == "TLSLocalAlert:illegal_parameter"
    assert client == "TLSRemoteAlert:illegal_parameter"


def test_0005_patched_client_refuses_an_empty_context(credentials: tuple[Path, Path], tmp_path: Path) -> None:
    client, server = scenario(EMPTY_CONTEXT, credentials, "0005-pha-reject-empty-context.patch", tmp_path)
    assert client == "TLSLocalAlert:illegal_parameter"
    assert server == "TLSRemoteAlert:illegal_parameter"


# --- patches/0006-psk-server-cert-chain.patch -----------------------------------------------------------

PSK_SESSION = """
    chain, key = credentials()
    server, client = connect(certChain=chain, privateKey=key)
    print(server.session.serverCertChain is None, client.session.serverCertChain is None)
"""


def test_0006_stock_psk_session_names_a_server_certificate(credentials: tuple[Path, Path], tmp_path: Path) -> None:
    assert scenario(PSK_SESSION, credentials, None, tmp_path) == ["False", "True"]


def test_0006_patched_psk_session_has_no_server_certificate(credentials: tuple[Path, Path], tmp_path: Path) -> None:
    result = scenario(PSK_SESSION, credentials, "0006-psk-server-cert-chain.patch", tmp_path)
    assert result == ["True", "True"]


# --- patches/0009-tls13-client-certificate-compression.patch --------------------------------------------

IN_HANDSHAKE_COMPRESSION = """
    from tlslite.constants import ExtensionType
    from tlslite.messages import Certificate, CertificateRequest

    class UncompressedServer(TLSConnection):
        # a server that cannot receive compressed certificates (OpenSSL 3.0 is one)
        def _queue_message(self, msg):
            if isinstance(msg, CertificateRequest):
                msg.extensions = [e for e in msg.extensions if e.extType != ExtensionType.compress_certificate]
            super()._queue_message(msg)

    class RecordingClient(TLSConnection):
        def _sendMsg(self, msg, *args, **kwargs):
            if isinstance(msg, Certificate):
                self.sent = type(msg).__name__
            return super()._sendMsg(msg, *args, **kwargs)

    chain, key = credentials()
    server_settings = HandshakeSettings()
    a, b = socket.socketpair()
    a.settimeout(10), b.settimeout(10)
    server, client = UncompressedServer(b), RecordingClient(a)
    thread = threading.Thread(target=lambda: outcome(lambda: server.handshakeServer(
        settings=server_settings, certChain=chain, privateKey=key, reqCert=True)))
    thread.start()
    outcome(lambda: client.handshakeClientCert(settings=HandshakeSettings()))
    thread.join(10)
    print(client.sent)
"""


def test_0009_client_certificate_compression_follows_the_request(
    credentials: tuple[Path, Path], tmp_path: Path
) -> None:
    stock = scenario(IN_HANDSHAKE_COMPRESSION, credentials, None, tmp_path)
    if tlslite.__version__ == "0.8.2":
        assert stock == ["CompressedCertificate"], "0.8.2 compresses though the server offered no compression"
        patch = "0009-tls13-client-certificate-compression.patch"
        assert scenario(IN_HANDSHAKE_COMPRESSION, credentials, patch, tmp_path) == ["Certificate"]
    else:
        assert stock == ["Certificate"], "fixed upstream after 0.8.2: the patch is for 0.8.2 only"

"""Client certificates as OpenSSL issues and accepts them: the OpenSSL-like profile, its web-PKI alternative, and
``serve --verify-client`` (a CertificateRequest in the handshake).

The certificates come from real ``openssl`` one-liners, the way device PKIs make them: a CA from ``openssl req
-x509`` (no keyUsage), leaves from ``openssl x509 -req`` without an extfile (no subjectAltName; X.509 v1 before
OpenSSL 3.2), and a self-signed ``CA:TRUE`` client certificate trusted as itself, like TiigerTLS's built-in one.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from test_pha_openssl import openssl  # noqa: F401 - the fixture
from tlslite.constants import AlertDescription

from ibepsk import keys
from ibepsk.keys import TAMasterKey
from ibepsk.tls import ClientCertificateError, ClientCertProfile, TrustAnchors
from ibepsk.tls.certs import load_certificates

from pki import issue, make_ca
from test_cli_endpoints import ServerProcess
from test_cli_ta import assert_one_line_error, ibepsk

REQUEST = "GET / HTTP/1.0\r\n\r\n"


class OpenSslPki:
    """Keys and certificates made by the ``openssl`` command line in one directory."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary, self.directory = binary, directory

    def run(self, *args: str) -> None:
        subprocess.run([self.binary, *args], cwd=self.directory, check=True, capture_output=True, timeout=30)

    def path(self, name: str) -> Path:
        return self.directory / name

    def self_signed(self, name: str, common_name: str, *extensions: str) -> None:
        """``openssl req -x509``: a self-signed P-256 certificate, ``NAME.pem`` and ``NAME.key``."""
        self.run(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", "-subj", f"/CN={common_name}", "-days", "30",
            *(arg for extension in extensions for arg in ("-addext", extension)),
        )  # fmt: skip

    def signed(self, name: str, common_name: str, ca: str, *, days: int = 30, requested: str | None = None) -> None:
        """``openssl x509 -req`` without an extfile; ``requested`` is an extension the request asks for."""
        request = ["-addext", requested] if requested else []
        self.run(
            "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={common_name}", *request,
        )  # fmt: skip
        copy = ["-copy_extensions", "copy"] if requested else []
        self.run(
            "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial",
            "-out", f"{name}.pem", "-days", str(days), *copy,
        )  # fmt: skip

    def certificate(self, name: str) -> x509.Certificate:
        return load_certificates(self.path(f"{name}.pem"))[0]


@pytest.fixture(scope="module")
def pki(openssl: str, tmp_path_factory: pytest.TempPathFactory) -> OpenSslPki:  # noqa: F811
    made = OpenSslPki(openssl, tmp_path_factory.mktemp("openssl-pki"))
    made.self_signed("ca", "device CA")  # openssl.cnf's v3_ca: basicConstraints CA:TRUE, key identifiers, no keyUsage
    made.signed("device", "device-1", "ca")
    made.signed("expired", "device-old", "ca", days=-1)
    made.signed("server-only", "device-srv", "ca", requested="extendedKeyUsage=serverAuth")
    made.self_signed("pinned", "tiiger-client", "basicConstraints=critical,CA:TRUE")
    made.self_signed("stranger-ca", "stranger CA")
    made.signed("stranger", "stranger-1", "stranger-ca")
    made.self_signed("signing-ca", "signing CA", "keyUsage=critical,digitalSignature")
    made.signed("under-signing-ca", "device-2", "signing-ca")
    server_ca = make_ca("server CA")
    issue(server_ca, "localhost").write(made.directory, "server")
    made.path("server-ca.pem").write_bytes(server_ca.cert_pem())
    return made


@dataclass(frozen=True)
class Case:
    """A client certificate, the --ca the server trusts, and the alert it gets (None: accepted)."""

    certificate: str
    anchors: str
    alert: str | None = None
    reason: str = ""

    @property
    def subject(self) -> str:
        return {"device": "device-1", "pinned": "tiiger-client"}[self.certificate]


CASES = [
    pytest.param(Case("device", "ca"), id="no-san-leaf-under-ca-without-keyusage"),
    pytest.param(Case("pinned", "pinned"), id="self-signed-ca-true-pinned"),
    pytest.param(Case("expired", "ca", "certificate_expired", "'CN=device-old' is valid from"), id="expired"),
    pytest.param(
        Case("server-only", "ca", "bad_certificate", "extendedKeyUsage of 'CN=device-srv' does not allow clientAuth"),
        id="serverauth-eku",
    ),
    pytest.param(
        Case("stranger", "ca", "unknown_ca", "no chain from 'CN=stranger-1' to a trust anchor"), id="untrusted"
    ),
    pytest.param(
        Case("pinned", "ca", "unknown_ca", "'CN=tiiger-client' is self-signed and not one of the trust anchors"),
        id="self-signed-not-pinned",
    ),
]


# --- TrustAnchors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_openssl_profile(pki: OpenSslPki, case: Case) -> None:
    anchors = TrustAnchors([pki.certificate(case.anchors)])
    chain = [pki.certificate(case.certificate)]
    if case.alert is None:
        assert anchors.verify_client(chain)[0] == chain[0]
        return
    with pytest.raises(ClientCertificateError) as raised:
        anchors.verify_client(chain)
    assert AlertDescription.toRepr(raised.value.alert) == case.alert
    assert case.reason in raised.value.reason


@pytest.mark.parametrize("certificate", ["device", "pinned"])
def test_webpki_profile_refuses_what_the_openssl_profile_accepts(pki: OpenSslPki, certificate: str) -> None:
    anchors = "pinned" if certificate == "pinned" else "ca"
    strict = TrustAnchors([pki.certificate(anchors)], client_profile=ClientCertProfile.WEBPKI)
    with pytest.raises(ClientCertificateError) as raised:
        strict.verify_client([pki.certificate(certificate)])
    assert raised.value.alert == AlertDescription.bad_certificate
    assert "under the webpki profile" in raised.value.reason


def test_an_untrusted_self_signed_certificate_is_unknown_ca_for_the_real_reason(pki: OpenSslPki) -> None:
    # cryptography's verifier objects first to CA:TRUE in a leaf; the reason goes with the alert.
    strict = TrustAnchors([pki.certificate("ca")], client_profile=ClientCertProfile.WEBPKI)
    with pytest.raises(ClientCertificateError) as raised:
        strict.verify_client([pki.certificate("pinned")])
    assert raised.value.alert == AlertDescription.unknown_ca
    assert raised.value.reason == (
        "no chain to a trust anchor: 'CN=tiiger-client' is self-signed and not one of the trust anchors"
    )


def test_a_ca_whose_keyusage_forbids_certificate_signing_is_refused(pki: OpenSslPki) -> None:
    with pytest.raises(ClientCertificateError) as raised:
        TrustAnchors([pki.certificate("signing-ca")]).verify_client([pki.certificate("under-signing-ca")])
    assert raised.value.alert == AlertDescription.bad_certificate
    assert "keyUsage of CA 'CN=signing CA' does not allow keyCertSign" in raised.value.reason


def test_a_v1_leaf_under_an_intermediate(pki: OpenSslPki, tmp_path: Path) -> None:
    made = OpenSslPki(pki.binary, tmp_path)
    made.self_signed("root", "root", "basicConstraints=critical,CA:TRUE,pathlen:0")
    made.signed("intermediate", "intermediate", "root", requested="basicConstraints=critical,CA:TRUE")
    made.signed("leaf", "leaf", "intermediate")
    leaf, intermediate = made.certificate("leaf"), made.certificate("intermediate")
    # Trusted as the anchor, the intermediate issues the leaf; under the root, pathlen:0 forbids it.
    path = TrustAnchors([intermediate]).verify_client([leaf])
    assert path == [leaf, intermediate]
    with pytest.raises(ClientCertificateError) as raised:
        TrustAnchors([made.certificate("root")]).verify_client([leaf, intermediate])
    assert raised.value.alert == AlertDescription.bad_certificate
    assert "pathLenConstraint 0 of 'CN=root'" in raised.value.reason


def test_a_leaf_keyusage_must_allow_signing() -> None:
    ca = make_ca()
    leaf = issue(ca, "no-signing", server=False).certificate
    builder = (
        x509.CertificateBuilder()
        .subject_name(leaf.subject)
        .issuer_name(leaf.issuer)
        .public_key(leaf.public_key())
        .serial_number(leaf.serial_number)
        .not_valid_before(leaf.not_valid_before_utc)
        .not_valid_after(leaf.not_valid_after_utc)
        .add_extension(x509.KeyUsage(False, False, True, False, False, False, False, False, False), critical=True)
    )
    key_encipherment_only = builder.sign(ca.key, hashes.SHA256())
    with pytest.raises(ClientCertificateError) as raised:
        TrustAnchors([ca.certificate]).verify_client([key_encipherment_only])
    assert "does not allow digitalSignature" in raised.value.reason


# --- openssl s_client -enable_pha and ibepsk connect, against ibepsk serve --require-client-auth -------------


def serve(pki: OpenSslPki, anchors: str, *options: str) -> ServerProcess:
    """``ibepsk serve --www`` with a certificate for localhost, trusting ``anchors`` for client certificates."""
    return ServerProcess(
        "--cert", str(pki.path("server.crt")), "--key", str(pki.path("server.key")), "--www",
        "--ca", str(pki.path(f"{anchors}.pem")), *options,
    )  # fmt: skip


def s_client(pki: OpenSslPki, port: int, certificate: str | None, *options: str) -> subprocess.CompletedProcess[str]:
    command = [pki.binary, "s_client", "-connect", f"127.0.0.1:{port}", "-quiet", "-ign_eof", *options]
    if certificate is not None:
        command += ["-cert", str(pki.path(f"{certificate}.pem")), "-key", str(pki.path(f"{certificate}.key"))]
    return subprocess.run(command, input=REQUEST, capture_output=True, text=True, timeout=30)


def connect(pki: OpenSslPki, port: int, certificate: str) -> subprocess.CompletedProcess[str]:
    return ibepsk(
        "connect", f"127.0.0.1:{port}", "--ca", str(pki.path("server-ca.pem")), "--servername", "localhost",
        "--cert", str(pki.path(f"{certificate}.pem")), "--key", str(pki.path(f"{certificate}.key")),
        "--send", r"GET / HTTP/1.0\r\n\r\n", "--wait", "2",
    )  # fmt: skip


def assert_refused_in_log(log: str, case: Case) -> None:
    assert f"sent alert {case.alert}: " in log, log
    refusal = next(line for line in log.splitlines() if f"sent alert {case.alert}" in line)
    assert case.reason in refusal, refusal
    assert "Traceback" not in log


@pytest.mark.parametrize("case", CASES)
def test_s_client_post_handshake(pki: OpenSslPki, case: Case) -> None:
    server = serve(pki, case.anchors, "--require-client-auth")
    try:
        result = s_client(pki, server.port, case.certificate, "-tls1_3", "-enable_pha")
    finally:
        log = server.stop()
    if case.alert is None:
        assert f"client='CN={case.subject}' (post-handshake)" in result.stdout, (result.stdout, log)
        return
    assert f"alert {case.alert.replace('_', ' ')}" in result.stderr, result.stderr
    assert "200 OK" not in result.stdout
    assert_refused_in_log(log, case)


@pytest.mark.parametrize("case", CASES)
def test_ibepsk_connect_post_handshake(pki: OpenSslPki, case: Case) -> None:
    server = serve(pki, case.anchors, "--require-client-auth")
    try:
        result = connect(pki, server.port, case.certificate)
    finally:
        log = server.stop()
    if case.alert is None:
        assert result.returncode == 0, result.stderr
        assert f"client='CN={case.subject}' (post-handshake)" in result.stdout, (result.stdout, log)
        return
    assert "200 OK" not in result.stdout
    assert_refused_in_log(log, case)


def test_the_webpki_profile_still_refuses_a_leaf_without_san(pki: OpenSslPki) -> None:
    server = serve(pki, "ca", "--require-client-auth", "--client-cert-profile", "webpki")
    try:
        result = s_client(pki, server.port, "device", "-tls1_3", "-enable_pha")
    finally:
        log = server.stop()
    assert "alert bad certificate" in result.stderr, result.stderr
    assert "sent alert bad_certificate: client certificate does not validate under the webpki profile" in log, log


# --- serve --verify-client: the CertificateRequest in the handshake ------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_s_client_verify_client(pki: OpenSslPki, case: Case) -> None:
    server = serve(pki, case.anchors, "--verify-client")
    try:
        result = s_client(pki, server.port, case.certificate)
    finally:
        log = server.stop()
    if case.alert is None:
        assert f"client='CN={case.subject}' (handshake)" in result.stdout, (result.stdout, log)
        assert "handshake ok mode=certificate cipher=" in log and f"client='CN={case.subject}' (handshake)" in log
        return
    assert f"alert {case.alert.replace('_', ' ')}" in result.stderr, result.stderr
    assert "200 OK" not in result.stdout
    assert_refused_in_log(log, case)


@pytest.mark.parametrize("case", [CASES[0], CASES[4]])
def test_ibepsk_connect_verify_client(pki: OpenSslPki, case: Case) -> None:
    server = serve(pki, case.anchors, "--verify-client")
    try:
        result = connect(pki, server.port, case.certificate)
    finally:
        log = server.stop()
    if case.alert is None:
        assert result.returncode == 0, result.stderr
        assert f"client='CN={case.subject}' (handshake)" in result.stdout, (result.stdout, log)
        return
    assert result.returncode != 0 and "200 OK" not in result.stdout
    assert_refused_in_log(log, case)


def test_verify_client_requires_a_certificate(pki: OpenSslPki) -> None:
    server = serve(pki, "ca", "--verify-client")
    try:
        result = s_client(pki, server.port, None)
    finally:
        log = server.stop()
    assert "alert certificate required" in result.stderr, result.stderr
    assert "sent alert certificate_required: the client sent no certificate in the handshake" in log, log


def test_verify_client_with_a_post_handshake_request_asks_only_once(pki: OpenSslPki) -> None:
    server = serve(pki, "ca", "--verify-client", "--require-client-auth")
    try:
        result = s_client(pki, server.port, "device", "-enable_pha")
    finally:
        log = server.stop()
    assert "client='CN=device-1' (handshake)" in result.stdout, (result.stdout, log)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param(["--ibe-key", "{localhost_key}", "--ca", "{ca}"], "needs --cert/--key", id="no-certificate"),
        pytest.param(["--cert", "{cert}", "--key", "{key}"], "needs --ca", id="no-ca"),
        pytest.param(
            ["--cert", "{cert}", "--key", "{key}", "--ca", "{ca}", "--ibe-key", "{localhost_key}"],
            "add --require-client-auth",
            id="ibe-psk-clients-unasked",
        ),
    ],
)
def test_verify_client_refuses_what_it_cannot_do(
    pki: OpenSslPki, ta_key_file: Path, options: list[str], message: str
) -> None:
    paths = {
        "localhost_key": ta_key_file,
        "ca": pki.path("ca.pem"),
        "cert": pki.path("server.crt"),
        "key": pki.path("server.key"),
    }
    filled = [option.format(**paths) for option in options]
    assert_one_line_error(ibepsk("serve", "--accept", "127.0.0.1:0", "--verify-client", *filled), message)


@pytest.fixture(scope="module")
def ta_key_file(tmp_path_factory: pytest.TempPathFactory, ta: TAMasterKey) -> Path:
    path = tmp_path_factory.mktemp("ibe") / "localhost.key"
    keys.write_key_file(path, ta.extract("localhost"))
    return path

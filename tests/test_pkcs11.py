"""Pkcs11Signer against a real SoftHSM2 token: signatures made in the token, its errors, and PHA end to end."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from tlslite.constants import AlertDescription
from tlslite.errors import TLSLocalAlert, TLSRemoteAlert

from ibepsk import HandshakeMode, HandshakeSettings, IbeKeyring, TLSConnection
from ibepsk.client import ClientConfig, connect
from ibepsk.keys import TAMasterKey
from ibepsk.tls.certs import TrustAnchors
from ibepsk.tls.pha import ClientAuthentication
from ibepsk.tls.pkcs11_signer import Pkcs11Signer, Pkcs11SignerError, generate_device_key, open_token_session
from ibepsk.tls.signer import SignatureScheme, SignerError

from pki import issue, make_ca
from softhsm_support import Device, softhsm_device
from tls_support import running_server, wait_for

P256 = SignatureScheme.ECDSA_SECP256R1_SHA256


@pytest.fixture(scope="session")
def device(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Device]:
    with softhsm_device(tmp_path_factory.mktemp("softhsm")) as device:
        yield device


def open_signer(device: Device, **changes: str) -> Pkcs11Signer:
    arguments = {"token_label": device.token_label, "pin": device.pin, "key_label": device.key_label} | changes
    return Pkcs11Signer(device.module_path, certificate_chain=[device.certificate, device.ca.certificate], **arguments)


def construction_error(device: Device, **changes: str) -> str:
    with pytest.raises(Pkcs11SignerError) as raised:
        open_signer(device, **changes)
    return str(raised.value)


# --- signatures -----------------------------------------------------------------------------------------


def test_token_signature_verifies_against_the_device_certificate(device: Device) -> None:
    message = b" " * 64 + b"TLS 1.3, client CertificateVerify\x00" + bytes(range(32))
    with open_signer(device) as signer:
        assert signer.signature_schemes == [P256]
        signature = signer.sign(P256, message)
    public_key = device.certificate.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    public_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):
        public_key.verify(signature, message + b"!", ec.ECDSA(hashes.SHA256()))


def test_private_key_stays_in_the_token(device: Device) -> None:
    import pkcs11
    from pkcs11 import Attribute

    with open_token_session(device.module_path, device.token_label, device.pin) as session:
        key = session.get_key(pkcs11.ObjectClass.PRIVATE_KEY, pkcs11.KeyType.EC, label=device.key_label)
        flags = [Attribute.SENSITIVE, Attribute.ALWAYS_SENSITIVE, Attribute.EXTRACTABLE, Attribute.NEVER_EXTRACTABLE]
        assert [key[flag] for flag in flags] == [True, True, False, True]
        with pytest.raises(pkcs11.AttributeSensitive):
            key[Attribute.VALUE]


def test_concurrent_signing_shares_one_session(device: Device) -> None:
    messages = [f"connection {i}".encode() for i in range(16)]
    signatures: dict[bytes, bytes] = {}
    with open_signer(device) as signer:
        threads = [
            threading.Thread(target=lambda m=m: signatures.setdefault(m, signer.sign(P256, m))) for m in messages
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    public_key = device.certificate.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    assert sorted(signatures) == sorted(messages)
    for message, signature in signatures.items():
        public_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))


def test_unsupported_scheme_is_refused(device: Device) -> None:
    with open_signer(device) as signer, pytest.raises(SignerError, match="ED25519"):
        signer.sign(SignatureScheme.ED25519, b"message")


def test_closed_signer_refuses_to_sign(device: Device) -> None:
    signer = open_signer(device)
    signer.close()
    signer.close()  # idempotent
    with pytest.raises(Pkcs11SignerError, match="closed"):
        signer.sign(P256, b"message")


# --- one clear error each, never the PIN ---------------------------------------------------------------


def test_wrong_pin(device: Device) -> None:
    wrong = "999999"
    with pytest.raises(Pkcs11SignerError) as raised:
        open_signer(device, pin=wrong)
    assert "wrong PIN" in str(raised.value) and "CKR_PIN_INCORRECT" in str(raised.value)
    assert wrong not in str(raised.value) and wrong not in repr(raised.value)
    with open_signer(device) as signer:  # a failed login leaves the token usable
        assert signer.sign(P256, b"after a wrong PIN")


def test_missing_key_label(device: Device) -> None:
    message = construction_error(device, key_label="no-such-key")
    assert message == f"token {device.token_label!r} has no EC private key labelled 'no-such-key'"


def test_missing_token(device: Device) -> None:
    message = construction_error(device, token_label="no-such-token")
    assert message.startswith("no token labelled 'no-such-token'")


def test_missing_module(device: Device, tmp_path: Path) -> None:
    absent = tmp_path / "libabsent.so"
    with pytest.raises(Pkcs11SignerError, match="cannot load the PKCS#11 module") as raised:
        Pkcs11Signer(absent, device.token_label, device.pin, device.key_label, [device.certificate])
    assert str(absent) in str(raised.value)


def test_without_python_pkcs11(device: Device, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pkcs11", None)  # what `import pkcs11` meets when it is not installed
    assert "pip install 'ibepsk[pkcs11]'" in construction_error(device)


def test_certificate_for_another_key(device: Device) -> None:
    other = issue(device.ca, "impostor", server=False)
    with pytest.raises(Pkcs11SignerError, match="does not match the certificate's public key"):
        Pkcs11Signer(device.module_path, device.token_label, device.pin, device.key_label, [other.certificate])
    with open_signer(device) as signer:  # the failed construction logged out again
        assert signer.sign(P256, b"still usable")


def test_certificate_without_an_ec_key(device: Device) -> None:
    rsa_cert = issue(make_ca(), "rsa device", server=False, kind="rsa2048").certificate
    with pytest.raises(Pkcs11SignerError, match="needs an ECDSA certificate"):
        Pkcs11Signer(device.module_path, device.token_label, device.pin, device.key_label, [rsa_cert])


def test_second_signer_on_a_logged_in_token(device: Device) -> None:
    with open_signer(device):
        assert "share one Pkcs11Signer per token" in construction_error(device)


def test_key_generation_refuses_a_label_in_use(device: Device) -> None:
    with pytest.raises(Pkcs11SignerError, match="already holds an object labelled"):
        generate_device_key(device.module_path, device.token_label, device.pin, device.key_label)


def test_no_pin_in_the_signer(device: Device) -> None:
    with open_signer(device) as signer:
        assert repr(signer) == (
            f"Pkcs11Signer(token={device.token_label!r}, key={device.key_label!r}, "
            f"subject={device.certificate.subject.rfc4514_string()!r})"
        )
        assert device.pin not in repr(vars(signer))


# --- post-handshake client authentication over an IBE-PSK handshake ------------------------------------


def pha_server_settings(ta: TAMasterKey, device: Device) -> HandshakeSettings:
    settings = HandshakeSettings()
    settings.ibe_keyring = IbeKeyring([ta.extract("localhost")])
    settings.client_auth_anchors = TrustAnchors([device.ca.certificate])
    return settings


def pha_client(ta: TAMasterKey, signer: Pkcs11Signer) -> ClientConfig:
    settings = HandshakeSettings()
    settings.ibe_public_params = ta.public
    settings.client_auth_signer = signer
    return ClientConfig(settings, server_name="localhost")


def test_pha_with_the_token_key(ta: TAMasterKey, device: Device) -> None:
    answers: list[ClientAuthentication | None] = []

    def authenticate_then_greet(conn: TLSConnection) -> None:
        conn.request_client_auth()
        answers.append(conn.wait_for_client_auth())
        conn.write(f"hello {conn.client_auth.subject}".encode())

    with (
        open_signer(device) as signer,
        running_server(pha_server_settings(ta, device), authenticate_then_greet) as (server, _),
    ):
        conn = connect(*server.address, pha_client(ta, signer))
        try:
            assert conn.handshake_mode == HandshakeMode.IBE_PSK
            assert conn.read() == f"hello {device.certificate.subject.rfc4514_string()}".encode()
            assert conn.certificate_requests_answered == 1
        finally:
            conn.close()
    [answer] = answers
    assert answer is not None and answer.certificate == device.certificate
    assert answer.chain == (device.certificate, device.ca.certificate)


def test_pha_with_a_signer_whose_token_went_away(ta: TAMasterKey, device: Device) -> None:
    outcomes: list[str] = []

    def authenticate(conn: TLSConnection) -> None:
        conn.request_client_auth()
        try:
            conn.wait_for_client_auth()
        except TLSRemoteAlert as alert:
            outcomes.append(AlertDescription.toRepr(alert.description))

    with running_server(pha_server_settings(ta, device), authenticate) as (server, _):
        signer = open_signer(device)
        conn = connect(*server.address, pha_client(ta, signer))
        signer.close()  # the session is gone, as when a token is pulled out
        with pytest.raises(TLSLocalAlert, match="is closed") as raised:
            conn.read()
        wait_for(lambda: bool(outcomes))
    assert raised.value.description == AlertDescription.internal_error
    assert outcomes == ["internal_error"]

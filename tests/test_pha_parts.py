"""The pieces of post-handshake authentication on their own: signers, client chain validation, settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from tlslite.constants import AlertDescription

from ibepsk import HandshakeSettings, KeySigner, TrustAnchors
from ibepsk.tls import ClientCertificateError, SignatureScheme, Signer
from ibepsk.tls.signer import SignerError, TlsliteKeySigner, pss_padding, schemes_for_certificate

from pki import Issued, issue, make_ca
from tls_support import tlslite_chain, tlslite_key


@pytest.fixture(scope="module")
def clients(ca: Issued) -> dict[str, Issued]:
    return {kind: issue(ca, f"client-{kind}", kind=kind, server=False) for kind in ("p256", "rsa2048", "ed25519")}


# --- signature schemes and signers ------------------------------------------------------------------


def test_wire_values_round_trip_through_tlslite() -> None:
    for scheme in SignatureScheme:
        assert SignatureScheme.from_tlslite(scheme.tlslite) is scheme
    assert SignatureScheme.from_tlslite((2, 3)) is None, "ecdsa_sha1 is no TLS 1.3 scheme"
    assert SignatureScheme.from_tlslite((4, 1)) is None, "neither is rsa_pkcs1_sha256"


def test_schemes_follow_the_certified_key(clients: dict[str, Issued]) -> None:
    assert schemes_for_certificate(clients["p256"].certificate) == [SignatureScheme.ECDSA_SECP256R1_SHA256]
    assert schemes_for_certificate(clients["ed25519"].certificate) == [SignatureScheme.ED25519]
    assert schemes_for_certificate(clients["rsa2048"].certificate) == [
        SignatureScheme.RSA_PSS_RSAE_SHA512,
        SignatureScheme.RSA_PSS_RSAE_SHA384,
        SignatureScheme.RSA_PSS_RSAE_SHA256,
    ]


def verify(issued: Issued, scheme: SignatureScheme, message: bytes, signature: bytes) -> None:
    key = issued.certificate.public_key()
    if isinstance(key, ed25519.Ed25519PublicKey):
        key.verify(signature, message)
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    else:
        assert isinstance(key, rsa.RSAPublicKey) and scheme.hash_algorithm is not None
        key.verify(signature, message, pss_padding(scheme.hash_algorithm), scheme.hash_algorithm)


@pytest.mark.parametrize("kind", ["p256", "rsa2048", "ed25519"])
@pytest.mark.parametrize("flavour", ["cryptography", "tlslite"])
def test_signers_make_signatures_the_certificate_verifies(clients: dict[str, Issued], kind: str, flavour: str) -> None:
    client = clients[kind]
    signer: Signer = (
        KeySigner([client.certificate], client.key)
        if flavour == "cryptography"
        else TlsliteKeySigner(tlslite_chain(client), tlslite_key(client))
    )
    assert isinstance(signer, Signer)
    assert list(signer.certificate_chain) == [client.certificate]
    message = b" " * 64 + b"TLS 1.3, client CertificateVerify\x00" + bytes(32)
    for scheme in signer.signature_schemes:
        signature = signer.sign(scheme, message)
        verify(client, scheme, message, signature)
        with pytest.raises(InvalidSignature):
            verify(client, scheme, message + b"!", signature)


def test_a_signer_refuses_schemes_its_key_cannot_make(clients: dict[str, Issued]) -> None:
    signer = KeySigner([clients["p256"].certificate], clients["p256"].key)
    with pytest.raises(SignerError, match="cannot sign with ED25519"):
        signer.sign(SignatureScheme.ED25519, b"message")


def test_key_signer_checks_key_and_certificate_belong_together(clients: dict[str, Issued]) -> None:
    with pytest.raises(SignerError, match="does not belong"):
        KeySigner([clients["p256"].certificate], clients["rsa2048"].key)
    with pytest.raises(SignerError, match="at least"):
        KeySigner([], clients["p256"].key)


def test_key_signer_from_pem_files(ca: Issued, clients: dict[str, Issued], tmp_path: Path) -> None:
    cert, key = clients["rsa2048"].write(tmp_path, "client", chain=(ca,))
    signer = KeySigner.from_pem_files(cert, key)
    assert signer.certificate_chain == [clients["rsa2048"].certificate, ca.certificate]
    assert SignatureScheme.RSA_PSS_RSAE_SHA256 in signer.signature_schemes


# --- TrustAnchors.verify_client -------------------------------------------------------------------


def test_verify_client_returns_the_path_to_the_anchor(ca: Issued) -> None:
    intermediate = make_ca("intermediate", issuer=ca)
    leaf = issue(intermediate, "client", server=False)
    path = TrustAnchors([ca.certificate]).verify_client([leaf.certificate, intermediate.certificate])
    assert path == [leaf.certificate, intermediate.certificate, ca.certificate]


def same_name_other_key(ca: Issued) -> list[object]:
    impostor = make_ca(ca.certificate.subject.rfc4514_string().removeprefix("CN="))
    return [issue(impostor, "client", server=False).certificate]


@pytest.mark.parametrize(
    ("chain", "alert"),
    [
        pytest.param(lambda ca: [], "bad_certificate", id="empty"),
        pytest.param(lambda ca: [issue(make_ca("x"), "c", server=False).certificate], "unknown_ca", id="other-ca"),
        pytest.param(same_name_other_key, "unknown_ca", id="ca-name-without-its-key"),
        pytest.param(
            lambda ca: [issue(make_ca("i", issuer=ca), "c", server=False).certificate], "unknown_ca", id="no-path"
        ),
        pytest.param(
            lambda ca: [issue(ca, "c", server=False, not_before_days=-3, valid_days=-1).certificate],
            "certificate_expired",
            id="expired",
        ),
        pytest.param(lambda ca: [issue(ca, "c", server=True).certificate], "bad_certificate", id="server-eku"),
        pytest.param(
            lambda ca: [issue(make_ca("ed", kind="ed25519"), "c", server=False).certificate],
            "unknown_ca",
            id="unknown-ed25519-ca",
        ),
    ],
)
def test_verify_client_says_which_alert(ca: Issued, chain: object, alert: str) -> None:
    with pytest.raises(ClientCertificateError) as raised:
        TrustAnchors([ca.certificate]).verify_client(chain(ca))  # type: ignore[operator]
    assert AlertDescription.toRepr(raised.value.alert) == alert
    assert str(raised.value).startswith(alert + ": ")


def test_an_anchor_signing_with_ed25519_is_refused_as_bad_certificate() -> None:
    # cryptography's client policy (the CA/Browser Forum profile) does not allow Ed25519 signatures on certificates.
    ed_ca = make_ca("ed25519 CA", kind="ed25519")
    with pytest.raises(ClientCertificateError) as raised:
        TrustAnchors([ed_ca.certificate]).verify_client([issue(ed_ca, "c", server=False).certificate])
    assert raised.value.alert == AlertDescription.bad_certificate


# --- settings ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("client_auth_signer", "client.pem", "must implement"),
        ("client_auth_answer_limit", -1, "non-negative"),
        ("client_auth_anchors", ["ca.pem"], "TrustAnchors"),
    ],
)
def test_settings_refuse_wrong_client_auth_fields(field: str, value: object, message: str) -> None:
    settings = HandshakeSettings()
    setattr(settings, field, value)
    with pytest.raises(ValueError, match=message):
        settings.validate()


def test_settings_carry_client_auth_fields(ca: Issued, clients: dict[str, Issued]) -> None:
    settings = HandshakeSettings()
    settings.client_auth_signer = KeySigner([clients["p256"].certificate], clients["p256"].key)
    settings.client_auth_answer_limit = None
    settings.client_auth_anchors = TrustAnchors([ca.certificate])
    checked = settings.validate()
    assert checked.client_auth_signer is settings.client_auth_signer
    assert checked.client_auth_answer_limit is None
    assert checked.client_auth_anchors is settings.client_auth_anchors

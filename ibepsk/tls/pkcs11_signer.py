"""A :class:`~ibepsk.tls.signer.Signer` whose EC private key stays inside a PKCS#11 token.

The token (an HSM, a smart card, a TPM's PKCS#11 front end, SoftHSM2) makes
every ECDSA signature; the key is generated there and never leaves it. The
digest is computed here and signed with CKM_ECDSA, because many tokens
(SoftHSM2 2.6 among them) lack the combined CKM_ECDSA_SHA256 mechanisms.

``python-pkcs11`` is optional (``pip install 'ibepsk[pkcs11]'``) and imported
only when a token is opened. Every failure is one :class:`Pkcs11SignerError`
naming what to fix; the PIN is never kept, shown or logged.
"""

from __future__ import annotations

import contextlib
import importlib
import secrets
import threading
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, cast

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from .signer import _HASHES, SignatureScheme, SignerError, _ChainSigner

if TYPE_CHECKING:
    import pkcs11

#: Why a login failed, by python-pkcs11 exception name (the CKR_* codes of PKCS#11 §5.1).
_LOGIN_FAILURES = {
    "PinIncorrect": "rejected the user PIN: wrong PIN (CKR_PIN_INCORRECT)",
    "PinLenRange": "rejected the user PIN: wrong length (CKR_PIN_LEN_RANGE)",
    "PinInvalid": "rejected the user PIN: invalid characters (CKR_PIN_INVALID)",
    "PinExpired": "rejected the user PIN: it has expired (CKR_PIN_EXPIRED)",
    "PinLocked": "has locked its user PIN after too many wrong ones (CKR_PIN_LOCKED)",
    "UserPinNotInitialized": "has no user PIN yet (CKR_USER_PIN_NOT_INITIALIZED)",
    "UserAlreadyLoggedIn": (
        "is already logged in from this process (CKR_USER_ALREADY_LOGGED_IN): share one Pkcs11Signer per token"
    ),
}


class Pkcs11SignerError(SignerError):
    """A PKCS#11 key cannot be used: module, token, PIN, key or certificate; the message says which."""


def _pkcs11() -> ModuleType:
    try:
        return importlib.import_module("pkcs11")
    except ImportError:
        raise Pkcs11SignerError("PKCS#11 keys need python-pkcs11: pip install 'ibepsk[pkcs11]'") from None


def open_token_session(module_path: str | Path, token_label: str, pin: str, *, rw: bool = False) -> pkcs11.Session:
    """A session on the token labelled ``token_label``, logged in as its user."""
    p11 = _pkcs11()
    try:
        library = p11.lib(str(module_path))
    except p11.PKCS11Error as exc:
        raise Pkcs11SignerError(f"cannot load the PKCS#11 module {module_path}: {exc}") from exc
    try:
        token = library.get_token(token_label=token_label)
    except p11.NoSuchToken as exc:
        raise Pkcs11SignerError(f"no token labelled {token_label!r} in the PKCS#11 module {module_path}") from exc
    except p11.PKCS11Error as exc:
        raise Pkcs11SignerError(f"cannot reach token {token_label!r}: {type(exc).__name__}") from exc
    try:
        return cast("pkcs11.Session", token.open(rw=rw, user_pin=pin))
    except p11.PKCS11Error as exc:  # never str(exc): only the failure's name, so no PIN can ever reach a message
        failure = _LOGIN_FAILURES.get(type(exc).__name__, f"refused the login ({type(exc).__name__})")
        raise Pkcs11SignerError(f"token {token_label!r} {failure}") from exc


class Pkcs11Signer(_ChainSigner):
    """A :class:`~ibepsk.tls.signer.Signer` over an EC private key in a PKCS#11 token.

    Keeps one logged-in session until :meth:`close` (or the end of a
    ``with`` block) and signs on it one request at a time, so one signer can
    serve every connection of a process. PKCS#11 logs in per process and
    token, so open one signer per token. Construction proves that the key
    belongs to the first certificate of the chain by signing a challenge.
    """

    def __init__(
        self,
        module_path: str | Path,
        token_label: str,
        pin: str,
        key_label: str,
        certificate_chain: Sequence[x509.Certificate],
    ) -> None:
        super().__init__(certificate_chain)
        public_key = self._chain[0].public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            raise Pkcs11SignerError("a PKCS#11 signer needs an ECDSA certificate (P-256, P-384 or P-521)")
        self._public_key = public_key
        self._token_label, self._key_label = token_label, key_label
        self._lock = threading.Lock()
        self._p11 = _pkcs11()
        self._session: pkcs11.Session | None = open_token_session(module_path, token_label, pin)
        try:
            self._key = self._find_private_key(self._session)
            self._prove_possession()
        except BaseException:
            self.close()
            raise

    def _find_private_key(self, session: pkcs11.Session) -> pkcs11.types.SignMixin:
        p11, where = self._p11, f"token {self._token_label!r}"
        try:
            key = session.get_key(p11.ObjectClass.PRIVATE_KEY, p11.KeyType.EC, label=self._key_label)
        except p11.NoSuchKey as exc:
            raise Pkcs11SignerError(f"{where} has no EC private key labelled {self._key_label!r}") from exc
        except p11.MultipleObjectsReturned as exc:
            raise Pkcs11SignerError(f"{where} has several EC private keys labelled {self._key_label!r}") from exc
        except p11.PKCS11Error as exc:
            raise Pkcs11SignerError(f"{where} could not be searched: {type(exc).__name__}") from exc
        return cast("pkcs11.types.SignMixin", key)

    def _prove_possession(self) -> None:
        challenge = secrets.token_bytes(32)
        scheme = self._schemes[0]
        try:
            self._public_key.verify(self.sign(scheme, challenge), challenge, ec.ECDSA(_HASHES[str(scheme.hash_name)]))
        except InvalidSignature:
            raise Pkcs11SignerError(
                f"key {self._key_label!r} on token {self._token_label!r} does not match the certificate's public key"
            ) from None

    def sign(self, scheme: SignatureScheme, message: bytes) -> bytes:
        self._check_scheme(scheme)
        digest = hashes.Hash(_HASHES[str(scheme.hash_name)])
        digest.update(message)
        with self._lock:  # so that close() waits for a signature in progress and never tears a session from under it
            if self._session is None:
                raise Pkcs11SignerError(f"the signer for token {self._token_label!r} is closed")
            try:
                raw = bytes(self._key.sign(digest.finalize(), mechanism=self._p11.Mechanism.ECDSA))
            except self._p11.PKCS11Error as exc:
                raise Pkcs11SignerError(f"token {self._token_label!r} could not sign: {type(exc).__name__}") from exc
        return _der_signature(raw)

    def close(self) -> None:
        """Log out and close the session; later :meth:`sign` calls fail."""
        with self._lock:
            session, self._session = self._session, None
            if session is None:
                return
            # a failure means the token is gone (removed, module finalised): nothing is left to release
            with contextlib.suppress(self._p11.PKCS11Error):
                session.close()

    def __enter__(self) -> Pkcs11Signer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        subject = self._chain[0].subject.rfc4514_string()
        return f"Pkcs11Signer(token={self._token_label!r}, key={self._key_label!r}, subject={subject!r})"


def _der_signature(raw: bytes) -> bytes:
    """PKCS#11 returns ECDSA signatures as r || s of equal length; TLS wants the DER ECDSA-Sig-Value."""
    half = len(raw) // 2
    if not raw or len(raw) != 2 * half:
        raise Pkcs11SignerError(f"the token returned a malformed {len(raw)}-byte ECDSA signature")
    return encode_dss_signature(int.from_bytes(raw[:half]), int.from_bytes(raw[half:]))


def generate_device_key(
    module_path: str | Path,
    token_label: str,
    pin: str,
    key_label: str,
    curve: ec.EllipticCurve | None = None,
) -> ec.EllipticCurvePublicKey:
    """Generate an EC key pair on the token (default P-256) and return its public key, for the device certificate.

    The private key is created sensitive and never extractable; both halves
    are stored under ``key_label``, which must not be in use yet.
    """
    p11, curve_name = _pkcs11(), (curve or ec.SECP256R1()).name
    with open_token_session(module_path, token_label, pin, rw=True) as session:
        if list(session.get_objects({p11.Attribute.LABEL: key_label})):
            raise Pkcs11SignerError(f"token {token_label!r} already holds an object labelled {key_label!r}")
        try:
            parameters = session.create_domain_parameters(
                p11.KeyType.EC,
                {p11.Attribute.EC_PARAMS: p11.util.ec.encode_named_curve_parameters(curve_name)},
                local=True,
            )
            public, _ = parameters.generate_keypair(
                store=True,
                label=key_label,
                id=key_label.encode(),
                capabilities=p11.MechanismFlag.SIGN | p11.MechanismFlag.VERIFY,
                private_template={p11.Attribute.SENSITIVE: True, p11.Attribute.EXTRACTABLE: False},
            )
            subject_public_key_info = bytes(p11.util.ec.encode_ec_public_key(public))
        except p11.PKCS11Error as exc:
            raise Pkcs11SignerError(
                f"token {token_label!r} could not generate a {curve_name} key: {type(exc).__name__}"
            ) from exc
    public_key = serialization.load_der_public_key(subject_public_key_info)
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise Pkcs11SignerError(f"token {token_label!r} returned a {type(public_key).__name__}, not an EC key")
    return public_key

"""Record protection, key exchange and signatures on ``cryptography`` for tlslite-ng connections.

Without M2Crypto or pycryptodome, tlslite-ng seals records, runs (EC)DH and
signs in pure Python. ibepsk connections (through :mod:`ibepsk.tls.seam`) use
``cryptography`` instead, with the same bytes on the wire:

- AES-GCM, AES-CCM(_8) and ChaCha20-Poly1305 records (``getCipherImplementation()``
  reports ``"cryptography"``),
- X25519, X448, secp256r1, secp384r1 and secp521r1 key exchange, and the hybrid
  X25519MLKEM768 and SecP256r1MLKEM768 (which tlslite-ng runs on the optional pure-Python kyber-py),
- RSA (PKCS#1 v1.5, RSASSA-PSS), ECDSA (P-256/384/521) and Ed25519/Ed448
  signatures with the local key and verification with the peer's certificate key,
- session tickets, sealed and opened with the same AEADs, and the TLS 1.3 key schedule on one-shot
  HMACs (:func:`on_cryptography`).

Plain ``tlslite.TLSConnection`` objects are left alone unless the process
opts in with :func:`accelerate_tlslite` (undone by :func:`restore_tlslite`).
One change reaches them anyway, since TLS extension objects come from
tlslite-ng's own classes: once an ibepsk connection exists, extension fields are
set without tlslite-ng's failing ``hasattr`` (:func:`set_extension_fields_fast`,
patches/0018; same objects, same bytes). :func:`tlslite_as_shipped` undoes both
for as long as a baseline needs stock tlslite-ng.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FunctionType, ModuleType
from typing import Any, TypeVar

import tlslite.utils.keyfactory
import tlslite.x509
from tlslite import TLSConnection as _TlsliteConnection  # only for the process-wide opt-in below
from tlslite.errors import TLSUnexpectedMessage
from tlslite.extensions import CustomNameExtension
from tlslite.handshakehelpers import HandshakeHelpers
from tlslite.messages import Certificate
from tlslite.recordlayer import RecordLayer
from tlslite.utils import cipherfactory, cryptomath

from ._crypto import ecdh, mlkem
from ._crypto.aead import (
    CryptographyAead,
    create_aes_ccm,
    create_aes_ccm_8,
    create_aes_gcm,
    create_chacha20_poly1305,
)
from ._crypto.kdf import TLSLITE_KEY_SCHEDULE
from ._crypto.keys import accelerate_key

__all__ = [
    "AcceleratedRecordLayer",
    "accelerate_cert_params",
    "accelerate_key",
    "accelerate_peer_certificate",
    "accelerate_tlslite",
    "accelerated_cipher_settings",
    "accelerated_key_exchange",
    "cryptography_key_exchange",
    "on_cryptography",
    "restore_tlslite",
    "set_extension_fields_fast",
    "tlslite_accelerated",
    "tlslite_as_shipped",
]

F = TypeVar("F", bound=Callable[..., Any])

#: tlslite-ng's own choices, captured before any opt-in patch replaces them.
_stock_cipher_settings: Callable[[int], tuple[int, int, Any]] = RecordLayer._getCipherSettings
_stock_key_exchange: Callable[[int, tuple[int, int]], Any] = _TlsliteConnection._getKEX

#: tlslite-ng's AEAD factories and the cryptography-backed ones that replace them.
_AEAD_FACTORIES: dict[Any, Callable[..., Any]] = {
    cipherfactory.createAESGCM: create_aes_gcm,
    cipherfactory.createAESCCM: create_aes_ccm,
    cipherfactory.createAESCCM_8: create_aes_ccm_8,
    cipherfactory.createCHACHA20: create_chacha20_poly1305,
}


def accelerated_cipher_settings(cipher_suite: int) -> tuple[int, int, Any]:
    """tlslite-ng's (key length, IV length, cipher factory) for a suite, with AEAD factories on cryptography."""
    key_length, iv_length, factory = _stock_cipher_settings(cipher_suite)
    return key_length, iv_length, _AEAD_FACTORIES.get(factory, factory)


def cryptography_key_exchange(group: int, version: tuple[int, int]) -> Any:
    """A cryptography-backed key exchange object for ``group``, or None for groups left to tlslite-ng."""
    return ecdh.key_exchange_for(group, version) or mlkem.key_exchange_for(group, version)


def accelerated_key_exchange(group: int, version: tuple[int, int]) -> Any:
    """tlslite-ng's key exchange object for a group, on cryptography for the groups it implements."""
    return cryptography_key_exchange(group, version) or _stock_key_exchange(group, version)


def _with_globals(function: F, replacements: dict[str, Any]) -> F:
    """``function``'s code run against a copy of its module's globals in which each name of ``replacements``
    that the module binds to the stock object (the dict's value's ``[0]``) is bound to the replacement (``[1]``)."""
    namespace = dict(function.__globals__)
    for name, (stock, replacement) in replacements.items():
        if namespace.get(name) is stock:
            namespace[name] = replacement
    clone = FunctionType(function.__code__, namespace, function.__name__, function.__defaults__, function.__closure__)
    clone.__kwdefaults__ = function.__kwdefaults__
    clone.__qualname__ = function.__qualname__
    return clone  # type: ignore[return-value]


class KeyScheduleHandshakeHelpers(HandshakeHelpers):  # type: ignore[misc]
    """tlslite-ng's HandshakeHelpers (binders, resumption PSKs) with their key schedule on one-shot HMACs."""


def _replacements() -> dict[str, tuple[Any, Any]]:
    """tlslite-ng's global name, its stock object and ours: AEAD factories, key schedule, HandshakeHelpers."""
    replacements = {stock.__name__: (stock, ours) for stock, ours in _AEAD_FACTORIES.items()}
    replacements |= {name: (getattr(cryptomath, name), ours) for name, ours in TLSLITE_KEY_SCHEDULE.items()}
    replacements["HandshakeHelpers"] = (HandshakeHelpers, KeyScheduleHandshakeHelpers)
    return replacements


def _fill_key_schedule_helpers(replacements: dict[str, tuple[Any, Any]]) -> None:
    for name, member in vars(HandshakeHelpers).items():
        if isinstance(member, staticmethod):
            clone = _with_globals(member.__func__, replacements)
            setattr(KeyScheduleHandshakeHelpers, name, staticmethod(clone))


_REPLACEMENTS = _replacements()
_fill_key_schedule_helpers(_REPLACEMENTS)


def on_cryptography(function: F) -> F:
    """tlslite-ng's own ``function``, unchanged, except that the AEAD factories and key schedule functions it
    calls by name are ours.

    tlslite-ng seals and opens session tickets (``_serverSendTickets``, ``_tryDecrypt``) with AEADs it
    builds by calling ``createAESGCM`` and its siblings from the module's globals, and runs the TLS 1.3 key
    schedule (``_serverTLS13Handshake``, ``_clientTLS13Handshake``, ``RecordLayer.calcTLS1_3PendingState``,
    the binders in ``HandshakeHelpers``) with ``secureHMAC``, ``HKDF_expand_label`` and ``derive_secret``
    imported by name into each module, with no per-connection factory to hook. Running the same code object
    against a copy of those globals in which the names point at the cryptography-backed factories and the
    one-shot-HMAC key schedule (``_crypto/kdf.py``) changes only the implementation, not a byte on the wire,
    and leaves every other connection (and tlslite-ng's modules) alone.
    """
    return _with_globals(function, _REPLACEMENTS)


class AcceleratedRecordLayer(RecordLayer):  # type: ignore[misc]
    """tlslite-ng's record layer, building its AEAD ciphers on cryptography."""

    # Hooks RecordLayer._getCipherSettings, where every pending and key-update state gets its cipher factory.
    _getCipherSettings = staticmethod(accelerated_cipher_settings)
    # tlslite-ng's traffic key and IV derivations, their HKDF-Expand-Label on one-shot HMACs.
    calcTLS1_3PendingState = on_cryptography(RecordLayer.calcTLS1_3PendingState)
    _calcTLS1_3KeyUpdate = on_cryptography(RecordLayer._calcTLS1_3KeyUpdate)

    def _decryptSSL2(self, data: bytearray, padding: int) -> Any:
        """Hooks RecordLayer._decryptSSL2, which calls decrypt() on whatever cipher reads: an SSLv2-framed record
        under AEAD keys (no SSLv2 cipher is one) killed the connection with AttributeError (patches/0016)."""
        if self._readState.encContext is not None and self._readState.encContext.isAEAD:
            raise TLSUnexpectedMessage("SSLv2 record under AEAD keys")  # tlslite sends unexpected_message
        return super()._decryptSSL2(data, padding)

    def release_ciphers(self) -> None:
        """Free the current read and write ciphers' OpenSSL state while the connection waits (see
        :meth:`CryptographyAead.release`); the next record keys them again."""
        for state in (self._readState, self._writeState):
            if isinstance(state.encContext, CryptographyAead):
                state.encContext.release()


def accelerate_peer_certificate(message: Any) -> None:
    """A received Certificate's end-entity key verifies with cryptography (keys it does not cover stay)."""
    if not isinstance(message, Certificate):
        return
    chain = message.cert_chain
    if chain and chain.x509List:
        end_entity = chain.x509List[0]
        end_entity.publicKey = accelerate_key(end_entity.publicKey)


def accelerate_cert_params(cert_params: Any) -> Any:
    """A client's (certChain, privateKey): the key signs with cryptography."""
    if not cert_params:
        return cert_params
    chain, private_key = cert_params
    return chain, accelerate_key(private_key)


# --- process-wide opt-in -------------------------------------------------------------------


@dataclass(frozen=True)
class _Patch:
    owner: type | ModuleType
    name: str
    replacement: Any
    original: Any


def _returning_accelerated_keys(factory: Callable[..., Any]) -> Callable[..., Any]:
    def accelerated_factory(*args: Any, **kwargs: Any) -> Any:
        return accelerate_key(factory(*args, **kwargs))

    return accelerated_factory


def _set_extension_attribute(extension: Any, name: str, value: Any) -> None:
    """tlslite-ng's CustomNameExtension.__setattr__ (patches/0018), the same effect without its ``hasattr``.

    tlslite-ng's goes through ``__getattr__`` for every attribute set before ``_field_name`` exists (all
    of TLSExtension.__init__'s), which formats and raises an AttributeError each time: half the CPU of
    parsing a ClientHello. The instance dict answers the same question directly.
    """
    if name == extension.__dict__.get("_field_name"):
        extension._internal_value = value
        return
    super(CustomNameExtension, extension).__setattr__(name, value)


_STOCK_EXTENSION_SETATTR = CustomNameExtension.__dict__["__setattr__"]
_ibepsk_connections: list[None] = []  # an entry once this process has made an ibepsk connection
_as_shipped: list[None] = []  # one entry per tlslite_as_shipped() in effect


def _settle_extension_fields() -> None:
    """Extension fields are set fast once an ibepsk connection exists or the process opted in, except while a
    baseline holds tlslite-ng as shipped."""
    fast = bool(_ibepsk_connections or _applied) and not _as_shipped
    CustomNameExtension.__setattr__ = _set_extension_attribute if fast else _STOCK_EXTENSION_SETATTR


def set_extension_fields_fast() -> None:
    """Every accelerated ibepsk connection calls this: TLS extension fields set without a failing ``hasattr``.

    Extension objects are built by tlslite-ng's message parsers from class registries, with no
    per-connection seam: only the class itself can be changed, so the change is process-wide, and stays
    (:func:`restore_tlslite` keeps it). It is behaviour-preserving (patches/0018 is the same change for
    tlslite-ng itself).
    """
    if not _ibepsk_connections:
        _ibepsk_connections.append(None)
        _settle_extension_fields()


@contextmanager
def tlslite_as_shipped() -> Iterator[None]:
    """tlslite-ng exactly as shipped while inside (a benchmark's stock baseline): neither
    :func:`accelerate_tlslite` nor the extension-field change; both as they were afterwards.

    Process-wide, like what it undoes: meant for one thread measuring a baseline, not for use while other
    threads run connections.
    """
    opted_in = tlslite_accelerated()
    restore_tlslite()
    _as_shipped.append(None)
    _settle_extension_fields()
    try:
        yield
    finally:
        _as_shipped.pop()
        if opted_in:
            accelerate_tlslite()
        _settle_extension_fields()


def _process_patches() -> list[_Patch]:
    """Where tlslite-ng builds ciphers, key exchanges and keys for every connection."""
    patches = [
        (RecordLayer, "_getCipherSettings", staticmethod(accelerated_cipher_settings)),
        (_TlsliteConnection, "_getKEX", staticmethod(accelerated_key_exchange)),
    ]
    # Keys parsed from PEM (private keys) and from certificates (peers' public keys).
    key_factories = [
        (tlslite.utils.keyfactory, "_parseKeyHelper"),
        (tlslite.x509, "_createPublicRSAKey"),
        (tlslite.x509, "_create_public_ecdsa_key"),
        (tlslite.x509, "_create_public_eddsa_key"),
    ]
    patches += [(module, name, _returning_accelerated_keys(getattr(module, name))) for module, name in key_factories]
    return [_Patch(owner, name, replacement, owner.__dict__[name]) for owner, name, replacement in patches]


_applied: list[_Patch] = []


def accelerate_tlslite() -> None:
    """Make every tlslite-ng connection in this process use cryptography, from now on.

    Explicit and process-wide: plain ``tlslite.TLSConnection`` objects,
    keys parsed with ``tlslite.utils.keyfactory`` and certificates parsed
    afterwards, and TLS extension fields (:func:`set_extension_fields_fast`, which
    the first ibepsk connection applies anyway). ibepsk connections are
    accelerated without this call.
    """
    if not _applied:
        _applied.extend(_process_patches())
        for patch in _applied:
            setattr(patch.owner, patch.name, patch.replacement)
    _settle_extension_fields()


def restore_tlslite() -> None:
    """Undo :func:`accelerate_tlslite` (keys already parsed stay accelerated; extension fields stay fast once
    the process has an ibepsk connection)."""
    while _applied:
        patch = _applied.pop()
        setattr(patch.owner, patch.name, patch.original)
    _settle_extension_fields()


def tlslite_accelerated() -> bool:
    """Whether :func:`accelerate_tlslite` is in effect."""
    return bool(_applied)

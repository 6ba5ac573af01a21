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
- session tickets, sealed and opened with the same AEADs (:func:`with_cryptography_aeads`).

Plain ``tlslite.TLSConnection`` objects are left alone unless the process
opts in with :func:`accelerate_tlslite` (undone by :func:`restore_tlslite`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import FunctionType, ModuleType
from typing import Any, TypeVar

import tlslite.utils.keyfactory
import tlslite.x509
from tlslite import TLSConnection as _TlsliteConnection  # only for the process-wide opt-in below
from tlslite.messages import Certificate
from tlslite.recordlayer import RecordLayer
from tlslite.utils import cipherfactory

from ._crypto import ecdh, mlkem
from ._crypto.aead import CryptographyAead, create_aes_ccm, create_aes_ccm_8, create_aes_gcm, create_chacha20_poly1305
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
    "restore_tlslite",
    "tlslite_accelerated",
    "with_cryptography_aeads",
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


def with_cryptography_aeads(function: F) -> F:
    """tlslite-ng's own ``function``, unchanged, except that the AEAD factories it calls by name are ours.

    tlslite-ng seals and opens session tickets (``_serverSendTickets``, ``_tryDecrypt``) with AEADs it
    builds by calling ``createAESGCM`` and its siblings from the module's globals, with no per-connection
    factory to hook. Running the same code object against a copy of those globals in which the names
    point at the cryptography-backed factories changes only the implementation, not a byte of the
    ticket, and leaves every other connection (and tlslite-ng's module) alone.
    """
    namespace = dict(function.__globals__)
    for stock, replacement in _AEAD_FACTORIES.items():
        name = stock.__name__
        if namespace.get(name) is stock:
            namespace[name] = replacement
    clone = FunctionType(function.__code__, namespace, function.__name__, function.__defaults__, function.__closure__)
    clone.__kwdefaults__ = function.__kwdefaults__
    clone.__qualname__ = function.__qualname__
    return clone  # type: ignore[return-value]


class AcceleratedRecordLayer(RecordLayer):  # type: ignore[misc]
    """tlslite-ng's record layer, building its AEAD ciphers on cryptography."""

    # Hooks RecordLayer._getCipherSettings, where every pending and key-update state gets its cipher factory.
    _getCipherSettings = staticmethod(accelerated_cipher_settings)

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
    afterwards. ibepsk connections are accelerated without this call.
    """
    if not _applied:
        _applied.extend(_process_patches())
        for patch in _applied:
            setattr(patch.owner, patch.name, patch.replacement)


def restore_tlslite() -> None:
    """Undo :func:`accelerate_tlslite` (keys already parsed stay accelerated)."""
    while _applied:
        patch = _applied.pop()
        setattr(patch.owner, patch.name, patch.original)


def tlslite_accelerated() -> bool:
    """Whether :func:`accelerate_tlslite` is in effect."""
    return bool(_applied)

"""IBE-PSK protocol logic, apart from tlslite-ng and sockets.

The client sends the 161-byte Boneh–Franklin ciphertext as a TLS 1.3 PSK
identity with ``obfuscated_ticket_age = 1`` (TiigerTLS's marker for this
scheme) and an external-PSK binder over the encapsulated 32-byte secret with
SHA-256. The server opens at most one such identity per ClientHello.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Protocol

from ..ibe import CIPHERTEXT_BYTES, Decapsulator, Encapsulator
from ..keys import IdentityKey, TAPublicParams

#: The PSK hash every IBE-PSK uses: its binder and the suite it allows.
IBE_PSK_HASH = "sha256"


class IbeScheme(IntEnum):
    """TiigerTLS's ``obfuscated_ticket_age`` markers for identity-based PSKs."""

    BONEH_FRANKLIN = 1
    LATTICE = 2
    HYBRID = 3


class PskIdentityLike(Protocol):
    identity: bytearray
    obfuscated_ticket_age: int


def is_ibe_identity(identity: PskIdentityLike) -> bool:
    """True for an identity that claims to be a Boneh–Franklin IBE ciphertext."""
    return identity.obfuscated_ticket_age == IbeScheme.BONEH_FRANKLIN and len(identity.identity) == CIPHERTEXT_BYTES


def first_ibe_identity(identities: Sequence[PskIdentityLike]) -> int | None:
    """Index of the one identity a server will open: the first that carries the marker."""
    return next((index for index, ident in enumerate(identities) if is_ibe_identity(ident)), None)


@dataclass(frozen=True)
class IbePskOffer:
    """What a client puts into one ClientHello: the ciphertext and its secret."""

    identity: str
    ciphertext: bytearray
    psk: bytearray = field(repr=False)

    def psk_config(self) -> tuple[bytearray, bytearray, str]:
        """The entry tlslite-ng's ``pskConfigs`` expects."""
        return (self.ciphertext, self.psk, IBE_PSK_HASH)


@dataclass(frozen=True)
class OpenedIbePsk:
    """What a server learnt from the one IBE identity it opened in a ClientHello."""

    identity: str
    index: int
    ciphertext: bytes
    psk: bytearray = field(repr=False)


class _EncapsulatorCache:
    """Keeps one Encapsulator per (TA, server name): H1 and the pairing base are reused."""

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._items: OrderedDict[tuple[str, str], Encapsulator] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, public: TAPublicParams, identity: str) -> Encapsulator:
        key = (public.fingerprint, identity)
        with self._lock:
            encapsulator = self._items.get(key)
            if encapsulator is not None:
                self._items.move_to_end(key)
                return encapsulator
        encapsulator = Encapsulator(identity, public.public_key)
        with self._lock:
            self._items[key] = encapsulator
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return encapsulator


_encapsulators = _EncapsulatorCache()


def make_offer(public: TAPublicParams, identity: str) -> IbePskOffer:
    """A fresh encapsulation to ``identity``: never reuse one across connections."""
    encapsulation = _encapsulators.get(public, identity).encapsulate()
    return IbePskOffer(identity, bytearray(encapsulation.ciphertext), bytearray(encapsulation.psk))


class IbeKeyring:
    """A server's identity keys, chosen by SNI, with one default.

    ``decapsulations`` counts pairings spent, so an operator (and the tests)
    can see that a ClientHello never costs more than one.
    """

    def __init__(
        self,
        keys: Iterable[IdentityKey],
        default: str | None = None,
        public: TAPublicParams | None = None,
    ) -> None:
        self._keys: dict[str, Decapsulator] = {}
        for key in keys:
            if public is not None:
                key.verify(public)
            self._keys[key.identity] = Decapsulator(key.key)
        if not self._keys:
            raise ValueError("an IbeKeyring needs at least one identity key")
        self.default = default if default is not None else next(iter(self._keys))
        if self.default not in self._keys:
            raise ValueError(f"default identity {self.default!r} has no key in this keyring")
        self._count_lock = threading.Lock()
        self.decapsulations = 0

    @property
    def identities(self) -> list[str]:
        return list(self._keys)

    def identity_for(self, server_name: str | None) -> str:
        """The identity a client naming ``server_name`` in SNI encapsulated to (best guess)."""
        return server_name if server_name in self._keys else self.default

    def open(self, server_name: str | None, ciphertext: bytes) -> tuple[str, bytearray]:
        """Decapsulate under the key chosen by SNI; raises IbeDecapsulationError."""
        identity = self.identity_for(server_name)
        with self._count_lock:
            self.decapsulations += 1
        return identity, bytearray(self._keys[identity].decapsulate(bytes(ciphertext)))

"""IBE-PSK protocol logic, apart from tlslite-ng and sockets.

The client sends the 161-byte Boneh–Franklin ciphertext as a TLS 1.3 PSK
identity with ``obfuscated_ticket_age = 1`` (TiigerTLS's marker for this
scheme) and an external-PSK binder over the encapsulated 32-byte secret with
SHA-256. The server opens at most one such identity per ClientHello.

TiigerTLS's POST_QUANTUM client sends marker 3 instead: its lattice ciphertext
(4,000 bytes) and a BF ciphertext (161) as one identity, with a 64-byte PSK
(lattice key ‖ BF PSK). Its lattice half hides nothing (spec §8), so that PSK is
exactly as secret as the BF half: **classical**. Marker 2 (the lattice half
alone) hides nothing at all: a server opens it only when told it is insecure.

ibepsk's own schemes use markers from its private range: its sound lattice KEM
(3,968 bytes, 32-byte PSK) and its hybrid (sound lattice ‖ BF, 4,129 bytes, PSK
= HKDF over both keys), which stays secret while either half does: the
post-quantum modes (see docs/post-quantum.md).
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import Any, Protocol, TypeVar

from tlslite.constants import (
    TLS_1_3_FORBIDDEN_GROUPS,
    CipherSuite,
    ExtensionType,
    GroupName,
    PskKeyExchangeMode,
)
from tlslite.messages import ClientHello
from tlslite.utils.dns_utils import is_valid_hostname

from ..epochs import EpochError, EpochPeriod, current_identity, epoch_identity, parse_identity
from ..ibe import CIPHERTEXT_BYTES, Decapsulator, Encapsulator, IbeDecapsulationError
from ..ibe.hybrid import (
    HYBRID_IDENTITY_BYTES,
    HYBRID_MARKER,
    TIIGER_HYBRID_IDENTITY_BYTES,
    hybrid_decapsulate,
    hybrid_encapsulate,
    tiiger_hybrid_decapsulate,
    tiiger_hybrid_encapsulate,
)
from ..ibe.kem import Encapsulation
from ..ibe.lattice import (
    CIPHERTEXT_BYTES as LATTICE_CIPHERTEXT_BYTES,
)
from ..ibe.lattice import (
    LATTICE_MARKER,
    TIIGER_CIPHERTEXT_BYTES,
    LatticeDecapsulator,
    LatticeEncapsulator,
    TiigerLatticeDecapsulator,
    TiigerLatticeEncapsulator,
)
from ..keys import IdentityKey, LatticeIdentityKey, LatticeTAPublicParams, TAPublicParams, validate_identity
from .alerts import AlertDecodeError, AlertMissingExtension
from .versions import TLS_1_2, TLS_1_3

#: The PSK hash every IBE-PSK uses: its binder and the suite it allows.
IBE_PSK_HASH = "sha256"
#: How far a client's clock may be off before it uses another epoch's identity than the server expects.
DEFAULT_EPOCH_SKEW = timedelta(minutes=10)


class IbeScheme(IntEnum):
    """``obfuscated_ticket_age`` markers for identity-based PSKs: TiigerTLS's (1–3), then ibepsk's own."""

    BONEH_FRANKLIN = 1
    LATTICE = 2  # TiigerTLS's lattice KEM alone: hides nothing (spec §8)
    HYBRID = 3  # TiigerTLS's hybrid: classical secrecy
    IBEPSK_LATTICE = LATTICE_MARKER  # ibepsk's sound lattice KEM: post-quantum
    IBEPSK_HYBRID = HYBRID_MARKER  # ibepsk's hybrid, HKDF over both keys: post-quantum and classical


#: The identity length that goes with each marker (spec §9: a robust server checks both).
_IDENTITY_BYTES = {
    IbeScheme.BONEH_FRANKLIN: CIPHERTEXT_BYTES,
    IbeScheme.LATTICE: TIIGER_CIPHERTEXT_BYTES,
    IbeScheme.HYBRID: TIIGER_HYBRID_IDENTITY_BYTES,
    IbeScheme.IBEPSK_LATTICE: LATTICE_CIPHERTEXT_BYTES,
    IbeScheme.IBEPSK_HYBRID: HYBRID_IDENTITY_BYTES,
}
#: The schemes whose PSK (and so 0-RTT data and server authentication) is post-quantum.
POST_QUANTUM_SCHEMES = frozenset({IbeScheme.IBEPSK_LATTICE, IbeScheme.IBEPSK_HYBRID})
#: ``settings.ibe_scheme`` values and the marker a client sends for each.
CLIENT_SCHEMES = {
    "bf": IbeScheme.BONEH_FRANKLIN,
    "tiiger-hybrid": IbeScheme.HYBRID,
    "lattice": IbeScheme.IBEPSK_LATTICE,
    "hybrid": IbeScheme.IBEPSK_HYBRID,
}
BF_ONLY = frozenset({IbeScheme.BONEH_FRANKLIN})
_D = TypeVar("_D")


class PskIdentityLike(Protocol):
    identity: bytearray
    obfuscated_ticket_age: int


def ibe_scheme_of(identity: PskIdentityLike) -> IbeScheme | None:
    """The scheme an identity claims by its marker and length, or None when it claims none."""
    age, length = identity.obfuscated_ticket_age, len(identity.identity)
    return next((scheme for scheme, size in _IDENTITY_BYTES.items() if age == scheme and length == size), None)


def is_ibe_identity(identity: PskIdentityLike, schemes: frozenset[IbeScheme] = BF_ONLY) -> bool:
    """True for an identity that claims to be an IBE ciphertext of one of ``schemes``."""
    return ibe_scheme_of(identity) in schemes


def first_ibe_identity(identities: Sequence[PskIdentityLike], schemes: frozenset[IbeScheme] = BF_ONLY) -> int | None:
    """Index of the one identity a server will open: the first that carries the marker of a scheme it opens."""
    return next((index for index, ident in enumerate(identities) if is_ibe_identity(ident, schemes)), None)


def check_psk_entries(client_hello: ClientHello) -> None:
    """Raise decode_error for an empty identity or binder in a TLS 1.3 ClientHello's pre_shared_key
    (RFC 8446 §4.2.11 bounds them at 1 and 32 bytes; shorter non-empty binders fail verification).

    tlslite-ng makes the same check, for TLS 1.3 ClientHellos, but names a non-existent alert
    (patches/0010), so its server dies with AttributeError instead of sending decode_error.
    """
    psks = client_hello.getExtension(ExtensionType.pre_shared_key)
    versions = client_hello.getExtension(ExtensionType.supported_versions)
    if psks is None or versions is None or TLS_1_3 not in versions.versions:
        return
    if any(not ident.identity for ident in psks.identities):
        raise AlertDecodeError("empty identity in the pre_shared_key extension")
    if any(not binder for binder in psks.binders):
        raise AlertDecodeError("empty binder in the pre_shared_key extension")


def check_server_name(client_hello: ClientHello) -> None:
    """Raise decode_error for a server_name extension that names no host, as OpenSSL does (RFC 6066 §3 defines
    host_name as the only name type).

    tlslite-ng refuses an empty list, but then reads the first host name of any other list without checking there
    is one (patches/0015), so its server dies with IndexError instead of sending an alert.
    """
    sni = client_hello.getExtension(ExtensionType.server_name)
    if sni is not None and sni.serverNames and not sni.hostNames:
        raise AlertDecodeError("server_name extension without a host_name")


def psk_mode_allowed(client_hello: ClientHello, allowed: Iterable[str]) -> bool:
    """Whether the ClientHello's psk_key_exchange_modes lists a mode in ``allowed`` (``settings.psk_modes``).

    RFC 8446 §4.2.9: a server must not select a PSK in a mode the client did not list, so without a
    common mode it uses none of the offered PSKs. tlslite-ng selects one anyway, then finds no mode to
    use it in and sends handshake_failure (patches/0013).
    """
    modes = client_hello.getExtension(ExtensionType.psk_key_exchange_modes)
    offered = set(modes.modes) if modes is not None else set()
    return bool(offered & {getattr(PskKeyExchangeMode, name) for name in allowed})


def without_psk_offer(client_hello: ClientHello) -> ClientHello:
    """The ClientHello as a server that may use none of its PSKs sees it: without pre_shared_key.

    RFC 8446 §4.2.11: the server then does a full handshake if it can. Only the parsed message is
    copied; the transcript already holds the bytes the client sent.
    """
    view = copy.copy(client_hello)
    view.extensions = [ext for ext in client_hello.extensions if ext.extType != ExtensionType.pre_shared_key]
    return view


#: What a certificate-authenticated TLS 1.3 handshake takes from the ClientHello: the schemes to sign
#: CertificateVerify with (RFC 8446 §4.2.3) and the client's (EC)DHE share (§4.2.8).
_CERTIFICATE_HANDSHAKE_NEEDS = {
    ExtensionType.signature_algorithms: "signature_algorithms",
    ExtensionType.key_share: "key_share",
}


def check_certificate_handshake_possible(client_hello: ClientHello) -> None:
    """Raise missing_extension for a ClientHello a certificate handshake cannot answer.

    A client that offers a PSK may leave signature_algorithms out (TiigerTLS's does), and one that
    offers psk_ke only may leave out key_share; if the server then uses none of its PSKs, RFC 8446
    §4.2.3 and §9.2 ask for missing_extension. tlslite-ng's server crashes instead (patches/0014).
    """
    missing = [name for ext, name in _CERTIFICATE_HANDSHAKE_NEEDS.items() if client_hello.getExtension(ext) is None]
    if missing:
        raise AlertMissingExtension(f"no usable PSK, and a certificate handshake needs {' and '.join(missing)}")


#: What only certificate handshakes or TLS 1.2 use: an IBE-PSK client with no other way to
#: authenticate the server leaves these out, as TiigerTLS's client does (RFC 8446 §4.2.3 asks
#: for signature_algorithms only from clients that want certificate authentication).
_CERTIFICATE_OR_TLS12_EXTENSIONS = frozenset(
    {
        ExtensionType.signature_algorithms,
        ExtensionType.signature_algorithms_cert,
        ExtensionType.status_request,
        ExtensionType.cert_type,
        ExtensionType.compress_certificate,
        ExtensionType.encrypt_then_mac,
        ExtensionType.extended_master_secret,
        ExtensionType.ec_point_formats,
        ExtensionType.session_ticket,
        ExtensionType.renegotiation_info,
        ExtensionType.client_hello_padding,
    }
)


def trim_to_ibe_psk_only(
    client_hello: ClientHello, psk_hashes: Iterable[str], preferred_group: int = GroupName.x25519
) -> None:
    """Make a ClientHello that can only end in a PSK handshake as small as that allows.

    TLS 1.3 only (its version, its groups): the suites whose hash one of the offered PSKs uses
    (``psk_hashes``: the IBE-PSK's SHA-256, and any external PSK's or ticket's; all TLS 1.3 suites
    if the settings allow none of those, so the server names the problem), one key share
    (``preferred_group`` if offered: x25519 as TiigerTLS's, X25519MLKEM768 with a post-quantum
    IBE-PSK), and none of the extensions certificate handshakes or TLS 1.2 need. The caller
    recomputes the binders.
    """
    tls13_suites = [s for s in client_hello.cipher_suites if s in CipherSuite.tls13Suites]
    client_hello.cipher_suites = CipherSuite.filter_for_prfs(tls13_suites, set(psk_hashes)) or tls13_suites
    client_hello.extensions = [e for e in client_hello.extensions if e.extType not in _CERTIFICATE_OR_TLS12_EXTENSIONS]
    versions = client_hello.getExtension(ExtensionType.supported_versions)
    if versions is not None:
        versions.versions = [v for v in versions.versions if v > TLS_1_2]
    groups = client_hello.getExtension(ExtensionType.supported_groups)
    if groups is not None:  # RFC 8446 §B.3.1.4: a TLS 1.3-only client must not offer these
        groups.groups = [g for g in groups.groups if g not in TLS_1_3_FORBIDDEN_GROUPS]
    key_share = client_hello.getExtension(ExtensionType.key_share)
    if key_share is not None and key_share.client_shares:
        preferred = [share for share in key_share.client_shares if share.group == preferred_group]
        key_share.client_shares = (preferred or key_share.client_shares)[:1]


@dataclass(frozen=True)
class IbePskOffer:
    """What a client puts into one ClientHello: the ciphertext and its secret."""

    identity: str
    ciphertext: bytearray
    psk: bytearray = field(repr=False)
    marker: IbeScheme = IbeScheme.BONEH_FRANKLIN

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
    """Keeps one encapsulator per (kind, TA, server name): H1 and the pairing base (BF), H_ID(ID) (lattice) are
    reused."""

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._items: OrderedDict[tuple[str, str, str], Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, kind: type, public: TAPublicParams | LatticeTAPublicParams, identity: str) -> Any:
        """An encapsulator of class ``kind`` (BF's ``Encapsulator`` or a lattice one) to ``identity``."""
        key = (kind.__name__, public.fingerprint, identity)
        with self._lock:
            encapsulator = self._items.get(key)
            if encapsulator is not None:
                self._items.move_to_end(key)
                return encapsulator
        encapsulator = kind(identity, public.public_key if isinstance(public, TAPublicParams) else public.h)
        with self._lock:
            self._items[key] = encapsulator
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return encapsulator


_encapsulators = _EncapsulatorCache()


def offered_scheme(settings: Any) -> IbeScheme | None:
    """The scheme a client's settings offer an IBE-PSK in, or None when they name no TA to encapsulate to:
    the lattice TA (``ibe_lattice_public_params``) for ibepsk's lattice scheme, the BF TA for the others."""
    scheme = CLIENT_SCHEMES[settings.ibe_scheme]
    lattice_only = scheme == IbeScheme.IBEPSK_LATTICE
    public = settings.ibe_lattice_public_params if lattice_only else settings.ibe_public_params
    return scheme if public is not None else None


def client_identity(base: str, epoch: EpochPeriod | None, now: datetime | None = None) -> str:
    """The identity a client encapsulates to: ``base``, bound to the current epoch when asked."""
    return validate_identity(base) if epoch is None else current_identity(base, now or _utc_now(), epoch)


def sni_host_name(name: str) -> str | None:
    """The SNI host name that names ``name`` (an identity or an epoch-bound host), or None if none can.

    SNI carries ASCII host names (RFC 6066 §3), an internationalized name as its IDNA A-labels: "gätewäy"
    is named "xn--gtewy-grad". A name that is no host name at all ("device 1") cannot be named in SNI; a
    server answers such an identity as its default one.
    """
    try:
        host = name.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    return host if is_valid_hostname(host) else None


def make_offer(
    public: TAPublicParams | None,
    identity: str,
    lattice: LatticeTAPublicParams | None = None,
    scheme: IbeScheme = IbeScheme.BONEH_FRANKLIN,
) -> IbePskOffer:
    """A fresh encapsulation to ``identity`` in ``scheme``: never reuse one across connections.

    ``public`` is the BF TA (every scheme but IBEPSK_LATTICE needs it), ``lattice`` the lattice TA (every
    scheme but BONEH_FRANKLIN). TiigerTLS's hybrid (marker 3, 64-byte PSK) is only as secret as its BF half.
    """
    encapsulation = _encapsulate(scheme, identity, public, lattice)
    return IbePskOffer(identity, bytearray(encapsulation.ciphertext), bytearray(encapsulation.psk), scheme)


def _encapsulate(
    scheme: IbeScheme, identity: str, public: TAPublicParams | None, lattice: LatticeTAPublicParams | None
) -> Encapsulation:
    encapsulation: Encapsulation
    if scheme == IbeScheme.IBEPSK_LATTICE:
        encapsulation = _encapsulators.get(LatticeEncapsulator, _needed(lattice, "lattice"), identity).encapsulate()
        return encapsulation
    bf: Encapsulator = _encapsulators.get(Encapsulator, _needed(public, "Boneh–Franklin"), identity)
    if scheme == IbeScheme.BONEH_FRANKLIN:
        return bf.encapsulate()
    if scheme == IbeScheme.IBEPSK_HYBRID:
        return hybrid_encapsulate(_encapsulators.get(LatticeEncapsulator, _needed(lattice, "lattice"), identity), bf)
    if scheme == IbeScheme.HYBRID:
        return tiiger_hybrid_encapsulate(
            _encapsulators.get(TiigerLatticeEncapsulator, _needed(lattice, "lattice"), identity), bf
        )
    raise ValueError(f"an ibepsk client does not send {scheme.name} identities")


def _needed(public: TAPublicParams | LatticeTAPublicParams | None, what: str) -> TAPublicParams | LatticeTAPublicParams:
    if public is None:
        raise ValueError(f"this IBE scheme needs the {what} TA's public parameters")
    return public


def _utc_now() -> datetime:
    return datetime.now(UTC)


class IbeKeyring:
    """A server's identity keys, chosen by SNI, with one default.

    Epoch-bound identities (``host|2026-11-27``, see :mod:`ibepsk.epochs`) are
    chosen by the server's clock: the key for the current epoch, and within
    ``epoch_skew`` of an epoch boundary also the neighbouring one, for clients
    whose clocks run a little early or late. So one ciphertext costs one
    pairing, two near a boundary, never one per key held.

    ``decapsulations`` counts decapsulations (a pairing, a lattice decryption,
    or both for a hybrid), so an operator (and the tests) can see what a
    ClientHello costs.

    With ``tiiger_lattice_keys`` (TiigerTLS lattice identity keys, for
    identities that also have a BF key here) and their TA's
    ``tiiger_lattice_public``, the keyring also opens TiigerTLS's hybrid
    identities (marker 3) to those identities. Their PSK is only as secret as
    the BF half: classical. ``allow_insecure_tiiger_lattice_only`` also opens
    marker 2, the lattice half alone, which hides nothing: anyone who sees
    the ClientHello computes its PSK. Leave it off outside interop tests.

    With ``lattice_keys`` (identity keys of a lattice TA, e.g. from
    ``ibepsk ta extract`` of a ``--scheme lattice`` TA) and that TA's
    ``lattice_public``, the keyring opens ibepsk's sound lattice identities
    (:attr:`IbeScheme.IBEPSK_LATTICE`), and ibepsk's hybrid ones
    (:attr:`IbeScheme.IBEPSK_HYBRID`) to identities that have a BF key too:
    the post-quantum modes. ``keys`` may then be empty.
    """

    def __init__(
        self,
        keys: Iterable[IdentityKey],
        default: str | None = None,
        public: TAPublicParams | None = None,
        *,
        epoch_skew: timedelta = DEFAULT_EPOCH_SKEW,
        clock: Callable[[], datetime] = _utc_now,
        tiiger_lattice_keys: Iterable[LatticeIdentityKey] = (),
        tiiger_lattice_public: LatticeTAPublicParams | None = None,
        allow_insecure_tiiger_lattice_only: bool = False,
        lattice_keys: Iterable[LatticeIdentityKey] = (),
        lattice_public: LatticeTAPublicParams | None = None,
    ) -> None:
        self._keys: dict[str, Decapsulator] = {}
        self._epochs: dict[str, EpochPeriod] = {}
        self._by_sni: dict[str, str] = {}  # A-label SNI -> the non-ASCII identity or epoch host it names
        for key in keys:
            if public is not None:
                key.verify(public)
            self._keys[key.identity] = Decapsulator(key.key)
        self._sound = {
            key.identity: LatticeDecapsulator(key.identity, key.key, h)
            for key, h in _checked_lattice(
                lattice_keys, lattice_public, "lattice keys need their TA's public parameters (lattice_public)"
            )
        }
        self._names = dict.fromkeys([*self._keys, *self._sound])  # every identity with a key, in order
        for name in self._names:
            self._note_epoch(name)
            self._note_sni(name)
        if not self._names:
            raise ValueError("an IbeKeyring needs at least one identity key")
        self.default = default if default is not None else next(iter(self._names))
        if self.default not in self._names:
            raise ValueError(f"default identity {self.default!r} has no key in this keyring")
        self.epoch_skew = epoch_skew
        self._clock = clock
        self._lattice = self._lattice_decapsulators(tiiger_lattice_keys, tiiger_lattice_public)
        self.allow_insecure_tiiger_lattice_only = allow_insecure_tiiger_lattice_only
        self._count_lock = threading.Lock()
        self.decapsulations = 0

    def _lattice_decapsulators(
        self, keys: Iterable[LatticeIdentityKey], public: LatticeTAPublicParams | None
    ) -> dict[str, TiigerLatticeDecapsulator]:
        decapsulators = {}
        for key, h in _checked_lattice(
            keys, public, "TiigerTLS lattice keys need their TA's public parameters (tiiger_lattice_public)"
        ):
            if key.identity not in self._keys:
                raise ValueError(f"lattice key for {key.identity!r} has no BF key in this keyring: marker 3 needs both")
            decapsulators[key.identity] = TiigerLatticeDecapsulator(key.identity, key.key, h)
        return decapsulators

    @property
    def schemes(self) -> frozenset[IbeScheme]:
        """The markers this keyring has keys for: BF with BF keys; ibepsk's lattice with lattice keys, its hybrid
        with both for one identity; TiigerTLS's hybrid with its lattice keys; marker 2 only if allowed."""
        schemes = set(BF_ONLY) if self._keys else set()
        if self._lattice:
            schemes.add(IbeScheme.HYBRID)
            if self.allow_insecure_tiiger_lattice_only:
                schemes.add(IbeScheme.LATTICE)
        if self._sound:
            schemes.add(IbeScheme.IBEPSK_LATTICE)
        if self._sound.keys() & self._keys.keys():
            schemes.add(IbeScheme.IBEPSK_HYBRID)
        return frozenset(schemes)

    def _note_epoch(self, identity: str) -> None:
        try:
            epoch = parse_identity(identity)
        except EpochError:
            return
        self._epochs[epoch.host] = epoch.period
        self._note_sni(epoch.host)

    def _note_sni(self, name: str) -> None:
        host = sni_host_name(name)
        if host is not None and host != name:
            self._by_sni.setdefault(host, name)

    @property
    def identities(self) -> list[str]:
        return list(self._names)

    def candidates(self, server_name: str | None) -> list[str]:
        """The identities, most likely first, that a client naming ``server_name`` in SNI encapsulated to."""
        if server_name is not None and server_name not in self._names and server_name not in self._epochs:
            server_name = self._by_sni.get(server_name, server_name)
        if server_name in self._names:
            return [server_name]
        if server_name in self._epochs:
            return self._epoch_candidates(server_name, self._epochs[server_name])
        return [self.default]

    def _epoch_candidates(self, host: str, period: EpochPeriod) -> list[str]:
        now = self._clock()
        current = epoch_identity(host, now, period)
        likely = [current]
        if now - current.start < self.epoch_skew:
            likely.append(current.shifted(-1))
        if current.end - now < self.epoch_skew:
            likely.append(current.shifted(1))
        return [str(epoch) for epoch in likely if str(epoch) in self._names]

    def open(
        self, server_name: str | None, ciphertext: bytes, scheme: IbeScheme = IbeScheme.BONEH_FRANKLIN
    ) -> tuple[str, bytearray]:
        """Decapsulate under the key(s) chosen by SNI; raises IbeDecapsulationError."""
        if scheme not in self.schemes:
            raise IbeDecapsulationError(f"this keyring does not open {scheme.name} identities")
        for identity in self.candidates(server_name):
            with self._count_lock:
                self.decapsulations += 1
            try:
                return identity, bytearray(self._decapsulate(identity, scheme, bytes(ciphertext)))
            except IbeDecapsulationError:
                continue
        raise IbeDecapsulationError("the ciphertext opens under none of the keys for this name")

    def _decapsulate(self, identity: str, scheme: IbeScheme, ciphertext: bytes) -> bytes:
        if scheme == IbeScheme.IBEPSK_LATTICE:
            return _key(self._sound, identity, "lattice").decapsulate(ciphertext)
        if scheme == IbeScheme.LATTICE:
            return _key(self._lattice, identity, "TiigerTLS lattice").decapsulate(ciphertext)
        bf = _key(self._keys, identity, "Boneh–Franklin")
        if scheme == IbeScheme.BONEH_FRANKLIN:
            return bf.decapsulate(ciphertext)
        if scheme == IbeScheme.IBEPSK_HYBRID:
            return hybrid_decapsulate(_key(self._sound, identity, "lattice"), bf, ciphertext)
        return tiiger_hybrid_decapsulate(_key(self._lattice, identity, "TiigerTLS lattice"), bf, ciphertext)


def _checked_lattice(
    keys: Iterable[LatticeIdentityKey], public: LatticeTAPublicParams | None, without_public: str
) -> list[tuple[LatticeIdentityKey, list[int]]]:
    """Each lattice key, verified against its TA's ``public`` key, with that TA's h."""
    keys = list(keys)
    if not keys:
        return []
    if public is None:
        raise ValueError(without_public)
    for key in keys:
        key.verify(public)
    h = public.h
    return [(key, h) for key in keys]


def _key(table: Mapping[str, _D], identity: str, kind: str) -> _D:
    """The decapsulator for ``identity`` from ``table``; IbeDecapsulationError when this keyring has none."""
    decapsulator = table.get(identity)
    if decapsulator is None:
        raise IbeDecapsulationError(f"no {kind} key for {identity!r}")
    return decapsulator

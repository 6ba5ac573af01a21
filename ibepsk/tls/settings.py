"""``ibepsk.HandshakeSettings``: tlslite-ng's settings plus the IBE-PSK fields."""

from __future__ import annotations

import copy
import threading
import weakref
from typing import Any

import tlslite.handshakesettings
from tlslite.handshakesettings import HandshakeSettings as _TlsliteSettings

from ..epochs import EpochPeriod
from ..keys import LatticeTAPublicParams, TAPublicParams
from ._crypto.mlkem import GROUP_NAMES as HYBRID_GROUP_NAMES
from .certs import TrustAnchors
from .early_data import MAX_RECORD_PLAINTEXT, EarlyDataHandler
from .psk import CLIENT_SCHEMES, IbeKeyring
from .replay import MemoryReplayStore, ReplayStore
from .signer import Signer

_DEFAULT_STORE_LOCK = threading.Lock()
#: The default strike register of each settings object that accepts early data without naming one.
_DEFAULT_STORES: weakref.WeakKeyDictionary[HandshakeSettings, ReplayStore] = weakref.WeakKeyDictionary()
#: Rejected 0-RTT data a server skips before giving up (RFC 8446 §4.2.10): four full records.
_SKIP_BUDGET = 4 * (MAX_RECORD_PLAINTEXT + 256)
#: How long the default strike register remembers a first flight (see docs/replay.md).
DEFAULT_REPLAY_WINDOW_SECONDS = 3 * 24 * 3600


class _PskConfigsWithIbe(list[Any]):
    """A ``pskConfigs`` list that is truthy while an IBE keyring is configured.

    tlslite-ng treats an empty ``pskConfigs`` as "this server has no PSK
    credentials" (it then refuses a certificate-less server and offers no TLS
    1.3 suites). An IBE server has PSK credentials that only exist per
    connection, once a ClientHello has been opened, so the list says so.
    """

    def __bool__(self) -> bool:
        return True


class HandshakeSettings(_TlsliteSettings):  # type: ignore[misc]
    """tlslite-ng ``HandshakeSettings`` with identity-based PSKs.

    Client fields:
        ``ibe_public_params``: the TA's :class:`~ibepsk.keys.TAPublicParams`;
        when set, every TLS 1.3 ClientHello offers a fresh IBE-PSK.
        ``ibe_scheme``: ``"bf"`` (default: Boneh–Franklin, marker 1) or
        ``"tiiger-hybrid"``: TiigerTLS's hybrid IBE-PSK (marker 3) to the BF TA
        and the TiigerTLS lattice TA in ``ibe_lattice_public_params``, offered
        with an X25519MLKEM768 key share alone. Its PSK is only as secret as the
        BF half (TiigerTLS's lattice half hides nothing): classical, not
        post-quantum. It exists for interop with TiigerTLS. ``"lattice"``:
        ibepsk's sound lattice IBE-PSK (marker 0xFFFFFF02) to the lattice TA
        in ``ibe_lattice_public_params`` alone (no BF TA needed), and
        ``"hybrid"``: ibepsk's hybrid (marker 0xFFFFFF03; the lattice KEM and
        BF, PSK = HKDF over both keys), the recommended post-quantum mode.
        Both send an X25519MLKEM768 share (if in ``keyShares``, as by default)
        as the lean ClientHello's one key share.
        ``ibe_identity``: the identity to encapsulate to (default: the
        ``serverName`` given to the handshake).
        ``ibe_epoch``: an :class:`~ibepsk.epochs.EpochPeriod` to bind that
        identity to the current day or hour (``host|2026-11-27``), so that a
        captured first flight stops opening once its epoch is over.
        ``ibe_lean_client_hello``: when the client has no way to authenticate
        the server but the IBE-PSK (no ``checker``), send a TLS 1.3-only
        ClientHello (its version and groups; the suites of the offered PSKs'
        hashes), with one key share (x25519 if offered) and none of the
        extensions only certificate handshakes and TLS 1.2 use (default True).
        ``ibe_max_early_data``: the most 0-RTT data the client will send
        (``handshakeClientCert(early_data=…)``), default 2^14.
        ``early_data_resend``: send rejected early data again after the
        handshake, as TiigerTLS does (default True).
    Server fields:
        ``ibe_keyring``: an :class:`~ibepsk.tls.psk.IbeKeyring`; when set, the
        server accepts IBE-PSKs addressed to any of its identities.
        ``accept_early_data``: accept up to this many bytes of 0-RTT data over
        an IBE-PSK; 0 (the default) never accepts.
        ``replay_store``: the strike register that lets each first flight's
        early data in once (default: an in-process
        :class:`~ibepsk.tls.replay.MemoryReplayStore`, shared by every
        connection using these settings).
        ``early_data_handler``: ``handler(conn, data) -> bytes | None``, called
        with accepted early data before the handshake completes; what it
        returns is sent at once, as 0.5-RTT data.
        ``resumption_ticket_count``: how many of tlslite-ng's ``ticket_count``
        tickets to issue after a handshake that resumed a ticket (default 1, as
        OpenSSL: the client already held one and now holds a fresh one; each
        costs the server a key derivation and a sealing). The ticket that
        post-handshake authentication issues afterwards is not counted.
    Post-handshake client authentication (:mod:`ibepsk.tls.pha`):
        ``client_auth_signer`` (client): a :class:`~ibepsk.tls.signer.Signer`;
        when set, the client offers post_handshake_auth and answers with it.
        ``client_auth_answer_limit`` (client): answer this many
        CertificateRequests per connection, the first ones (default 1; None:
        all); later ones are declined with an empty Certificate.
        ``client_auth_anchors`` (server): the
        :class:`~ibepsk.tls.certs.TrustAnchors` client chains must validate
        against; needed for ``conn.request_client_auth()``.

    Unlike tlslite-ng, ``psk_modes`` defaults to ``["psk_dhe_ke"]`` (forward
    secrecy); add ``"psk_ke"`` to allow PSK-only key exchange. The hybrid
    post-quantum groups X25519MLKEM768 and SecP256r1MLKEM768 (on ``cryptography``, kyber-py not
    needed) lead ``eccCurves``, and ``keyShares`` is X25519MLKEM768 then X25519 (tlslite-ng also sends
    P-256): a server picks the hybrid whenever the client sent one.
    """

    def __init__(self) -> None:
        super().__init__()
        self.psk_modes = ["psk_dhe_ke"]
        self.eccCurves: list[str] = _hybrid_first(list(self.eccCurves), HYBRID_GROUP_NAMES)
        # Shares for X25519MLKEM768 and X25519 only, as OpenSSL 3.5 and browsers send: a third (tlslite-ng's
        # P-256) costs every handshake a key generation; a server that wants another group asks for it (HRR).
        self.keyShares: list[str] = [HYBRID_GROUP_NAMES[0], "x25519"]
        self.ibe_public_params: TAPublicParams | None = None
        self.ibe_scheme = "bf"
        self.ibe_lattice_public_params: LatticeTAPublicParams | None = None
        self.ibe_identity: str | None = None
        self.ibe_epoch: EpochPeriod | None = None
        self.ibe_lean_client_hello = True
        self.ibe_keyring: IbeKeyring | None = None
        self.ibe_max_early_data = MAX_RECORD_PLAINTEXT
        self.early_data_resend = True
        self.accept_early_data = 0
        # tlslite-ng's budget for *skipping* rejected 0-RTT records counts ciphertext and needs a strict
        # margin: leave room for a client's largest default flight (ibe_max_early_data in full records).
        self.max_early_data = _SKIP_BUDGET
        self.replay_store: ReplayStore | None = None
        self.early_data_handler: EarlyDataHandler | None = None
        self.resumption_ticket_count = 1
        self.client_auth_signer: Signer | None = None
        self.client_auth_answer_limit: int | None = 1
        self.client_auth_anchors: TrustAnchors | None = None

    @classmethod
    def of(cls, settings: _TlsliteSettings | None) -> HandshakeSettings:
        """``settings`` as ibepsk settings: themselves, or a plain tlslite-ng object's fields (None: tlslite-ng's
        defaults) with ours at their defaults, so every hook reads one type."""
        if isinstance(settings, HandshakeSettings):
            return settings
        ours = cls()
        ours.__dict__.update(vars(settings if settings is not None else _TlsliteSettings()))
        return ours

    def validate(self) -> HandshakeSettings:
        """Hooks tlslite's ``validate()``, which copies into a plain HandshakeSettings: keep our class and fields.

        Like tlslite's, it leaves this object as it is and returns a checked copy.
        """
        checked = _validated_with_hybrid_groups(self, super(HandshakeSettings, _without_unknown_hybrids(self)).validate)
        if self.ibe_public_params is not None and not isinstance(self.ibe_public_params, TAPublicParams):
            raise ValueError("ibe_public_params must be an ibepsk.keys.TAPublicParams")
        _check_ibe_scheme(self)
        if self.ibe_keyring is not None and not isinstance(self.ibe_keyring, IbeKeyring):
            raise ValueError("ibe_keyring must be an ibepsk.tls.IbeKeyring")
        _check_client_auth_fields(self)
        if not isinstance(self.resumption_ticket_count, int) or self.resumption_ticket_count < 0:
            raise ValueError("resumption_ticket_count must be a non-negative integer")
        ours = copy.copy(self)  # our fields, whatever subclasses add too
        ours.__dict__.update(vars(checked))  # tlslite's checked copies of its own
        # tlslite shares pskConfigs by reference; the connection adds per-connection entries to its own copy.
        ours.pskConfigs = _PskConfigsWithIbe(checked.pskConfigs) if self.ibe_keyring else list(checked.pskConfigs)
        if self.accept_early_data and self.replay_store is None:
            ours.replay_store = _default_replay_store(self)
        return ours


#: ``ibe_scheme`` values: Boneh–Franklin (marker 1), TiigerTLS's hybrid (marker 3, classical secrecy), and
#: ibepsk's post-quantum lattice and hybrid (markers 0xFFFFFF02, 0xFFFFFF03).
IBE_SCHEMES = tuple(CLIENT_SCHEMES)


def _check_ibe_scheme(settings: HandshakeSettings) -> None:
    if settings.ibe_scheme not in IBE_SCHEMES:
        raise ValueError(f"ibe_scheme must be one of {', '.join(IBE_SCHEMES)}, not {settings.ibe_scheme!r}")
    lattice = settings.ibe_lattice_public_params
    if lattice is not None and not isinstance(lattice, LatticeTAPublicParams):
        raise ValueError("ibe_lattice_public_params must be an ibepsk.keys.LatticeTAPublicParams")
    if settings.ibe_scheme in ("tiiger-hybrid", "hybrid") and (lattice is None or settings.ibe_public_params is None):
        raise ValueError(f"ibe_scheme {settings.ibe_scheme!r} needs ibe_public_params and ibe_lattice_public_params")
    if settings.ibe_scheme == "lattice" and lattice is None:
        raise ValueError("ibe_scheme 'lattice' needs ibe_lattice_public_params")


def _hybrid_first(names: list[str], hybrids: tuple[str, ...]) -> list[str]:
    return [*hybrids, *(name for name in names if name not in hybrids)]


def _unknown_to_tlslite(name: str) -> bool:
    """A hybrid group ibepsk implements that tlslite-ng's checks reject (it knows it only with kyber-py)."""
    return name in HYBRID_GROUP_NAMES and name not in tlslite.handshakesettings.ALL_CURVE_NAMES


def _without_unknown_hybrids(settings: HandshakeSettings) -> HandshakeSettings:
    plain = copy.copy(settings)
    plain.eccCurves = [name for name in settings.eccCurves if not _unknown_to_tlslite(name)]
    plain.keyShares = [name for name in settings.keyShares if not _unknown_to_tlslite(name)]
    return plain


def _validated_with_hybrid_groups(settings: HandshakeSettings, validate: Any) -> Any:
    """tlslite-ng's checks, run without the hybrid groups it cannot name; the checked copy gets them back."""
    checked = validate()
    non_advertised = [name for name in settings.keyShares if name not in settings.eccCurves]
    if any(_unknown_to_tlslite(name) for name in non_advertised):
        raise ValueError(f"Key shares for not enabled groups specified: {non_advertised}")
    checked.eccCurves = list(settings.eccCurves)
    checked.keyShares = list(settings.keyShares)
    return checked


def _default_replay_store(settings: HandshakeSettings) -> ReplayStore:
    """One in-process strike register per settings object, shared by every connection using it."""
    with _DEFAULT_STORE_LOCK:  # a server validates per connection, in many threads at once
        store = _DEFAULT_STORES.get(settings)
        if store is None:
            store = _DEFAULT_STORES[settings] = MemoryReplayStore(DEFAULT_REPLAY_WINDOW_SECONDS)
        return store


def _check_client_auth_fields(settings: HandshakeSettings) -> None:
    if settings.client_auth_signer is not None and not isinstance(settings.client_auth_signer, Signer):
        raise ValueError("client_auth_signer must implement ibepsk.tls.signer.Signer")
    limit = settings.client_auth_answer_limit
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise ValueError("client_auth_answer_limit must be None or a non-negative int")
    anchors = settings.client_auth_anchors
    if anchors is not None and not callable(getattr(anchors, "verify_client", None)):  # duck-typed on purpose
        raise ValueError("client_auth_anchors must be an ibepsk.tls.certs.TrustAnchors (or have verify_client)")

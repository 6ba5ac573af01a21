"""``ibepsk.HandshakeSettings``: tlslite-ng's settings plus the IBE-PSK fields."""

from __future__ import annotations

from typing import Any

from tlslite.handshakesettings import HandshakeSettings as _TlsliteSettings

from ..epochs import EpochPeriod
from ..keys import TAPublicParams
from .early_data import MAX_RECORD_PLAINTEXT, EarlyDataHandler
from .psk import IbeKeyring
from .replay import MemoryReplayStore, ReplayStore

#: Attributes this subclass adds; ``validate()`` carries them into its copy.
_OUR_FIELDS = (
    "ibe_public_params",
    "ibe_identity",
    "ibe_epoch",
    "ibe_keyring",
    "ibe_max_early_data",
    "early_data_resend",
    "accept_early_data",
    "replay_store",
    "early_data_handler",
)
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
        ``ibe_identity``: the identity to encapsulate to (default: the
        ``serverName`` given to the handshake).
        ``ibe_epoch``: an :class:`~ibepsk.epochs.EpochPeriod` to bind that
        identity to the current day or hour (``host|2026-11-27``), so that a
        captured first flight stops opening once its epoch is over.
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

    Unlike tlslite-ng, ``psk_modes`` defaults to ``["psk_dhe_ke"]`` (forward
    secrecy); add ``"psk_ke"`` to allow PSK-only key exchange.
    """

    def __init__(self) -> None:
        super().__init__()
        self.psk_modes = ["psk_dhe_ke"]
        self.ibe_public_params: TAPublicParams | None = None
        self.ibe_identity: str | None = None
        self.ibe_epoch: EpochPeriod | None = None
        self.ibe_keyring: IbeKeyring | None = None
        self.ibe_max_early_data = MAX_RECORD_PLAINTEXT
        self.early_data_resend = True
        self.accept_early_data = 0
        self.replay_store: ReplayStore | None = None
        self.early_data_handler: EarlyDataHandler | None = None

    def validate(self) -> HandshakeSettings:
        """Hooks tlslite's ``validate()``, which copies into a plain HandshakeSettings: keep our class and fields."""
        checked = super().validate()
        if self.accept_early_data and self.replay_store is None:
            # Created on the caller's object, so every connection using it shares one register.
            self.replay_store = MemoryReplayStore(DEFAULT_REPLAY_WINDOW_SECONDS)
        ours = HandshakeSettings.__new__(type(self))
        ours.__dict__.update(checked.__dict__)
        for name in _OUR_FIELDS:
            setattr(ours, name, getattr(self, name))
        # tlslite shares pskConfigs by reference; the connection adds per-connection entries to its own copy.
        ours.pskConfigs = _PskConfigsWithIbe(checked.pskConfigs) if self.ibe_keyring else list(checked.pskConfigs)
        if self.ibe_public_params is not None and not isinstance(self.ibe_public_params, TAPublicParams):
            raise ValueError("ibe_public_params must be an ibepsk.keys.TAPublicParams")
        if self.ibe_keyring is not None and not isinstance(self.ibe_keyring, IbeKeyring):
            raise ValueError("ibe_keyring must be an ibepsk.tls.IbeKeyring")
        return ours

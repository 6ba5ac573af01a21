"""The IBE-PSK part of ``ibepsk.TLSConnection``: its state and decisions, called by :mod:`ibepsk.tls.seam`.

tlslite-ng has no identity-to-secret callback and hard-codes an external
PSK's ``obfuscated_ticket_age`` to 0, so the seam calls these methods from its
hooks of tlslite-ng internals; the upstream changes that would make them
unnecessary are in ``patches/``. Nothing here overrides a tlslite-ng method or
touches a socket: a refusal raises a :class:`~ibepsk.tls.alerts.TlsAlert`.
"""

from __future__ import annotations

import copy
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tlslite.constants import AlertDescription, CipherSuite, ExtensionType, GroupName
from tlslite.messages import ClientHello, ServerHello

from ..ibe import IbeDecapsulationError
from .alerts import (
    AlertDecryptError,
    AlertHandshakeFailure,
    AlertIllegalParameter,
    AlertUnknownPskIdentity,
    TlsAlert,
)
from .psk import (
    IBE_PSK_HASH,
    POST_QUANTUM_SCHEMES,
    IbeKeyring,
    IbePskOffer,
    IbeScheme,
    OpenedIbePsk,
    check_certificate_handshake_possible,
    client_identity,
    first_ibe_identity,
    ibe_scheme_of,
    make_offer,
    offered_scheme,
    psk_mode_allowed,
    trim_to_ibe_psk_only,
    without_psk_offer,
)
from .versions import TLS_1_3

if TYPE_CHECKING:
    from .settings import HandshakeSettings

#: ``settings.ibe_scheme`` for TiigerTLS's hybrid IBE-PSK (marker 3): classical secrecy, see ibepsk.tls.psk.
TIIGER_HYBRID = "tiiger-hybrid"
#: ``settings.ibe_scheme`` for ibepsk's lattice IBE-PSK alone: the one scheme without a BF TA.
LATTICE = "lattice"

#: The message of the exception tlslite-ng's ``HandshakeHelpers.verify_binder`` raises for a wrong binder.
_TLSLITE_BAD_BINDER = "Binder does not verify"


def _external_identities(settings: Any) -> set[bytes]:
    """The identities of the external PSKs configured in tlslite-ng's ``pskConfigs``."""
    return {bytes(config[0]) for config in settings.pskConfigs}


def _config_hash(config: tuple[Any, ...]) -> str:
    """The hash of a ``pskConfigs`` entry: its optional third element, SHA-256 by default (as in tlslite-ng)."""
    return config[2] if len(config) > 2 else "sha256"


def _suite_hash(cipher_suite: int) -> str:
    """The hash of a TLS 1.3 suite, named as PSK hashes are."""
    return "sha384" if cipher_suite in CipherSuite.sha384PrfSuites else "sha256"


def offered_psk_hashes(settings: Any, session: Any) -> set[str]:
    """The hash of every PSK a ClientHello offers: each pskConfigs entry's (the IBE-PSK's too) and the ticket's."""
    hashes = {_config_hash(config) for config in settings.pskConfigs}
    if session is not None and session.tickets:
        hashes.add(_suite_hash(session.cipherSuite))
    return hashes


class HandshakeMode(StrEnum):
    """How the server was authenticated in the last handshake."""

    IBE_PSK = "ibe-psk"
    RESUMPTION = "resumption"
    EXTERNAL_PSK = "external-psk"
    CERTIFICATE = "certificate"


def check_server_choice(
    settings: HandshakeSettings, client_hello: Any, server_hello: Any, ibe_offer: IbePskOffer | None, fallback: bool
) -> tuple[HandshakeMode, str | None, str | None]:
    """The client's check of the server's PSK choice, which tlslite does not make (the selected index, the key
    exchange mode, our certificate fallback policy): (handshake mode, IBE identity, psk key exchange)."""
    selected = server_hello.getExtension(ExtensionType.pre_shared_key)
    has_key_share = server_hello.getExtension(ExtensionType.key_share) is not None
    if selected is None:
        if ibe_offer is not None and not fallback:
            raise AlertHandshakeFailure(
                f"server did not accept the IBE-PSK for {ibe_offer.identity!r} and no certificate "
                "checker was given to authenticate it otherwise"
            )
        return HandshakeMode.CERTIFICATE, None, None
    offered = client_hello.getExtension(ExtensionType.pre_shared_key).identities
    if selected.selected >= len(offered):
        raise AlertIllegalParameter("server selected a PSK identity that was not offered")
    if not has_key_share and "psk_ke" not in settings.psk_modes:
        raise AlertIllegalParameter("server chose psk_ke, which this client did not offer")
    chosen = offered[selected.selected].identity
    ibe_identity = ibe_offer.identity if ibe_offer is not None and chosen == ibe_offer.ciphertext else None
    return _psk_mode(has_key_share, ibe_identity, bytes(chosen) in _external_identities(settings))


def _psk_mode(
    has_key_share: bool, ibe_identity: str | None, external: bool
) -> tuple[HandshakeMode, str | None, str | None]:
    """What a selected PSK says about the handshake, on either side."""
    key_exchange = "psk_dhe_ke" if has_key_share else "psk_ke"
    if ibe_identity is not None:
        return HandshakeMode.IBE_PSK, ibe_identity, key_exchange
    if external:
        return HandshakeMode.EXTERNAL_PSK, None, key_exchange
    return HandshakeMode.RESUMPTION, None, key_exchange


def tickets_to_issue(settings: Any, mode: HandshakeMode | None) -> Any:
    """The settings tlslite-ng issues tickets with: after a ticket resumption at most
    ``resumption_ticket_count`` of them (plain tlslite-ng settings: one)."""
    if mode is not HandshakeMode.RESUMPTION:
        return settings
    limit = getattr(settings, "resumption_ticket_count", 1)
    if settings.ticket_count <= limit:
        return settings
    fewer = copy.copy(settings)
    fewer.ticket_count = limit
    return fewer


def newest_ticket_first(session: Any) -> Any:
    """The session to resume with, its newest ticket first (tlslite offers the first one): only a ticket issued
    after post-handshake authentication lets the server remember the client. The caller's session is left as is."""
    if session is None or not session.tickets:
        return session
    ordered = copy.copy(session)
    ordered.tickets = sorted(session.tickets, key=lambda ticket: ticket.time, reverse=True)
    return ordered


def prefer_ibe_psk_suites(settings: HandshakeSettings, client_hello: Any, cipher_suites: list[int]) -> list[int]:
    """With an IBE-PSK on offer prefer SHA-256 suites, as tlslite does for its own PSKs — unless the client also
    offers one of those, whose hash tlslite then prefers itself."""
    psks = client_hello.getExtension(ExtensionType.pre_shared_key)
    if (
        settings.ibe_keyring
        and psks
        and first_ibe_identity(psks.identities, settings.ibe_keyring.schemes) is not None
        and not external_indexes(settings, client_hello)
    ):
        sha256_suites = CipherSuite.filter_for_prfs(cipher_suites, [IBE_PSK_HASH])
        if any(suite in client_hello.cipher_suites for suite in sha256_suites):
            return list(sha256_suites)
    return cipher_suites


#: ``external_indexes`` of the many handshakes that offer no external PSK (one object, not one each).
_NO_INDEXES: frozenset[int] = frozenset()


def external_indexes(settings: Any, client_hello: Any) -> frozenset[int]:
    psks = client_hello.getExtension(ExtensionType.pre_shared_key)
    external = _external_identities(settings)
    if not psks or not external:
        return _NO_INDEXES
    return frozenset(i for i, ident in enumerate(psks.identities) if bytes(ident.identity) in external)


class IbePsk:
    """The IBE-PSK state of :class:`ibepsk.TLSConnection` and the steps the seam calls, in its order."""

    # Provided by tlslite-ng's TLSConnection (see ibepsk.tls.seam).
    _client: bool
    _handshake_hash: Any
    _handshake_helpers: Any  # tlslite-ng's HandshakeHelpers or their accelerated twin
    _tryDecrypt: Any

    def _init_ibe_psk(self) -> None:
        self.handshake_mode: HandshakeMode | None = None
        self.ibe_identity: str | None = None
        self.psk_key_exchange: str | None = None
        self._ibe_offer: IbePskOffer | None = None
        self._ibe_binder_context: tuple[Any, Any] | None = None
        self._ibe_opened: OpenedIbePsk | None = None
        self._external_psk_indexes: frozenset[int] = _NO_INDEXES
        self._server_selected_suite: int | None = None
        self._certificate_fallback = False

    # --- client -------------------------------------------------------------

    def _ibe_start_client(self, settings: HandshakeSettings, server_name: str | None, checker: Any) -> None:
        """A client may fall back to a certificate handshake only with a ``checker`` to authenticate the server."""
        if offered_scheme(settings) is not None and not (settings.ibe_identity or server_name):
            raise ValueError("an IBE-PSK handshake needs settings.ibe_identity or serverName")
        self._certificate_fallback = checker is not None

    def _ibe_offer_psk(self, settings: HandshakeSettings, session: Any, server_name: str | None) -> None:
        """Offer a fresh IBE-PSK through this connection's pskConfigs copy."""
        self._reset_handshake_state()
        scheme = offered_scheme(settings)
        if scheme is not None and settings.maxVersion >= TLS_1_3:
            base = settings.ibe_identity or server_name
            assert base is not None  # _ibe_start_client refused a handshake without either
            identity = client_identity(base, settings.ibe_epoch)
            offer = make_offer(settings.ibe_public_params, identity, settings.ibe_lattice_public_params, scheme)
            if offer.marker == IbeScheme.HYBRID:  # as TiigerTLS's POST_QUANTUM client: X25519MLKEM768 alone
                settings.eccCurves, settings.keyShares, settings.dhGroups = ["x25519mlkem768"], ["x25519mlkem768"], []
            settings.pskConfigs = [offer.psk_config(), *settings.pskConfigs]
            self._ibe_offer = offer
            self._ibe_binder_context = (settings, session)

    def _ibe_on_send(self, msg: Any) -> None:
        """Mark the client's IBE identity; note which PSK the server chose."""
        if isinstance(msg, ClientHello) and self._ibe_binder_context is not None:
            self._mark_ibe_identity(msg)
        elif isinstance(msg, ServerHello) and not self._client:
            self._note_server_choice(msg)

    def _mark_ibe_identity(self, client_hello: ClientHello) -> None:
        # tlslite computed the binders with age 0; set TiigerTLS's marker and recompute them, on every
        # ClientHello we send (after a HelloRetryRequest, other parts may have changed the message too).
        assert self._ibe_offer is not None and self._ibe_binder_context is not None
        settings, session = self._ibe_binder_context
        if settings.ibe_lean_client_hello and not self._certificate_fallback:
            # The one key share: X25519MLKEM768 (if offered) with a post-quantum PSK, so that 1-RTT is as well.
            pq = self._ibe_offer.marker in POST_QUANTUM_SCHEMES
            preferred = GroupName.x25519mlkem768 if pq else GroupName.x25519
            trim_to_ibe_psk_only(client_hello, offered_psk_hashes(settings, session), preferred)
        extension = client_hello.getExtension(ExtensionType.pre_shared_key)
        for identity in extension.identities:
            if identity.identity == self._ibe_offer.ciphertext:
                identity.obfuscated_ticket_age = self._ibe_offer.marker
        self._handshake_helpers.update_binders(
            client_hello,
            self._handshake_hash,
            settings.pskConfigs,
            session.tickets if session else None,
            session.resumptionMasterSecret if session else None,
        )

    def _ibe_check_server_choice(self, settings: HandshakeSettings, client_hello: Any, server_hello: Any) -> None:
        self._server_selected_suite = server_hello.cipher_suite
        if server_hello.getExtension(ExtensionType.pre_shared_key) is None:
            self.handshake_mode = HandshakeMode.CERTIFICATE  # even when the check refuses it
        mode, identity, key_exchange = check_server_choice(
            settings, client_hello, server_hello, self._ibe_offer, self._certificate_fallback
        )
        self.handshake_mode, self.ibe_identity, self.psk_key_exchange = mode, identity, key_exchange

    # --- server -------------------------------------------------------------

    def _ibe_prepare_server(
        self, settings: HandshakeSettings, client_hello: Any, cipher_suite: int, has_certificate: bool
    ) -> Any:
        """Before tlslite's PSK lookup: open at most one IBE identity; offer tlslite no PSK in a key exchange mode
        it must not use (patches/0013); refuse a certificate handshake the ClientHello cannot have (patches/0014).
        Returns the ClientHello as tlslite should see it."""
        self._reset_handshake_state()
        offers_psk = client_hello.getExtension(ExtensionType.pre_shared_key) is not None
        if offers_psk and not psk_mode_allowed(client_hello, settings.psk_modes):
            client_hello = without_psk_offer(client_hello)
        self._external_psk_indexes = external_indexes(settings, client_hello)
        if settings.ibe_keyring is not None:
            self._server_open_ibe_identity(settings, settings.ibe_keyring, client_hello, cipher_suite, has_certificate)
        if has_certificate:
            self._check_certificate_fallback(settings, client_hello, cipher_suite)
        return client_hello

    def _server_open_ibe_identity(
        self, settings: Any, keyring: IbeKeyring, client_hello: Any, cipher_suite: int, has_certificate: bool
    ) -> None:
        """Add the IBE-PSK to this connection's pskConfigs, or raise the alert that ends the handshake."""
        psks = client_hello.getExtension(ExtensionType.pre_shared_key)
        if psks is None:
            if not has_certificate:
                raise AlertHandshakeFailure("this server needs a PSK")
            return
        suite_hash = _suite_hash(cipher_suite)
        index = first_ibe_identity(psks.identities, keyring.schemes) if suite_hash == IBE_PSK_HASH else None
        # tlslite takes the first ticket or external PSK usable in this suite: if one comes before the
        # IBE-PSK, or there is no usable IBE-PSK (slice [:None]: all of them), no pairing is spent.
        if self._some_identity_resolves(settings, psks.identities[:index], suite_hash):
            return
        if index is not None:
            self._open_ibe_identity(settings, keyring, client_hello, index, has_certificate)
        elif not has_certificate:
            raise AlertUnknownPskIdentity("no usable IBE-PSK identity")

    def _open_ibe_identity(
        self, settings: Any, keyring: IbeKeyring, client_hello: Any, index: int, has_certificate: bool
    ) -> None:
        psks = client_hello.getExtension(ExtensionType.pre_shared_key)
        offered = psks.identities[index]
        ciphertext = offered.identity
        server_name = bytes(client_hello.server_name).decode("ascii", "replace") or None
        scheme = ibe_scheme_of(offered)
        assert scheme is not None  # first_ibe_identity found it by its marker
        try:
            identity, psk = keyring.open(server_name, ciphertext, scheme)
        except IbeDecapsulationError:
            # RFC 8446 §4.2.11: an unusable PSK falls back to a full handshake if possible.
            if not has_certificate:
                raise AlertDecryptError("IBE-PSK identity does not open") from None
            return
        # tlslite selects this PSK (no usable one comes before it) and verifies its binder, once; a wrong one
        # gets decrypt_error through binder_alert (RFC 8446 §4.2.11).
        settings.pskConfigs = type(settings.pskConfigs)([(ciphertext, psk, IBE_PSK_HASH), *settings.pskConfigs])
        self._ibe_opened = OpenedIbePsk(identity, index, bytes(ciphertext), psk)

    def _check_certificate_fallback(self, settings: Any, client_hello: Any, cipher_suite: int) -> None:
        """Raise the alert for a ClientHello that lacks what a certificate handshake needs, if no PSK spares it one."""
        if self._ibe_opened is not None:
            return
        try:
            check_certificate_handshake_possible(client_hello)
        except TlsAlert:
            # Only such rare ClientHellos get here, so a ticket is seldom decrypted twice (here, then by tlslite).
            psks = client_hello.getExtension(ExtensionType.pre_shared_key)
            if psks is None or not self._some_identity_resolves(settings, psks.identities, _suite_hash(cipher_suite)):
                raise

    def _some_identity_resolves(self, settings: Any, identities: Any, suite_hash: str) -> bool:
        """Whether tlslite itself can use one of ``identities`` in a suite with ``suite_hash``: an external PSK or
        a ticket it decrypts, of that hash (tlslite skips the others)."""
        return any(self._known_psk_hash(settings, ident) == suite_hash for ident in identities)

    def _known_psk_hash(self, settings: Any, identity: Any) -> str | None:
        for config in settings.pskConfigs:
            if config[0] == identity.identity:
                return _config_hash(config)
        match, _ticket = self._tryDecrypt(settings, identity)
        return match[2] if match else None

    def _note_server_choice(self, server_hello: ServerHello) -> None:
        selected = server_hello.getExtension(ExtensionType.pre_shared_key)
        if selected is None:
            self.handshake_mode = HandshakeMode.CERTIFICATE
            return
        opened = self._ibe_opened
        self.handshake_mode, self.ibe_identity, self.psk_key_exchange = _psk_mode(
            server_hello.getExtension(ExtensionType.key_share) is not None,
            opened.identity if opened is not None and selected.selected == opened.index else None,
            selected.selected in self._external_psk_indexes,
        )

    def _ibe_after_handshake(self) -> None:
        """The key schedule has used the IBE-PSK: zero it, and let go of it, its ciphertext and the settings it was
        offered with (the handshake's outcome stays in ``handshake_mode`` and ``ibe_identity``)."""
        for secret in (self._ibe_offer, self._ibe_opened):
            if secret is not None:
                secret.psk[:] = bytes(len(secret.psk))  # tlslite's pskConfigs copy holds the same bytearray
        self._ibe_offer = None
        self._ibe_binder_context = None
        self._ibe_opened = None
        self._external_psk_indexes = _NO_INDEXES

    def _reset_handshake_state(self) -> None:
        self.handshake_mode = None
        self.ibe_identity = None
        self.psk_key_exchange = None
        self._ibe_offer = None
        self._ibe_binder_context = None
        self._ibe_opened = None
        self._external_psk_indexes = _NO_INDEXES


def binder_alert(description: int, reason: object) -> int:
    """A ticket's or external PSK's binder that does not verify is decrypt_error (RFC 8446 §6.2), where
    tlslite's _serverTLS13Handshake says illegal_parameter (patches/0012)."""
    if description == AlertDescription.illegal_parameter and reason == _TLSLITE_BAD_BINDER:
        decrypt_error: int = AlertDescription.decrypt_error
        return decrypt_error
    return description

"""``ibepsk.TLSConnection``: tlslite-ng's connection plus IBE-PSK handshakes.

tlslite-ng has no identity-to-secret callback and hard-codes an external
PSK's ``obfuscated_ticket_age`` to 0, so the IBE-PSK is wired in through a few
small overrides of tlslite-ng internals. Each names the method it hooks; the
upstream change that would make them unnecessary is in ``patches/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from typing import Any

from tlslite.constants import AlertDescription, CipherSuite, ExtensionType
from tlslite.errors import TLSIllegalParameterException
from tlslite.handshakehelpers import HandshakeHelpers
from tlslite.messages import ClientHello, ServerHello
from tlslite.tlsconnection import TLSConnection as _TlsliteConnection

from ..ibe import IbeDecapsulationError
from .accel import AccelerationMixin
from .early_data import EarlyDataMixin
from .pha import PostHandshakeAuthMixin
from .psk import (
    IBE_PSK_HASH,
    IbeKeyring,
    IbePskOffer,
    OpenedIbePsk,
    certificate_handshake_problem,
    client_identity,
    empty_psk_entry,
    first_ibe_identity,
    make_offer,
    psk_mode_allowed,
    trim_to_ibe_psk_only,
    without_psk_offer,
)
from .versions import TLS_1_3

#: The message of the exception tlslite-ng's ``HandshakeHelpers.verify_binder`` raises for a wrong binder.
_TLSLITE_BAD_BINDER = "Binder does not verify"


def _with_alpn_list(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """tlslite's TLS 1.3 server crashes when a client offers ALPN and the server has none (patches/0001)."""
    srv_alpns_position = 4  # (privateKey, serverCertChain, version, scheme, srv_alpns, ...)
    if args[srv_alpns_position] is not None:
        return args
    return (*args[:srv_alpns_position], [], *args[srv_alpns_position + 1 :])


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


class IbePskConnection(_TlsliteConnection):  # type: ignore[misc]
    """The IBE-PSK layer of :class:`TLSConnection`."""

    def __init__(self, sock: Any) -> None:
        super().__init__(sock)
        self.handshake_mode: HandshakeMode | None = None
        self.ibe_identity: str | None = None
        self.psk_key_exchange: str | None = None
        self._ibe_offer: IbePskOffer | None = None
        self._ibe_binder_context: tuple[Any, Any] | None = None
        self._ibe_opened: OpenedIbePsk | None = None
        self._external_psk_indexes: frozenset[int] = frozenset()
        self._server_selected_suite: int | None = None
        self._certificate_fallback = False

    # --- client -------------------------------------------------------------

    def handshakeClientCert(  # noqa: PLR0917 - tlslite-ng's signature, positional arguments included
        self,
        certChain: Any = None,
        privateKey: Any = None,
        session: Any = None,
        settings: Any = None,
        checker: Any = None,
        nextProtos: Any = None,
        reqTack: bool = True,
        serverName: str | None = None,
        async_: bool = False,
        alpn: Any = None,
    ) -> Any:
        """Hooks tlslite's handshakeClientCert to note whether a ``checker`` could authenticate the server by
        certificate: only then may an IBE-PSK client fall back to a certificate handshake."""
        if getattr(settings, "ibe_public_params", None) is not None and not (
            getattr(settings, "ibe_identity", None) or serverName
        ):
            raise ValueError("an IBE-PSK handshake needs settings.ibe_identity or serverName")
        self._certificate_fallback = checker is not None
        return super().handshakeClientCert(
            certChain, privateKey, session, settings, checker, nextProtos, reqTack, serverName, async_, alpn
        )

    def _clientSendClientHello(self, settings: Any, session: Any, *args: Any) -> Iterator[Any]:
        """Hooks tlslite's ClientHello builder: offer a fresh IBE-PSK through this connection's pskConfigs copy."""
        self._reset_handshake_state()
        if session is not None and session.tickets:
            # tlslite offers the first ticket: make it the newest, since only a ticket issued after
            # post-handshake authentication lets the server remember the client.
            session.tickets.sort(key=lambda ticket: ticket.time, reverse=True)
        public = getattr(settings, "ibe_public_params", None)
        if public is not None and settings.maxVersion >= TLS_1_3:
            server_name = args[4]  # (srpUsername, srpParams, certParams, anonParams, serverName, ...)
            identity = client_identity(settings.ibe_identity or server_name, settings.ibe_epoch)
            offer = make_offer(public, identity)
            settings.pskConfigs = [offer.psk_config(), *settings.pskConfigs]
            self._ibe_offer = offer
            self._ibe_binder_context = (settings, session)
        return super()._clientSendClientHello(settings, session, *args)  # type: ignore[no-any-return]

    def _sendMsg(self, msg: Any, randomizeFirstBlock: bool = True, update_hashes: bool = True) -> Iterator[Any]:
        """Hooks tlslite's message sender, the last stop before the wire.

        Marks the client's IBE identity; notes which PSK the server chose.
        """
        if isinstance(msg, ClientHello) and self._ibe_binder_context is not None:
            self._mark_ibe_identity(msg)
        elif isinstance(msg, ServerHello) and not self._client:
            self._note_server_choice(msg)
        return super()._sendMsg(msg, randomizeFirstBlock, update_hashes)  # type: ignore[no-any-return]

    def _getMsg(self, expectedType: Any, secondaryType: Any = None, constructorType: Any = None) -> Iterator[Any]:
        """Hooks tlslite's message reader: the server sends decode_error for an empty PSK identity or binder,
        where tlslite's own check raises AttributeError (patches/0010). It runs before tlslite's other
        pre_shared_key checks, so such a hello gets decode_error even if it breaks those too."""
        for result in super()._getMsg(expectedType, secondaryType, constructorType):
            if isinstance(result, ClientHello) and not self._client:
                problem = empty_psk_entry(result)
                if problem is not None:
                    yield from self._sendError(AlertDescription.decode_error, problem)
            yield result

    def _sendError(self, alertDescription: int, errorStr: object = None) -> Iterator[Any]:
        """Hooks tlslite's fatal-alert sender: a ticket's or external PSK's binder that does not verify is
        decrypt_error (RFC 8446 §6.2), where tlslite's _serverTLS13Handshake says illegal_parameter (patches/0012)."""
        if alertDescription == AlertDescription.illegal_parameter and errorStr == _TLSLITE_BAD_BINDER:
            alertDescription = AlertDescription.decrypt_error
        return super()._sendError(alertDescription, errorStr)  # type: ignore[no-any-return]

    def _mark_ibe_identity(self, client_hello: ClientHello) -> None:
        # tlslite computed the binders with age 0; set TiigerTLS's marker and recompute them, on every
        # ClientHello we send (after a HelloRetryRequest, other layers may have changed the message too).
        assert self._ibe_offer is not None and self._ibe_binder_context is not None
        settings, session = self._ibe_binder_context
        if settings.ibe_lean_client_hello and not self._certificate_fallback:
            trim_to_ibe_psk_only(client_hello, offered_psk_hashes(settings, session))
        extension = client_hello.getExtension(ExtensionType.pre_shared_key)
        for identity in extension.identities:
            if identity.identity == self._ibe_offer.ciphertext:
                identity.obfuscated_ticket_age = 1
        HandshakeHelpers.update_binders(
            client_hello,
            self._handshake_hash,
            settings.pskConfigs,
            session.tickets if session else None,
            session.resumptionMasterSecret if session else None,
        )

    def _clientTLS13Handshake(
        self,
        settings: Any,
        session: Any,
        clientHello: Any,
        *args: Any,
    ) -> Iterator[Any]:
        """Hooks the start of tlslite's TLS 1.3 client key schedule, where the server's PSK choice is first known,
        because tlslite checks neither the selected index nor the key exchange mode, nor our fallback policy."""
        server_hello = args[-1]
        problem = self._client_check_server_choice(settings, clientHello, server_hello)
        if problem is not None:
            description, message = problem
            yield from self._sendError(description, message)
        yield from super()._clientTLS13Handshake(settings, session, clientHello, *args)

    def _client_check_server_choice(
        self, settings: Any, client_hello: Any, server_hello: Any
    ) -> tuple[int, str] | None:
        self._server_selected_suite = server_hello.cipher_suite
        selected = server_hello.getExtension(ExtensionType.pre_shared_key)
        has_key_share = server_hello.getExtension(ExtensionType.key_share) is not None
        if selected is None:
            self.handshake_mode = HandshakeMode.CERTIFICATE
            if self._ibe_offer is not None and not self._certificate_fallback:
                return (
                    AlertDescription.handshake_failure,
                    f"server did not accept the IBE-PSK for {self._ibe_offer.identity!r} and no certificate "
                    "checker was given to authenticate it otherwise",
                )
            return None
        offered = client_hello.getExtension(ExtensionType.pre_shared_key).identities
        if selected.selected >= len(offered):
            return AlertDescription.illegal_parameter, "server selected a PSK identity that was not offered"
        if not has_key_share and "psk_ke" not in settings.psk_modes:
            return AlertDescription.illegal_parameter, "server chose psk_ke, which this client did not offer"
        chosen = offered[selected.selected].identity
        offer = self._ibe_offer
        ibe_identity = offer.identity if offer is not None and chosen == offer.ciphertext else None
        self._note_psk_choice(has_key_share, ibe_identity, bytes(chosen) in _external_identities(settings))
        return None

    def _note_psk_choice(self, has_key_share: bool, ibe_identity: str | None, external: bool) -> None:
        """What a selected PSK says about the handshake, on either side."""
        self.psk_key_exchange = "psk_dhe_ke" if has_key_share else "psk_ke"
        if ibe_identity is not None:
            self.handshake_mode, self.ibe_identity = HandshakeMode.IBE_PSK, ibe_identity
        elif external:
            self.handshake_mode = HandshakeMode.EXTERNAL_PSK
        else:
            self.handshake_mode = HandshakeMode.RESUMPTION

    # --- server -------------------------------------------------------------

    def _server_select_certificate(self, settings: Any, client_hello: Any, cipher_suites: Any, *args: Any) -> Any:
        """Hooks tlslite's suite choice: with an IBE-PSK on offer prefer SHA-256 suites, as tlslite does for its own
        PSKs — unless the client also offers one of those, whose hash tlslite then prefers itself."""
        psks = client_hello.getExtension(ExtensionType.pre_shared_key)
        if (
            getattr(settings, "ibe_keyring", None)
            and psks
            and first_ibe_identity(psks.identities) is not None
            and not self._external_indexes(settings, client_hello)
        ):
            sha256_suites = CipherSuite.filter_for_prfs(cipher_suites, [IBE_PSK_HASH])
            if any(suite in client_hello.cipher_suites for suite in sha256_suites):
                cipher_suites = sha256_suites
        return super()._server_select_certificate(settings, client_hello, cipher_suites, *args)

    def _serverTLS13Handshake(
        self,
        settings: Any,
        clientHello: Any,
        cipherSuite: int,
        *args: Any,
    ) -> Iterator[Any]:
        """Hooks tlslite's TLS 1.3 server handshake before its PSK lookup: open at most one IBE identity; offer
        tlslite no PSK in a key exchange mode it must not use (patches/0013); refuse a certificate handshake the
        ClientHello cannot have (patches/0014)."""
        self._reset_handshake_state()
        offers_psk = clientHello.getExtension(ExtensionType.pre_shared_key) is not None
        if offers_psk and not psk_mode_allowed(clientHello, settings.psk_modes):
            clientHello = without_psk_offer(clientHello)
        self._external_psk_indexes = self._external_indexes(settings, clientHello)
        keyring: IbeKeyring | None = getattr(settings, "ibe_keyring", None)
        has_certificate = args[1] is not None  # (privateKey, serverCertChain, ...)
        problem = None
        if keyring is not None:
            problem = self._server_open_ibe_identity(settings, keyring, clientHello, cipherSuite, has_certificate)
        if problem is None and has_certificate:
            problem = self._certificate_fallback_problem(settings, clientHello, cipherSuite)
        if problem is not None:
            yield from self._sendError(*problem)
        yield from super()._serverTLS13Handshake(settings, clientHello, cipherSuite, *_with_alpn_list(args))

    def _server_open_ibe_identity(
        self, settings: Any, keyring: IbeKeyring, client_hello: Any, cipher_suite: int, has_certificate: bool
    ) -> tuple[int, str] | None:
        """Add the IBE-PSK to this connection's pskConfigs, or say which alert ends the handshake."""
        psks = client_hello.getExtension(ExtensionType.pre_shared_key)
        if psks is None:
            return None if has_certificate else (AlertDescription.handshake_failure, "this server needs a PSK")
        suite_hash = _suite_hash(cipher_suite)
        index = first_ibe_identity(psks.identities) if suite_hash == IBE_PSK_HASH else None
        # tlslite takes the first ticket or external PSK usable in this suite: if one comes before the
        # IBE-PSK, or there is no usable IBE-PSK (slice [:None]: all of them), no pairing is spent.
        if self._some_identity_resolves(settings, psks.identities[:index], suite_hash):
            return None
        if index is not None:
            return self._open_ibe_identity(settings, keyring, client_hello, index, has_certificate)
        return None if has_certificate else (AlertDescription.unknown_psk_identity, "no usable IBE-PSK identity")

    def _open_ibe_identity(
        self, settings: Any, keyring: IbeKeyring, client_hello: Any, index: int, has_certificate: bool
    ) -> tuple[int, str] | None:
        psks = client_hello.getExtension(ExtensionType.pre_shared_key)
        ciphertext = psks.identities[index].identity
        server_name = bytes(client_hello.server_name).decode("ascii", "replace") or None
        try:
            identity, psk = keyring.open(server_name, ciphertext)
        except IbeDecapsulationError:
            # RFC 8446 §4.2.11: an unusable PSK falls back to a full handshake if possible.
            return None if has_certificate else (AlertDescription.decrypt_error, "IBE-PSK identity does not open")
        try:
            HandshakeHelpers.verify_binder(
                client_hello, self._pre_client_hello_handshake_hash, index, psk, IBE_PSK_HASH, True
            )
        except TLSIllegalParameterException:
            return AlertDescription.decrypt_error, "IBE-PSK binder does not verify"  # RFC 8446 §4.2.11
        settings.pskConfigs = type(settings.pskConfigs)([(ciphertext, psk, IBE_PSK_HASH), *settings.pskConfigs])
        self._ibe_opened = OpenedIbePsk(identity, index, bytes(ciphertext), psk)
        return None

    def _certificate_fallback_problem(
        self, settings: Any, client_hello: Any, cipher_suite: int
    ) -> tuple[int, str] | None:
        """The alert for a ClientHello that lacks what a certificate handshake needs, if no PSK spares it one."""
        problem = certificate_handshake_problem(client_hello)
        if problem is None or self._ibe_opened is not None:
            return None
        # Only such rare ClientHellos get here, so a ticket is seldom decrypted twice (here, then by tlslite).
        psks = client_hello.getExtension(ExtensionType.pre_shared_key)
        if psks is not None and self._some_identity_resolves(settings, psks.identities, _suite_hash(cipher_suite)):
            return None
        return problem

    @staticmethod
    def _external_indexes(settings: Any, client_hello: Any) -> frozenset[int]:
        psks = client_hello.getExtension(ExtensionType.pre_shared_key)
        external = _external_identities(settings)
        return frozenset(
            i for i, ident in enumerate(psks.identities if psks else ()) if bytes(ident.identity) in external
        )

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
        self._note_psk_choice(
            server_hello.getExtension(ExtensionType.key_share) is not None,
            opened.identity if opened is not None and selected.selected == opened.index else None,
            selected.selected in self._external_psk_indexes,
        )

    def _reset_handshake_state(self) -> None:
        self.handshake_mode = None
        self.ibe_identity = None
        self.psk_key_exchange = None
        self._ibe_offer = None
        self._ibe_binder_context = None
        self._ibe_opened = None
        self._external_psk_indexes = frozenset()


class TLSConnection(PostHandshakeAuthMixin, AccelerationMixin, EarlyDataMixin, IbePskConnection):
    """A tlslite-ng ``TLSConnection`` that speaks IBE-PSK (see :class:`ibepsk.HandshakeSettings`).

    After a handshake, ``handshake_mode`` says how the server was
    authenticated, ``ibe_identity`` which identity an IBE-PSK proved, and
    ``psk_key_exchange`` whether (EC)DHE was mixed in; ``early_data_status``
    what became of 0-RTT data (and, on a server, ``early_data`` holds it);
    ``client_auth`` who the client proved to be with a certificate after the
    handshake (:mod:`ibepsk.tls.pha`).
    Records, key exchange and signatures run on ``cryptography`` (:mod:`ibepsk.tls.accel`).
    """

"""Exceptions of post-handshake client authentication, shared by the connection and the chain validator."""

from __future__ import annotations

from tlslite.constants import AlertDescription
from tlslite.errors import TLSAuthenticationError, TLSError


class PostHandshakeAuthError(TLSError):  # type: ignore[misc]
    """Post-handshake authentication cannot be done on this connection (not offered, not configured, closed)."""


class ClientCertificateError(TLSAuthenticationError):  # type: ignore[misc]
    """A client's certificate chain does not validate; ``alert`` is what the server tells the client."""

    def __init__(self, alert: int, reason: str) -> None:
        super().__init__(reason)
        self.alert = alert
        self.reason = reason

    def __str__(self) -> str:
        return f"{AlertDescription.toRepr(self.alert)}: {self.reason}"

"""tlslite-ng subclasses that add IBE-PSK handshakes (the connection's hooks live in :mod:`.seam`)."""

from .certs import ClientCertProfile, TrustAnchors
from .connection import HandshakeMode
from .errors import ClientCertificateError, PostHandshakeAuthError
from .pha import ClientAuthentication, ClientAuthMethod, requesting_client_auth, requiring_client_auth
from .psk import IbeKeyring, IbePskOffer, IbeScheme
from .seam import TLSConnection
from .settings import HandshakeSettings
from .signer import KeySigner, SignatureScheme, Signer

__all__ = [
    "ClientAuthMethod",
    "ClientAuthentication",
    "ClientCertProfile",
    "ClientCertificateError",
    "HandshakeMode",
    "HandshakeSettings",
    "IbeKeyring",
    "IbePskOffer",
    "IbeScheme",
    "KeySigner",
    "PostHandshakeAuthError",
    "SignatureScheme",
    "Signer",
    "TLSConnection",
    "TrustAnchors",
    "requesting_client_auth",
    "requiring_client_auth",
]

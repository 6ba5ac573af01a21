"""tlslite-ng subclasses that add IBE-PSK handshakes."""

from .connection import HandshakeMode, TLSConnection
from .psk import IbeKeyring, IbePskOffer, IbeScheme
from .settings import HandshakeSettings

__all__ = ["HandshakeMode", "HandshakeSettings", "IbeKeyring", "IbePskOffer", "IbeScheme", "TLSConnection"]

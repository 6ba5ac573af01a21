"""ibepsk: identity-based PSKs and post-handshake client authentication for TLS 1.3 on tlslite-ng.

``ibepsk.HandshakeSettings`` and ``ibepsk.TLSConnection`` are drop-in
replacements for tlslite-ng's classes of the same names.
"""

from .tls import HandshakeMode, HandshakeSettings, IbeKeyring, TLSConnection

__all__ = ["HandshakeMode", "HandshakeSettings", "IbeKeyring", "TLSConnection"]

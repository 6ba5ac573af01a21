"""ibepsk: identity-based PSKs and post-handshake client authentication for TLS 1.3 on tlslite-ng.

``ibepsk.HandshakeSettings`` and ``ibepsk.TLSConnection`` are drop-in
replacements for tlslite-ng's classes of the same names.
"""

from .tls import (
    ClientAuthentication,
    HandshakeMode,
    HandshakeSettings,
    IbeKeyring,
    KeySigner,
    Signer,
    TLSConnection,
    TrustAnchors,
)
from .tls.accel import accelerate_tlslite, restore_tlslite

__all__ = [
    "ClientAuthentication",
    "HandshakeMode",
    "HandshakeSettings",
    "IbeKeyring",
    "KeySigner",
    "Signer",
    "TLSConnection",
    "TrustAnchors",
    "accelerate_tlslite",
    "restore_tlslite",
]

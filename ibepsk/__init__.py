"""ibepsk: identity-based PSKs and post-handshake client authentication for TLS 1.3 on tlslite-ng.

``ibepsk.HandshakeSettings`` and ``ibepsk.TLSConnection`` are drop-in
replacements for tlslite-ng's classes of the same names.

The names below are imported on first use: ``import ibepsk.ibe`` or
``import ibepsk.keys`` does not load tlslite-ng.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

#: Each public name and the module that defines it.
_LAZY = {
    "ClientAuthentication": ".tls",
    "HandshakeMode": ".tls",
    "HandshakeSettings": ".tls",
    "IbeKeyring": ".tls",
    "KeySigner": ".tls",
    "Signer": ".tls",
    "TLSConnection": ".tls",
    "TrustAnchors": ".tls",
    "accelerate_tlslite": ".tls.accel",
    "restore_tlslite": ".tls.accel",
}

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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ibepsk' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])

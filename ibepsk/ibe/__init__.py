"""Boneh–Franklin identity-based KEM on BLS12-381, wire-compatible with TiigerTLS.

Pure functions over bytes: no I/O, no global state beyond the loaded backend.
"""

from .backend import PairingBackend, available_backends, get_backend
from .errors import BackendUnavailableError, IbeDecapsulationError, IbeError, PointDecodeError
from .kem import (
    CIPHERTEXT_BYTES,
    PSK_BYTES,
    Decapsulator,
    Encapsulation,
    Encapsulator,
    decapsulate,
    encapsulate,
    identity_bytes,
)

__all__ = [
    "CIPHERTEXT_BYTES",
    "PSK_BYTES",
    "BackendUnavailableError",
    "Decapsulator",
    "Encapsulation",
    "Encapsulator",
    "IbeDecapsulationError",
    "IbeError",
    "PairingBackend",
    "PointDecodeError",
    "available_backends",
    "decapsulate",
    "encapsulate",
    "get_backend",
    "identity_bytes",
]

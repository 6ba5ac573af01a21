"""Exceptions raised by the IBE layer.

Every failure that depends on attacker-controlled input is one of these, so a
TLS server can catch a single type and answer with the RFC's alert.
"""


class IbeError(Exception):
    """Base class of every error the IBE layer raises on purpose."""


class PointDecodeError(IbeError, ValueError):
    """A byte string is not the encoding of a valid point of the prime-order group."""


class IbeDecapsulationError(IbeError):
    """A ciphertext does not decapsulate under the given identity key.

    The message names the failed stage for local diagnosis; never send it to a
    peer: telling a peer which check failed would hand it an oracle.
    """


class BackendUnavailableError(IbeError):
    """The requested pairing backend is not installed."""

"""A threshold Trusted Authority: no single machine holds the master secret.

The master secret s is shared with Shamir's scheme over the group order r among N TA nodes; node i holds s_i and
issues partial keys D_i = s_i·H1(ID); any T of them combine (Lagrange, in G2) into D = s·H1(ID), an ordinary
identity key. Nothing changes for clients and servers: Ppub = s·P1 is an ordinary TA public key.

- :func:`deal` makes the sharing (the dealer sees s for the moment it takes, then drops it);
- :meth:`ibepsk.keys.KeyShare.extract` issues a partial key on one node;
- :func:`combine` checks every partial against its share's public key and combines them;
- :func:`refresh` re-randomizes every share without changing Ppub (proactive security).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from .ibe import get_backend
from .ibe.backend import GROUP_ORDER, PairingBackend
from .ibe.encoding import decode_g2, encode_g1, encode_g2
from .ibe.shamir import combine_g2, split_secret, zero_sharing
from .keys import (
    IdentityKey,
    KeyFileError,
    KeyMismatchError,
    KeyShare,
    PartialIdentityKey,
    Sharing,
    TAPublicParams,
    ThresholdPublicParams,
    check_same_sharing,
    check_same_ta,
)

__all__ = [
    "BadPartialKeyError",
    "KeyShare",
    "MixedPartialKeysError",
    "NotEnoughPartialKeysError",
    "PartialIdentityKey",
    "Sharing",
    "ThresholdError",
    "ThresholdPublicParams",
    "ThresholdTA",
    "combine",
    "deal",
    "refresh",
]


class ThresholdError(KeyFileError):
    """Partial keys or shares that cannot be used together."""


class NotEnoughPartialKeysError(ThresholdError):
    """Fewer partial keys than the threshold."""


class MixedPartialKeysError(ThresholdError):
    """Partial keys (or shares) for different identities, TAs or refresh generations, or a share index twice."""


class BadPartialKeyError(ThresholdError):
    """One or more partial keys fail their check e(D_i, P1) = e(H1(ID), P_i); ``bad`` names each."""

    def __init__(self, bad: Sequence[str], identity: str) -> None:
        self.bad = tuple(bad)
        super().__init__(
            f"partial key check failed for {', '.join(self.bad)}: not issued for {identity!r} by that share "
            "of this TA (tampered, or from another TA's share); nothing combined"
        )


@dataclass(frozen=True)
class ThresholdTA:
    """A threshold TA's public parameters and all N shares, as the dealer (or a refresh) hands them out."""

    public: ThresholdPublicParams
    shares: tuple[KeyShare, ...] = field(repr=False)


def deal(threshold: int, shares: int, backend: PairingBackend | None = None) -> ThresholdTA:
    """A fresh master secret s, split into ``shares`` shares of which any ``threshold`` issue keys.

    s lives only in this function's frame: no object returned holds it, and Python's int is not wiped, so
    run the dealer on a machine you trust for the moment it takes (see docs/threshold-ta.md).
    """
    backend = backend or get_backend()
    sharing = Sharing(threshold, shares)
    master = 1 + secrets.randbelow(GROUP_ORDER - 1)
    public = TAPublicParams(encode_g1(backend, backend.g1_mul(backend.g1_generator(), master)))
    return _from_share_secrets(public, sharing, split_secret(master, threshold, shares), backend)


def refresh(ta: ThresholdTA, backend: PairingBackend | None = None) -> ThresholdTA:
    """Add a fresh sharing of zero to every share: same s and Ppub, new s_i and P_i, next refresh generation.

    Shares of the old generation learn nothing about the new ones, so shares leaked before a refresh are useless
    after it. Every share must be given (a share left out could never be used again) and match the public keys.
    """
    backend = backend or get_backend()
    sharing = ta.public.sharing
    if sorted(share.index for share in ta.shares) != list(range(1, sharing.shares + 1)):
        raise MixedPartialKeysError(f"a refresh needs each of the {sharing.shares} shares exactly once")
    for share in ta.shares:
        _mismatch_as(MixedPartialKeysError, ta.public.verify_share, share)
    delta = zero_sharing(sharing.threshold, sharing.shares)
    by_index = sorted(ta.shares, key=lambda share: share.index)
    new_secrets = [(share.secret + d) % GROUP_ORDER for share, d in zip(by_index, delta, strict=True)]
    next_sharing = replace(sharing, generation=sharing.generation + 1)
    return _from_share_secrets(ta.public.public, next_sharing, new_secrets, backend)


def _from_share_secrets(
    public: TAPublicParams, sharing: Sharing, share_secrets: Sequence[int], backend: PairingBackend
) -> ThresholdTA:
    if 0 in share_secrets:  # probability N/r: a share of 0 would have no public key to encode
        raise ThresholdError("a share came out as 0; run again")
    shares = tuple(
        KeyShare.from_secret(index, secret, sharing, public.fingerprint, backend)
        for index, secret in enumerate(share_secrets, start=1)
    )
    return ThresholdTA(ThresholdPublicParams(public, sharing, tuple(share.share_key for share in shares)), shares)


def combine(
    public: ThresholdPublicParams,
    partials: Sequence[PartialIdentityKey],
    *,
    names: Sequence[str] | None = None,
    backend: PairingBackend | None = None,
) -> IdentityKey:
    """Check every partial key, then combine them into the identity key D = Σ λ_i·D_i, checked against Ppub.

    ``names`` (file names, say) label the partials in errors; by default "partial key N". Raises
    MixedPartialKeysError, NotEnoughPartialKeysError or BadPartialKeyError (naming every bad one).
    """
    backend = backend or get_backend()
    labels = [f"{name} (index {p.index})" for name, p in zip(_names(names, partials), partials, strict=True)]
    _check_consistent(public, partials, labels)
    bad = [label for label, partial in zip(labels, partials, strict=True) if not _verifies(public, partial, backend)]
    if bad:
        raise BadPartialKeyError(bad, partials[0].identity)
    points = {partial.index: decode_g2(backend, partial.key) for partial in partials}
    key = IdentityKey(partials[0].identity, encode_g2(backend, combine_g2(backend, points)), public.fingerprint)
    key.verify(public.public, backend)  # cannot fail once every partial verified; a bug must not write a bad key
    return key


def _names(names: Sequence[str] | None, partials: Sequence[PartialIdentityKey]) -> Sequence[str]:
    if names is None:
        return [f"partial key {number}" for number in range(1, len(partials) + 1)]
    if len(names) != len(partials):
        raise ValueError("one name per partial key")
    return names


def _check_consistent(public: ThresholdPublicParams, partials: Sequence[PartialIdentityKey], labels: list[str]) -> None:
    seen: dict[int, str] = {}
    for label, partial in zip(labels, partials, strict=True):
        _mismatch_as(MixedPartialKeysError, check_same_ta, label, partial.ta_fingerprint, public.public)
        _mismatch_as(MixedPartialKeysError, check_same_sharing, label, partial.sharing, public.sharing)
        if partial.identity != partials[0].identity:
            raise MixedPartialKeysError(
                f"partial keys for different identities: {labels[0]} is for {partials[0].identity!r}, "
                f"{label} for {partial.identity!r}"
            )
        if partial.index in seen:
            raise MixedPartialKeysError(f"{label} repeats the share index of {seen[partial.index]}")
        seen[partial.index] = label
    if len(partials) < public.sharing.threshold:
        raise NotEnoughPartialKeysError(
            f"{len(partials)} partial key(s) given; this TA needs {public.sharing.threshold} "
            f"(any {public.sharing.threshold} of its {public.sharing.shares} shares)"
        )


def _verifies(public: ThresholdPublicParams, partial: PartialIdentityKey, backend: PairingBackend) -> bool:
    try:
        public.verify_partial(partial, backend)
    except KeyFileError:
        return False
    return True


def _mismatch_as(error: type[ThresholdError], check: Callable[..., None], *args: object) -> None:
    """Run a keys-level check, re-raising its KeyMismatchError as the threshold error ``error``."""
    try:
        check(*args)
    except KeyMismatchError as exc:
        raise error(str(exc)) from None

"""TA and identity keys, a threshold TA's shares and partial keys, and their self-describing PEM-style files.

A file looks like::

    -----BEGIN IBEPSK IDENTITY KEY-----
    Format: 1
    Scheme: BF-BLS12381-TIIGER
    Identity: localhost
    TA-Fingerprint: 3f1c...

    <base64 of the MIRACL encoding>
    -----END IBEPSK IDENTITY KEY-----

Headers say what the body is; loaders check every header and the body, so a
truncated, corrupted or mismatched file fails with a :class:`KeyFileError`
naming the problem rather than later, inside a handshake. Files are ASCII: an
identity that is not goes in an ``Identity-UTF8-Base64`` header instead.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import hashlib
import hmac
import os
import secrets
import tempfile
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .ibe import get_backend
from .ibe.backend import GROUP_ORDER, PairingBackend
from .ibe.encoding import G1_BYTES, decode_g1, decode_g2, encode_g1, encode_g2
from .ibe.errors import BackendUnavailableError, PointDecodeError
from .ibe.hashes import h1
from .ibe.kem import identity_bytes
from .ibe.lattice import SECRET_KEY_BOUND, stored_ta_public_key, ta_public_key_from_stored
from .ibe.lattice_keys import (
    GRAM_SCHMIDT_BOUND,
    KEY_NORM_BOUND,
    Trapdoor,
    TrapdoorError,
    key_squared_norm,
    short_part,
)
from .ibe.shamir import check_threshold, on_one_polynomial_g1

SCHEME = "BF-BLS12381-TIIGER"
#: DLP identity-based encryption over NTRU lattices in TiigerTLS's ring: Z_q[x]/(x^1024 + 1), q = 0x8020001.
LATTICE_SCHEME = "LATTICE-NTRU1024-TIIGER"
_SCHEMES = (SCHEME, LATTICE_SCHEME)
FORMAT_VERSION = "1"
SECRET_FILE_MODE = 0o600
PUBLIC_FILE_MODE = 0o644

LABEL_PUBLIC = "IBEPSK TA PUBLIC PARAMETERS"
LABEL_MASTER = "IBEPSK TA MASTER SECRET"
LABEL_IDENTITY = "IBEPSK IDENTITY KEY"
LABEL_THRESHOLD_PUBLIC = "IBEPSK THRESHOLD TA PUBLIC PARAMETERS"
LABEL_SHARE = "IBEPSK TA KEY SHARE"
LABEL_PARTIAL = "IBEPSK PARTIAL IDENTITY KEY"

_MASTER_BYTES = 32
_BASE64_LINE = 64

#: Longest identity, in UTF-8 bytes: a host name (253) bound to an hour epoch fits many times over.
MAX_IDENTITY_BYTES = 1024
#: Characters that would break a log or header line: control characters C0, DEL and C1, and line separators.
_CONTROL_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})


class KeyFileError(Exception):
    """A key file is missing, malformed, of the wrong kind, or does not match."""


class KeyMismatchError(KeyFileError):
    """An identity key was not issued by this TA, or not for this identity."""


def _fingerprint(public_key: bytes) -> str:
    return hashlib.sha256(public_key).hexdigest()


def validate_identity(identity: str) -> str:
    """The one rule for identities, wherever they come from: any Unicode text (it is encapsulated as UTF-8, as
    TiigerTLS encapsulates the bytes of a name), one line without control characters, no surrounding spaces,
    at most :data:`MAX_IDENTITY_BYTES`. Raises ValueError saying which part of the rule is broken."""
    if not identity:
        raise ValueError("the identity is empty")
    categories = {unicodedata.category(char) for char in identity}
    if categories & _CONTROL_CATEGORIES:
        raise ValueError(f"identity {identity!r} contains a control character")
    if "Cs" in categories:  # lone surrogates: what Python makes of bytes on a command line that are not UTF-8
        raise ValueError(f"identity {identity!r} is not valid UTF-8")
    if identity != identity.strip():
        raise ValueError(f"identity {identity!r} starts or ends with a space")
    if len(identity.encode("utf-8")) > MAX_IDENTITY_BYTES:
        raise ValueError(f"identity is longer than {MAX_IDENTITY_BYTES} bytes (UTF-8)")
    return identity


@dataclass(frozen=True)
class TAPublicParams:
    """The TA's public key Ppub in G1 (97-byte MIRACL encoding)."""

    public_key: bytes

    @classmethod
    def from_bytes(cls, data: bytes, backend: PairingBackend | None = None) -> TAPublicParams:
        decode_g1(backend or get_backend(), data)
        return cls(bytes(data))

    @property
    def fingerprint(self) -> str:
        return _fingerprint(self.public_key)

    def to_pem(self) -> str:
        return _armor(LABEL_PUBLIC, {"TA-Fingerprint": self.fingerprint}, self.public_key)

    def describe(self) -> str:
        return f"TA public parameters ({SCHEME})\n  fingerprint: {self.fingerprint}"


@dataclass(frozen=True)
class TAMasterKey:
    """The TA master secret s and the matching public parameters Ppub = s·P1."""

    secret: int = field(repr=False)
    public: TAPublicParams

    @classmethod
    def generate(cls, backend: PairingBackend | None = None) -> TAMasterKey:
        secret = 1 + secrets.randbelow(GROUP_ORDER - 1)
        return cls._from_secret(secret, backend or get_backend())

    @classmethod
    def _from_secret(cls, secret: int, backend: PairingBackend) -> TAMasterKey:
        public = encode_g1(backend, backend.g1_mul(backend.g1_generator(), secret))
        return cls(secret, TAPublicParams(public))

    def extract(self, identity: str, backend: PairingBackend | None = None) -> IdentityKey:
        """D_ID = s·H1(ID)."""
        backend = backend or get_backend()
        point = backend.g2_mul(h1(backend, identity_bytes(validate_identity(identity))), self.secret)
        return IdentityKey(identity, encode_g2(backend, point), self.public.fingerprint)

    def to_pem(self) -> str:
        body = self.secret.to_bytes(_MASTER_BYTES, "big")
        return _armor(LABEL_MASTER, {"TA-Fingerprint": self.public.fingerprint}, body)

    def describe(self) -> str:
        return f"TA master secret ({SCHEME}; secret not shown)\n  fingerprint: {self.public.fingerprint}"


@dataclass(frozen=True)
class IdentityKey:
    """D_ID in G2 (193-byte MIRACL encoding) for one identity string."""

    identity: str
    key: bytes = field(repr=False)
    ta_fingerprint: str

    @classmethod
    def from_bytes(
        cls, identity: str, data: bytes, public: TAPublicParams, backend: PairingBackend | None = None
    ) -> IdentityKey:
        key = cls(validate_identity(identity), bytes(data), public.fingerprint)
        key.verify(public, backend)
        return key

    def verify(self, public: TAPublicParams, backend: PairingBackend | None = None) -> None:
        """Check e(D, P1) == e(H1(identity), Ppub): issued by this TA for this identity."""
        backend = backend or get_backend()
        if self.ta_fingerprint != public.fingerprint:
            raise KeyMismatchError(
                f"identity key for {self.identity!r} was issued by TA {self.ta_fingerprint[:16]}…, "
                f"not by TA {public.fingerprint[:16]}…"
            )
        if not _issued_for(backend, self.key, self.identity, public.public_key):
            raise KeyMismatchError(f"identity key does not belong to identity {self.identity!r} under this TA")

    def to_pem(self) -> str:
        return _armor(
            LABEL_IDENTITY, {**_identity_header(self.identity), "TA-Fingerprint": self.ta_fingerprint}, self.key
        )

    def describe(self) -> str:
        return (
            f"identity key ({SCHEME}; key not shown)\n  identity: {self.identity}\n"
            f"  TA fingerprint: {self.ta_fingerprint}"
        )


def _issued_for(backend: PairingBackend, key: bytes, identity: str, public_key: bytes) -> bool:
    """e(D, P1) == e(H1(identity), P): D = x·H1(identity) for the x of P = x·P1 (a TA's, or one share's)."""
    d = _decode(decode_g2, backend, key, "identity key")
    p = _decode(decode_g1, backend, public_key, "TA public key")
    lhs = backend.pairing(d, backend.g1_generator())
    return bool(backend.gt_equal(lhs, backend.pairing(h1(backend, identity_bytes(identity)), p)))


# --- a threshold TA: shares of the master secret, partial keys -----------------


@dataclass(frozen=True)
class Sharing:
    """Which sharing of a threshold TA's master secret a file belongs to: any T of N shares issue keys; each
    proactive refresh starts a new generation, whose shares never combine with an older one's."""

    threshold: int
    shares: int
    generation: int = 0

    def __post_init__(self) -> None:
        check_threshold(self.threshold, self.shares)
        if self.generation < 0:
            raise ValueError(f"refresh generation {self.generation} is negative")

    def check_index(self, index: int) -> int:
        if not 0 < index <= self.shares:
            raise ValueError(f"share index {index} is not one of 1..{self.shares}")
        return index

    def headers(self) -> dict[str, str]:
        return {"Threshold": str(self.threshold), "Shares": str(self.shares), "Generation": str(self.generation)}

    def __str__(self) -> str:
        return f"{self.threshold} of {self.shares}, refresh generation {self.generation}"


def check_same_sharing(what: str, sharing: Sharing, expected: Sharing) -> None:
    """Raise KeyMismatchError when ``what`` belongs to another sharing; a refresh generation is named as such."""
    if sharing == expected:
        return
    if (sharing.threshold, sharing.shares) == (expected.threshold, expected.shares):
        raise KeyMismatchError(
            f"shares from different refresh generations: {what} is of generation {sharing.generation}, "
            f"the TA's public parameters of generation {expected.generation}"
        )
    raise KeyMismatchError(
        f"{what} is from a {sharing.threshold}-of-{sharing.shares} sharing, "
        f"the TA's public parameters from a {expected.threshold}-of-{expected.shares} one"
    )


def check_same_ta(what: str, ta_fingerprint: str, public: TAPublicParams) -> None:
    """Raise KeyMismatchError when ``what`` (a share or partial key) names another TA than ``public``."""
    if ta_fingerprint != public.fingerprint:
        raise KeyMismatchError(f"{what} is from TA {ta_fingerprint[:16]}…, not from TA {public.fingerprint[:16]}…")


@dataclass(frozen=True)
class ThresholdPublicParams:
    """A threshold TA's public parameters: Ppub = s·P1, which clients use as any TA's, and the per-share
    public keys P_i = s_i·P1 (97-byte G1 encodings, index i at position i − 1) that check each partial key."""

    public: TAPublicParams
    sharing: Sharing
    share_keys: tuple[bytes, ...]

    @property
    def fingerprint(self) -> str:
        return self.public.fingerprint

    def share_key(self, index: int) -> bytes:
        return self.share_keys[self.sharing.check_index(index) - 1]

    def verify_share(self, share: KeyShare) -> None:
        """The share belongs to this TA and sharing, and s_i·P1 is the published P_i."""
        what = f"share {share.index}"
        check_same_ta(what, share.ta_fingerprint, self.public)
        check_same_sharing(what, share.sharing, self.sharing)
        if share.share_key != self.share_key(share.index):
            raise KeyMismatchError(f"{what} does not match its public key in the TA's public parameters")

    def verify_partial(self, partial: PartialIdentityKey, backend: PairingBackend | None = None) -> None:
        """Check e(D_i, P1) == e(H1(identity), P_i): issued by share i of this TA for this identity."""
        what = f"partial key from share {partial.index}"
        check_same_ta(what, partial.ta_fingerprint, self.public)
        check_same_sharing(what, partial.sharing, self.sharing)
        if not _issued_for(backend or get_backend(), partial.key, partial.identity, self.share_key(partial.index)):
            raise KeyMismatchError(
                f"{what} was not issued for identity {partial.identity!r} by share {partial.index} of this TA"
            )

    def to_pem(self) -> str:
        headers = {**self.sharing.headers(), "TA-Fingerprint": self.fingerprint}
        return _armor(LABEL_THRESHOLD_PUBLIC, headers, self.public.public_key + b"".join(self.share_keys))

    def describe(self) -> str:
        return (
            f"threshold TA public parameters ({SCHEME}; any {self.sharing.threshold} of "
            f"{self.sharing.shares} shares issue keys)\n  fingerprint: {self.fingerprint}\n"
            f"  refresh generation: {self.sharing.generation}"
        )


@dataclass(frozen=True)
class KeyShare:
    """Share s_i = f(i) of a threshold TA's master secret, with its public key P_i = s_i·P1."""

    index: int
    secret: int = field(repr=False)
    share_key: bytes
    sharing: Sharing
    ta_fingerprint: str

    @classmethod
    def from_secret(
        cls, index: int, secret: int, sharing: Sharing, ta_fingerprint: str, backend: PairingBackend | None = None
    ) -> KeyShare:
        backend = backend or get_backend()
        if not 0 < secret < GROUP_ORDER:
            raise ValueError("a key share must be in 1..r-1")
        share_key = encode_g1(backend, backend.g1_mul(backend.g1_generator(), secret))
        return cls(sharing.check_index(index), secret, share_key, sharing, ta_fingerprint)

    def extract(self, identity: str, backend: PairingBackend | None = None) -> PartialIdentityKey:
        """D_i = s_i·H1(ID): one share's part of the identity key."""
        backend = backend or get_backend()
        point = backend.g2_mul(h1(backend, identity_bytes(validate_identity(identity))), self.secret)
        return PartialIdentityKey(identity, self.index, encode_g2(backend, point), self.sharing, self.ta_fingerprint)

    def to_pem(self) -> str:
        headers = {
            "Share-Index": str(self.index),
            **self.sharing.headers(),
            "TA-Fingerprint": self.ta_fingerprint,
            "Share-Fingerprint": _fingerprint(self.share_key),
        }
        return _armor(LABEL_SHARE, headers, self.secret.to_bytes(_MASTER_BYTES, "big"))

    def describe(self) -> str:
        return (
            f"TA key share {self.index} of {self.sharing.shares} ({SCHEME}; secret not shown)\n"
            f"  any {self.sharing.threshold} shares issue keys; refresh generation: {self.sharing.generation}\n"
            f"  TA fingerprint: {self.ta_fingerprint}"
        )


@dataclass(frozen=True)
class PartialIdentityKey:
    """D_i = s_i·H1(ID) in G2 (193-byte MIRACL encoding): share i's part of the identity key for ``identity``."""

    identity: str
    index: int
    key: bytes = field(repr=False)
    sharing: Sharing
    ta_fingerprint: str

    def to_pem(self) -> str:
        headers = {
            **_identity_header(self.identity),
            "Share-Index": str(self.index),
            **self.sharing.headers(),
            "TA-Fingerprint": self.ta_fingerprint,
        }
        return _armor(LABEL_PARTIAL, headers, self.key)

    def describe(self) -> str:
        return (
            f"partial identity key from share {self.index} of {self.sharing.shares} ({SCHEME}; key not shown)\n"
            f"  identity: {self.identity}\n"
            f"  any {self.sharing.threshold} partial keys combine; refresh generation: {self.sharing.generation}\n"
            f"  TA fingerprint: {self.ta_fingerprint}"
        )


# --- a lattice TA: NTRU trapdoor, public key h, identity keys s --------------------

_LATTICE_PUBLIC_BYTES = 4  # per entry of TiigerTLS's stored constant H: big-endian, < q < 2^28
_LATTICE_MASTER_BYTES = 4  # per coefficient of f, g, F, G: signed big-endian
_LATTICE_KEY_BYTES = 2  # per coefficient of s: signed big-endian int16, as TiigerTLS stores it
_LATTICE_COEFFICIENTS = 1024


def _signed_body(values: Sequence[int], width: int) -> bytes:
    return b"".join(x.to_bytes(width, "big", signed=True) for x in values)


def _signed_values(body: bytes, width: int, count: int, what: str) -> list[int]:
    if len(body) != width * count:
        raise KeyFileError(f"{what} has the wrong length (corrupted file?)")
    return [int.from_bytes(body[i : i + width], "big", signed=True) for i in range(0, len(body), width)]


def _lattice_ntru() -> Any:
    """:mod:`ibepsk.ibe.ntru`, which generates trapdoors and extracts keys with numpy (checking keys does not)."""
    try:
        from .ibe import ntru
    except ImportError as exc:
        raise BackendUnavailableError(f"a lattice TA needs numpy: pip install 'ibepsk[pq]' ({exc})") from None
    return ntru


@dataclass(frozen=True)
class LatticeTAPublicParams:
    """A lattice TA's public key h, held as TiigerTLS stores it: H[i] = 2^32·h(ψ^(2·brv10(i)+1)) mod q (spec §2)."""

    stored: tuple[int, ...]

    @classmethod
    def from_stored(cls, values: Sequence[int]) -> LatticeTAPublicParams:
        """From TiigerTLS's constant H (1024 integers in [0, q)); ValueError otherwise."""
        ta_public_key_from_stored(values)  # checks the count and range
        return cls(tuple(values))

    @classmethod
    def from_polynomial(cls, h: Sequence[int]) -> LatticeTAPublicParams:
        return cls(tuple(stored_ta_public_key(h)))

    @property
    def h(self) -> list[int]:
        """The polynomial h, coefficients in [0, q): what the lattice KEMs take as the TA public key."""
        return ta_public_key_from_stored(self.stored)

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the stored constant, 4 bytes big-endian per entry (the vectors' ``stored_sha256_be4``)."""
        return _fingerprint(self._body())

    def _body(self) -> bytes:
        return b"".join(x.to_bytes(_LATTICE_PUBLIC_BYTES, "big") for x in self.stored)

    def to_pem(self) -> str:
        return _armor(LABEL_PUBLIC, {"TA-Fingerprint": self.fingerprint}, self._body(), LATTICE_SCHEME)

    def describe(self) -> str:
        return (
            f"lattice TA public parameters ({LATTICE_SCHEME}; h in TiigerTLS's stored NTT form)\n"
            f"  fingerprint: {self.fingerprint}"
        )


@dataclass(frozen=True)
class LatticeTAMasterKey:
    """A lattice TA's master secret, the NTRU trapdoor (f, g, F, G), and its public key h = g·f^−1 mod q."""

    trapdoor: Trapdoor = field(repr=False)
    public: LatticeTAPublicParams

    @classmethod
    def generate(cls) -> LatticeTAMasterKey:
        return cls.from_trapdoor(_lattice_ntru().generate_trapdoor())

    @classmethod
    def from_trapdoor(cls, trapdoor: Trapdoor) -> LatticeTAMasterKey:
        """Check the trapdoor (f·G − g·F = q exactly, f invertible mod q, (f, g) short) and derive h."""
        trapdoor.check()
        if key_squared_norm(trapdoor.f, trapdoor.g) > GRAM_SCHMIDT_BOUND**2:
            raise TrapdoorError("(f, g) is too long for a lattice TA")
        return cls(trapdoor, LatticeTAPublicParams.from_polynomial(trapdoor.public_key()))

    def extract(self, identity: str) -> LatticeIdentityKey:
        """s with s1 + s·h = H_ID(identity), (s1, s) a Gaussian sample, within spec §7's bound and int16."""
        sampler = _lattice_ntru().KeySampler(self.trapdoor)
        s = sampler.extract(identity_bytes(validate_identity(identity)))
        key = LatticeIdentityKey(identity, tuple(s), self.public.fingerprint)
        key.verify(self.public)
        return key

    def to_pem(self) -> str:
        polys = (self.trapdoor.f, self.trapdoor.g, self.trapdoor.big_f, self.trapdoor.big_g)
        body = b"".join(_signed_body(poly, _LATTICE_MASTER_BYTES) for poly in polys)
        return _armor(LABEL_MASTER, {"TA-Fingerprint": self.public.fingerprint}, body, LATTICE_SCHEME)

    def describe(self) -> str:
        return (
            f"lattice TA master secret ({LATTICE_SCHEME}: NTRU trapdoor f, g, F, G; secret not shown)\n"
            f"  fingerprint: {self.public.fingerprint}"
        )


@dataclass(frozen=True)
class LatticeIdentityKey:
    """s, the identity key of ``identity`` under a lattice TA: 1024 int16 coefficients, s1 = H_ID(ID) − s·h short."""

    identity: str
    key: tuple[int, ...] = field(repr=False)
    ta_fingerprint: str

    @classmethod
    def from_coefficients(
        cls, identity: str, coefficients: Sequence[int], public: LatticeTAPublicParams
    ) -> LatticeIdentityKey:
        key = cls(validate_identity(identity), _checked_lattice_key(list(coefficients)), public.fingerprint)
        key.verify(public)
        return key

    def verify(self, public: LatticeTAPublicParams) -> None:
        """Check that s1 = H_ID(identity) − s·h mod q is short: ‖(s1, s)‖₂ within spec §7's bound."""
        if self.ta_fingerprint != public.fingerprint:
            raise KeyMismatchError(
                f"identity key for {self.identity!r} was issued by TA {self.ta_fingerprint[:16]}…, "
                f"not by TA {public.fingerprint[:16]}…"
            )
        s1 = short_part(identity_bytes(self.identity), self.key, public.h)
        if key_squared_norm(s1, self.key) > KEY_NORM_BOUND**2:
            raise KeyMismatchError(
                f"identity key does not belong to identity {self.identity!r} under this TA "
                f"(‖(s1, s)‖ is above {KEY_NORM_BOUND:,})"
            )

    def to_pem(self) -> str:
        headers = {**_identity_header(self.identity), "TA-Fingerprint": self.ta_fingerprint}
        return _armor(LABEL_IDENTITY, headers, _signed_body(self.key, _LATTICE_KEY_BYTES), LATTICE_SCHEME)

    def describe(self) -> str:
        return (
            f"lattice identity key ({LATTICE_SCHEME}; key not shown)\n  identity: {self.identity}\n"
            f"  TA fingerprint: {self.ta_fingerprint}"
        )


def _checked_lattice_key(values: list[int]) -> tuple[int, ...]:
    """1024 coefficients in [−32767, 32767] (TiigerTLS's int16) with ‖s‖₂ within spec §7's bound."""
    if len(values) != _LATTICE_COEFFICIENTS or not all(-SECRET_KEY_BOUND <= x <= SECRET_KEY_BOUND for x in values):
        raise KeyFileError(f"a lattice identity key is {_LATTICE_COEFFICIENTS} integers in ±{SECRET_KEY_BOUND}")
    if key_squared_norm(values, []) > KEY_NORM_BOUND**2:
        raise KeyFileError(f"lattice identity key is too long (‖s‖ above {KEY_NORM_BOUND:,})")
    return tuple(values)


KeyObject = (
    TAPublicParams
    | TAMasterKey
    | IdentityKey
    | ThresholdPublicParams
    | KeyShare
    | PartialIdentityKey
    | LatticeTAPublicParams
    | LatticeTAMasterKey
    | LatticeIdentityKey
)
_K = TypeVar(
    "_K",
    TAPublicParams,
    TAMasterKey,
    IdentityKey,
    ThresholdPublicParams,
    KeyShare,
    PartialIdentityKey,
    LatticeTAPublicParams,
    LatticeTAMasterKey,
    LatticeIdentityKey,
)


def _decode(decoder: Callable[[PairingBackend, bytes], Any], backend: PairingBackend, data: bytes, what: str) -> Any:
    try:
        return decoder(backend, data)
    except PointDecodeError as exc:
        raise KeyFileError(f"{what} is not a valid point: {exc}") from exc


# --- the PEM-style armour ---------------------------------------------------


def _armor(label: str, headers: dict[str, str], body: bytes, scheme: str = SCHEME) -> str:
    lines = [f"-----BEGIN {label}-----", f"Format: {FORMAT_VERSION}", f"Scheme: {scheme}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append("")
    encoded = base64.b64encode(body).decode("ascii")
    lines += [encoded[i : i + _BASE64_LINE] for i in range(0, len(encoded), _BASE64_LINE)]
    lines.append(f"-----END {label}-----")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class _Armored:
    label: str
    headers: dict[str, str]
    body: bytes


def _unarmor(text: str) -> _Armored:
    lines = [line.rstrip("\r") for line in text.strip().splitlines()]
    if not lines or not lines[0].startswith("-----BEGIN ") or not lines[0].endswith("-----"):
        raise KeyFileError("not an ibepsk key file (no BEGIN line)")
    label = lines[0][len("-----BEGIN ") : -len("-----")]
    if len(lines) < 3 or lines[-1] != f"-----END {label}-----":
        raise KeyFileError(f"truncated file: no END line for {label}")
    inner = lines[1:-1]
    if "" not in inner:
        raise KeyFileError(f"{label}: no blank line between headers and body")
    blank = inner.index("")
    headers: dict[str, str] = {}
    for line in inner[:blank]:
        name, sep, value = line.partition(": ")
        if not sep:
            raise KeyFileError(f"malformed header line {line!r}")
        headers[name] = value
    try:
        body = base64.b64decode("".join(inner[blank + 1 :]), validate=True)
    except (binascii.Error, ValueError):
        raise KeyFileError(f"{label}: the body is not valid base64 (corrupted file?)") from None
    if headers.get("Format") != FORMAT_VERSION:
        raise KeyFileError(f"unsupported format version {headers.get('Format')!r} (expected {FORMAT_VERSION})")
    if headers.get("Scheme") not in _SCHEMES:
        raise KeyFileError(f"unsupported scheme {headers.get('Scheme')!r} (expected {' or '.join(_SCHEMES)})")
    return _Armored(label, headers, body)


def _header(armored: _Armored, name: str) -> str:
    try:
        return armored.headers[name]
    except KeyError:
        raise KeyFileError(f"{armored.label}: missing header {name!r}") from None


_IDENTITY = "Identity"
_IDENTITY_UTF8 = "Identity-UTF8-Base64"


def _identity_header(identity: str) -> dict[str, str]:
    """ASCII identities are written as they are (as every file before UTF-8 identities); others in base64."""
    if identity.isascii():
        return {_IDENTITY: identity}
    return {_IDENTITY_UTF8: base64.b64encode(identity.encode("utf-8")).decode("ascii")}


def _identity_from_headers(armored: _Armored) -> str:
    if _IDENTITY_UTF8 not in armored.headers:
        return _header(armored, _IDENTITY)
    if _IDENTITY in armored.headers:
        raise KeyFileError(f"{armored.label}: headers {_IDENTITY!r} and {_IDENTITY_UTF8!r} cannot go together")
    try:
        return base64.b64decode(armored.headers[_IDENTITY_UTF8], validate=True).decode("utf-8")
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        raise KeyFileError(f"header {_IDENTITY_UTF8!r} is not base64 of UTF-8 text (corrupted file?)") from None


def parse_key(text: str, backend: PairingBackend | None = None) -> KeyObject:  # noqa: PLR0911 - one return per kind
    """Parse and check any ibepsk key file's text."""
    backend = backend or get_backend()
    armored = _unarmor(text)
    if armored.headers["Scheme"] == LATTICE_SCHEME:
        return _parse_lattice(armored)
    if armored.label == LABEL_PUBLIC:
        return _parse_public(armored, backend)
    if armored.label == LABEL_MASTER:
        return _parse_master(armored, backend)
    if armored.label == LABEL_IDENTITY:
        return _parse_identity(armored, backend)
    if armored.label == LABEL_THRESHOLD_PUBLIC:
        return _parse_threshold_public(armored, backend)
    if armored.label == LABEL_SHARE:
        return _parse_share(armored, backend)
    if armored.label == LABEL_PARTIAL:
        return _parse_partial(armored, backend)
    raise KeyFileError(f"unknown key file type {armored.label!r}")


def _parse_public(armored: _Armored, backend: PairingBackend, body: bytes | None = None) -> TAPublicParams:
    body = armored.body if body is None else body
    _decode(decode_g1, backend, body, "TA public key")
    public = TAPublicParams(body)
    if public.fingerprint != _header(armored, "TA-Fingerprint"):
        raise KeyFileError("TA public key does not match its TA-Fingerprint header (corrupted file?)")
    return public


def _parse_master(armored: _Armored, backend: PairingBackend) -> TAMasterKey:
    secret = int.from_bytes(armored.body, "big")
    if len(armored.body) != _MASTER_BYTES or not 0 < secret < GROUP_ORDER:
        raise KeyFileError("TA master secret has the wrong length or range (corrupted file?)")
    master = TAMasterKey._from_secret(secret, backend)
    if master.public.fingerprint != _header(armored, "TA-Fingerprint"):
        raise KeyFileError("TA master secret does not match its TA-Fingerprint header (corrupted file?)")
    return master


def _parse_identity(armored: _Armored, backend: PairingBackend) -> IdentityKey:
    try:
        identity = validate_identity(_identity_from_headers(armored))
    except ValueError as exc:
        raise KeyFileError(str(exc)) from exc
    _decode(decode_g2, backend, armored.body, "identity key")
    return IdentityKey(identity, armored.body, _header(armored, "TA-Fingerprint"))


def _int_header(armored: _Armored, name: str) -> int:
    value = _header(armored, name)
    if not value.isdigit() or not value.isascii():
        raise KeyFileError(f"{armored.label}: header {name!r} is not a whole number (corrupted file?)")
    return int(value)


def _sharing_from_headers(armored: _Armored) -> Sharing:
    numbers = (_int_header(armored, name) for name in ("Threshold", "Shares", "Generation"))
    try:
        return Sharing(*numbers)
    except ValueError as exc:
        raise KeyFileError(f"{armored.label}: {exc} (corrupted file?)") from None


def _share_index(armored: _Armored, sharing: Sharing) -> int:
    try:
        return sharing.check_index(_int_header(armored, "Share-Index"))
    except ValueError as exc:
        raise KeyFileError(f"{armored.label}: {exc} (corrupted file?)") from None


def _parse_threshold_public(armored: _Armored, backend: PairingBackend) -> ThresholdPublicParams:
    sharing = _sharing_from_headers(armored)
    if len(armored.body) != G1_BYTES * (sharing.shares + 1):
        raise KeyFileError(f"{armored.label}: the body has the wrong length for {sharing.shares} shares")
    points = [armored.body[i : i + G1_BYTES] for i in range(0, len(armored.body), G1_BYTES)]
    public = _parse_public(armored, backend, points[0])
    decoded = {
        index: _decode(decode_g1, backend, point, f"public key of share {index}" if index else "TA public key")
        for index, point in enumerate(points)
    }
    # Ppub and every P_i on one polynomial of degree < T: a corrupted or substituted share public key is caught
    # here, not later as an honest node's partial key that fails its check.
    if not on_one_polynomial_g1(backend, decoded, sharing.threshold):
        raise KeyFileError("the share public keys and the TA public key do not fit one sharing (corrupted file?)")
    return ThresholdPublicParams(public, sharing, tuple(points[1:]))


def _parse_share(armored: _Armored, backend: PairingBackend) -> KeyShare:
    sharing = _sharing_from_headers(armored)
    secret = int.from_bytes(armored.body, "big")
    if len(armored.body) != _MASTER_BYTES or not 0 < secret < GROUP_ORDER:
        raise KeyFileError("TA key share has the wrong length or range (corrupted file?)")
    share = KeyShare.from_secret(
        _share_index(armored, sharing), secret, sharing, _header(armored, "TA-Fingerprint"), backend
    )
    if not hmac.compare_digest(_fingerprint(share.share_key), _header(armored, "Share-Fingerprint")):
        raise KeyFileError("TA key share does not match its Share-Fingerprint header (corrupted file?)")
    return share


def _parse_partial(armored: _Armored, backend: PairingBackend) -> PartialIdentityKey:
    sharing = _sharing_from_headers(armored)
    index = _share_index(armored, sharing)
    try:
        identity = validate_identity(_identity_from_headers(armored))
    except ValueError as exc:
        raise KeyFileError(str(exc)) from exc
    _decode(decode_g2, backend, armored.body, "partial identity key")
    return PartialIdentityKey(identity, index, armored.body, sharing, _header(armored, "TA-Fingerprint"))


def _parse_lattice(armored: _Armored) -> LatticeTAPublicParams | LatticeTAMasterKey | LatticeIdentityKey:
    if armored.label == LABEL_PUBLIC:
        return _parse_lattice_public(armored)
    if armored.label == LABEL_MASTER:
        return _parse_lattice_master(armored)
    if armored.label == LABEL_IDENTITY:
        return _parse_lattice_identity(armored)
    raise KeyFileError(f"no {armored.label!r} file exists for scheme {LATTICE_SCHEME}")


def _parse_lattice_public(armored: _Armored) -> LatticeTAPublicParams:
    body = armored.body
    if len(body) != _LATTICE_PUBLIC_BYTES * _LATTICE_COEFFICIENTS:
        raise KeyFileError("lattice TA public key has the wrong length (corrupted file?)")
    values = [int.from_bytes(body[i : i + _LATTICE_PUBLIC_BYTES], "big") for i in range(0, len(body), 4)]
    try:
        public = LatticeTAPublicParams.from_stored(values)
    except ValueError as exc:
        raise KeyFileError(f"lattice TA public key: {exc} (corrupted file?)") from None
    if public.fingerprint != _header(armored, "TA-Fingerprint"):
        raise KeyFileError("TA public key does not match its TA-Fingerprint header (corrupted file?)")
    return public


def _parse_lattice_master(armored: _Armored) -> LatticeTAMasterKey:
    count = 4 * _LATTICE_COEFFICIENTS
    values = _signed_values(armored.body, _LATTICE_MASTER_BYTES, count, "lattice TA master secret")
    f, g, big_f, big_g = (tuple(values[i : i + _LATTICE_COEFFICIENTS]) for i in range(0, count, _LATTICE_COEFFICIENTS))
    try:
        master = LatticeTAMasterKey.from_trapdoor(Trapdoor(f, g, big_f, big_g))
    except TrapdoorError as exc:
        raise KeyFileError(f"lattice TA master secret: {exc} (corrupted file?)") from None
    if master.public.fingerprint != _header(armored, "TA-Fingerprint"):
        raise KeyFileError("TA master secret does not match its TA-Fingerprint header (corrupted file?)")
    return master


def _parse_lattice_identity(armored: _Armored) -> LatticeIdentityKey:
    try:
        identity = validate_identity(_identity_from_headers(armored))
    except ValueError as exc:
        raise KeyFileError(str(exc)) from exc
    values = _signed_values(armored.body, _LATTICE_KEY_BYTES, _LATTICE_COEFFICIENTS, "lattice identity key")
    return LatticeIdentityKey(identity, _checked_lattice_key(values), _header(armored, "TA-Fingerprint"))


# --- files ------------------------------------------------------------------


def read_key_file(path: str | os.PathLike[str], backend: PairingBackend | None = None) -> KeyObject:
    path = Path(path)
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise KeyFileError(f"{path}: is a directory, not a key file") from None
    except UnicodeDecodeError:
        raise KeyFileError(f"{path}: not an ibepsk key file (they are ASCII text)") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read key file ({exc.strerror or exc})") from None
    try:
        return parse_key(text, backend)
    except KeyFileError as exc:
        raise KeyFileError(f"{path}: {exc}") from None


#: What each kind of key file holds, in words (error messages name files by content, not by Python class).
_KINDS: dict[type[KeyObject], str] = {
    TAPublicParams: "TA public parameters",
    TAMasterKey: "a TA master secret",
    IdentityKey: "an identity key",
    ThresholdPublicParams: "threshold TA public parameters",
    KeyShare: "a TA key share",
    PartialIdentityKey: "a partial identity key",
    LatticeTAPublicParams: "lattice TA public parameters",
    LatticeTAMasterKey: "a lattice TA master secret",
    LatticeIdentityKey: "a lattice identity key",
}


def _load_as(kind: type[_K], path: str | os.PathLike[str], backend: PairingBackend | None) -> _K:
    key = read_key_file(path, backend)
    if not isinstance(key, kind):
        raise KeyFileError(f"{path}: expected {_KINDS[kind]}, found {_KINDS[type(key)]}")
    return key


def load_public_params(path: str | os.PathLike[str], backend: PairingBackend | None = None) -> TAPublicParams:
    """A TA's public parameters; a threshold TA's file serves as well (clients need only its Ppub)."""
    key = read_key_file(path, backend)
    if isinstance(key, ThresholdPublicParams):
        return key.public
    if not isinstance(key, TAPublicParams):
        raise KeyFileError(f"{path}: expected {_KINDS[TAPublicParams]}, found {_KINDS[type(key)]}")
    return key


def load_threshold_public_params(
    path: str | os.PathLike[str], backend: PairingBackend | None = None
) -> ThresholdPublicParams:
    return _load_as(ThresholdPublicParams, path, backend)


def load_key_share(path: str | os.PathLike[str], backend: PairingBackend | None = None) -> KeyShare:
    return _load_as(KeyShare, path, backend)


def load_partial_key(path: str | os.PathLike[str], backend: PairingBackend | None = None) -> PartialIdentityKey:
    return _load_as(PartialIdentityKey, path, backend)


def load_master_key(path: str | os.PathLike[str], backend: PairingBackend | None = None) -> TAMasterKey:
    return _load_as(TAMasterKey, path, backend)


def load_identity_key(
    path: str | os.PathLike[str],
    public: TAPublicParams | None = None,
    backend: PairingBackend | None = None,
) -> IdentityKey:
    """Load an identity key; with ``public`` also prove it belongs to that TA."""
    key = _load_as(IdentityKey, path, backend)
    if public is not None:
        try:
            key.verify(public, backend)
        except KeyFileError as exc:
            raise KeyMismatchError(f"{path}: {exc}") from None
    return key


def load_ta_master(
    path: str | os.PathLike[str], backend: PairingBackend | None = None
) -> TAMasterKey | LatticeTAMasterKey:
    """A TA master secret of either scheme (what ``ibepsk ta extract --master`` takes)."""
    key = read_key_file(path, backend)
    if not isinstance(key, TAMasterKey | LatticeTAMasterKey):
        raise KeyFileError(f"{path}: expected {_KINDS[TAMasterKey]}, found {_KINDS[type(key)]}")
    return key


def load_lattice_public_params(path: str | os.PathLike[str]) -> LatticeTAPublicParams:
    return _load_as(LatticeTAPublicParams, path, None)


def load_lattice_identity_key(
    path: str | os.PathLike[str], public: LatticeTAPublicParams | None = None
) -> LatticeIdentityKey:
    """Load a lattice identity key; with ``public`` also prove it is short for its identity under that TA."""
    key = _load_as(LatticeIdentityKey, path, None)
    if public is not None:
        try:
            key.verify(public)
        except KeyFileError as exc:
            raise KeyMismatchError(f"{path}: {exc}") from None
    return key


_PUBLIC_KINDS = (TAPublicParams, ThresholdPublicParams, LatticeTAPublicParams)


def write_key_file(path: str | os.PathLike[str], key: KeyObject, *, force: bool = False) -> None:
    """Write atomically; secrets get mode 0600; never replace a file unless ``force``.

    The text goes to a private temporary file in the same directory first, so a
    crash or a full disk leaves any existing file untouched. An OSError names
    ``path``, never that temporary file.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a directory, not a key file", str(path))
    if not force and path.exists():
        raise FileExistsError(f"{path} already exists (use --force to overwrite)")
    try:
        _write_via_temporary_file(
            path, key.to_pem(), PUBLIC_FILE_MODE if isinstance(key, _PUBLIC_KINDS) else SECRET_FILE_MODE, force
        )
    except OSError as exc:
        exc.filename, exc.filename2 = str(path), None
        raise


def _write_via_temporary_file(path: Path, text: str, mode: int, force: bool) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp_name, mode)
        if force:
            os.replace(tmp_name, path)
        else:
            os.link(tmp_name, path)  # fails if the name appeared meanwhile: never clobbers
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)

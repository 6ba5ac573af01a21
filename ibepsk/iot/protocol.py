"""The reading/acknowledgement protocol between an IoT device and its gateway: newline-delimited JSON.

Device to gateway, one line per reading::

    {"device":"sensor-0001","queue":"3f2a9c1d7e6b5a40","seq":7,"at":1764262800.125,"value":{"t":21.5}}

Gateway to device: ``{"ack":[7,8]}`` once the readings are stored (duplicates are
acknowledged too), or ``{"error":"..."}`` before the gateway closes the connection.

``(device, queue, seq)`` names a reading for ever: ``queue`` is the random id of the
device's on-disk queue, so a device whose queue is wiped and starts again at seq 1
does not see its new readings taken for resends of old ones.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, TypeAlias

from cryptography import x509
from cryptography.x509.oid import NameOID

JsonValue: TypeAlias = "bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None"

#: The longest line either side accepts (a reading with its value, or an ack of many readings).
MAX_LINE_BYTES = 8192
#: Longest device name (a DNS name) and queue id.
MAX_DEVICE_NAME = 253
MAX_QUEUE_ID = 64
#: Sequence numbers are SQLite INTEGERs on both sides.
MAX_SEQ = 2**63 - 1
NEWLINE = b"\n"


class ProtocolError(ValueError):
    """A line that is not a well-formed message of this protocol."""


@dataclass(frozen=True)
class Reading:
    """One measurement: who took it, where it sits in the device's queue, when, and what it is."""

    device: str
    queue: str
    seq: int
    at: float
    value: JsonValue

    def encode(self) -> bytes:
        fields = {"device": self.device, "queue": self.queue, "seq": self.seq, "at": self.at, "value": self.value}
        return _encode_line(fields)

    @classmethod
    def decode(cls, line: bytes) -> Reading:
        fields = _decode_object(line)
        if set(fields) != {"device", "queue", "seq", "at", "value"}:
            raise ProtocolError("a reading has exactly the fields device, queue, seq, at and value")
        return cls(
            device=_bounded_text(fields["device"], "device", MAX_DEVICE_NAME),
            queue=_bounded_text(fields["queue"], "queue", MAX_QUEUE_ID),
            seq=_positive_int(fields["seq"], "seq"),
            at=_finite_number(fields["at"], "at"),
            value=fields["value"],
        )


@dataclass(frozen=True)
class Ack:
    """The gateway has stored these readings (by seq) durably."""

    seqs: tuple[int, ...]

    def encode(self) -> bytes:
        return _encode_line({"ack": list(self.seqs)})


@dataclass(frozen=True)
class GatewayError:
    """The gateway refuses to go on with this connection, and says why."""

    message: str

    def encode(self) -> bytes:
        return _encode_line({"error": self.message})


def decode_gateway_message(line: bytes) -> Ack | GatewayError:
    fields = _decode_object(line)
    if set(fields) == {"ack"} and isinstance(fields["ack"], list):
        return Ack(tuple(_positive_int(seq, "ack") for seq in fields["ack"]))
    if set(fields) == {"error"} and isinstance(fields["error"], str):
        return GatewayError(fields["error"])
    raise ProtocolError('expected {"ack": [seq, ...]} or {"error": message}')


def device_name(certificate: x509.Certificate) -> str:
    """A device's name: the common name of its certificate (the gateway's key for its readings)."""
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    name = names[0].value if names else None
    if not isinstance(name, str) or not 0 < len(name) <= MAX_DEVICE_NAME:
        raise ValueError(f"certificate {certificate.subject.rfc4514_string()!r} names no device (common name)")
    return name


def encode_value(value: JsonValue) -> str:
    """``value`` as compact JSON; ValueError for what JSON cannot carry (NaN, infinities, other types)."""
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except TypeError as exc:
        raise ValueError(f"a reading's value must be JSON: {exc}") from None


def decode_value(text: str) -> JsonValue:
    value: JsonValue = json.loads(text, parse_constant=_refuse_constant)
    return value


class LineBuffer:
    """Splits a byte stream into lines, refusing any longer than ``limit`` bytes."""

    def __init__(self, limit: int = MAX_LINE_BYTES) -> None:
        self._limit = limit
        self._partial = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """The lines ``data`` completes (without their newlines), in order."""
        self._partial += data
        *lines, rest = bytes(self._partial).split(NEWLINE)
        if len(rest) > self._limit or any(len(line) > self._limit for line in lines):
            raise ProtocolError(f"a line is longer than {self._limit} bytes")
        self._partial = bytearray(rest)
        return lines

    @property
    def pending(self) -> int:
        """Bytes of an unfinished line."""
        return len(self._partial)


def _encode_line(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, separators=(",", ":"), allow_nan=False).encode() + NEWLINE


def _decode_object(line: bytes) -> dict[str, Any]:
    try:
        fields = json.loads(line, parse_constant=_refuse_constant)
    except ProtocolError:
        raise
    except (ValueError, RecursionError) as exc:  # bad UTF-8 or JSON, an integer too long to convert, deep nesting
        raise ProtocolError(f"not a JSON line: {type(exc).__name__}") from None
    if not isinstance(fields, dict):
        raise ProtocolError("a message is a JSON object")
    return fields


def _refuse_constant(name: str) -> None:
    raise ProtocolError(f"{name} is not JSON")


def _bounded_text(value: object, name: str, limit: int) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        raise ProtocolError(f"{name} must be a string of 1 to {limit} characters")
    return value


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SEQ:
        raise ProtocolError(f"{name} must hold integers from 1 to 2^63-1")
    return value


def _finite_number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ProtocolError(f"{name} must be a finite number")
    return float(value)

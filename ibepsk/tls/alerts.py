"""Protocol decisions that refuse something raise a :class:`TlsAlert` naming the RFC 8446 alert to send.

The decisions (``psk.py``, ``early_data.py``, ``pha.py``...) take and return values and never touch a
socket; the seam (:mod:`ibepsk.tls.seam`) turns a raised alert into tlslite-ng's fatal ``_sendError``.
"""

from __future__ import annotations

from typing import ClassVar

from tlslite.constants import AlertDescription


class TlsAlert(Exception):
    """A fatal alert: ``description`` is its RFC 8446 code, the message its reason."""

    description: ClassVar[int]
    _by_description: ClassVar[dict[int, type[TlsAlert]]] = {}

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        TlsAlert._by_description[cls.description] = cls

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    @staticmethod
    def of(description: int, reason: str) -> TlsAlert:
        """The alert of that description (for values that carry a description, e.g. a chain validator's)."""
        return TlsAlert._by_description[description](reason)


class AlertUnexpectedMessage(TlsAlert):
    description = AlertDescription.unexpected_message


class AlertHandshakeFailure(TlsAlert):
    description = AlertDescription.handshake_failure


class AlertBadCertificate(TlsAlert):
    description = AlertDescription.bad_certificate


class AlertCertificateExpired(TlsAlert):
    description = AlertDescription.certificate_expired


class AlertIllegalParameter(TlsAlert):
    description = AlertDescription.illegal_parameter


class AlertUnknownCa(TlsAlert):
    description = AlertDescription.unknown_ca


class AlertDecodeError(TlsAlert):
    description = AlertDescription.decode_error


class AlertDecryptError(TlsAlert):
    description = AlertDescription.decrypt_error


class AlertInternalError(TlsAlert):
    description = AlertDescription.internal_error


class AlertMissingExtension(TlsAlert):
    description = AlertDescription.missing_extension


class AlertUnsupportedExtension(TlsAlert):
    description = AlertDescription.unsupported_extension


class AlertUnknownPskIdentity(TlsAlert):
    description = AlertDescription.unknown_psk_identity


class AlertCertificateRequired(TlsAlert):
    description = AlertDescription.certificate_required

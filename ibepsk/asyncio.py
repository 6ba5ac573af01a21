"""TLS 1.3 with IBE-PSKs on asyncio, shaped like the standard library's streams.

``open_connection`` and ``start_server`` work as :func:`asyncio.open_connection` and
:func:`asyncio.start_server` do, with ibepsk's ``HandshakeSettings`` instead of an
``ssl.SSLContext``; ``writer.get_extra_info("tls")`` is the :class:`ibepsk.TLSConnection`.
"""

from ibepsk.aio.streams import (
    DEFAULT_HANDSHAKE_TIMEOUT,
    open_connection,
    request_client_auth,
    start_server,
)

__all__ = ["DEFAULT_HANDSHAKE_TIMEOUT", "open_connection", "request_client_auth", "start_server"]

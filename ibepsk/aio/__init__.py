"""ibepsk on asyncio: TLS streams (:mod:`ibepsk.asyncio`) and the server behind ``ibepsk serve``."""

"""TLS protocol versions as tlslite-ng writes them: (major, minor) tuples."""

from __future__ import annotations

TLS_1_2 = (3, 3)
TLS_1_3 = (3, 4)

"""ibepsk: identity-based PSKs and post-handshake client authentication for TLS 1.3 on tlslite-ng."""

"""``cryptography``-backed objects that speak tlslite-ng's internal interfaces.

Each module implements one interface tlslite-ng already defines (AEAD
ciphers, raw (EC)DH key exchange, signing keys), so the objects can stand in
for tlslite-ng's pure-Python ones with the same bytes on the wire.
:mod:`ibepsk.tls.accel` decides where they are used.
"""

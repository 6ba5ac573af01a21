"""The throwaway PKI the tests use lives in the package (the demo and benchmarks need it too)."""

from ibepsk.pki import Issued, PrivateKey, issue, make_ca, new_key

__all__ = ["Issued", "PrivateKey", "issue", "make_ca", "new_key"]

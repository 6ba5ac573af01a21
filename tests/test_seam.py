"""The seam between ibepsk and tlslite-ng: every hooked method, its tlslite-ng signature, one override each.

A tlslite-ng release that renames, reorders or drops an argument a hook binds fails here, in one place:
compare its signatures with these, then adapt ibepsk/tls/seam.py (see docs/architecture.md).
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
import tlslite
from tlslite.tlsconnection import TLSConnection as TlsliteConnection

import ibepsk
from ibepsk.tls import seam

_SAME_IN_BOTH = {
    "__init__": "(self, sock)",
    "_getKEX": "(group, version)",
    "handshakeClientCert": "(self, certChain=None, privateKey=None, session=None, settings=None, checker=None, "
    "nextProtos=None, reqTack=True, serverName=None, async_=False, alpn=None)",
    "_handshakeClientAsync": "(self, srpParams=(), certParams=(), anonParams=(), session=None, settings=None, "
    "checker=None, nextProtos=None, serverName=None, reqTack=True, alpn=None)",
    "_clientSendClientHello": "(self, settings, session, srpUsername, srpParams, certParams, anonParams, serverName, "
    "nextProtos, reqTack, alpn)",
    "_sendMsg": "(self, msg, randomizeFirstBlock=True, update_hashes=True)",
    "_getMsg": "(self, expectedType, secondaryType=None, constructorType=None)",
    "_sendError": "(self, alertDescription, errorStr=None)",
    "_clientTLS13Handshake": "(self, settings, session, clientHello, clientCertChain, privateKey, serverHello)",
    "_changeWriteState": "(self)",
    "_queue_message": "(self, msg)",
    "_server_select_certificate": "(self, settings, client_hello, cipher_suites, cert_chain, private_key, version)",
    "readAsync": "(self, max=None, min=1)",
    "_handle_srv_pha": "(self, cert)",
    "_handle_pha": "(self, cert_request)",
    "_serverSendTickets": "(self, settings)",
    "_tryDecrypt": "(self, settings, identity=None, ticket=None)",
    "_derive_key_iv": "(nonce, user_key, settings)",
    "writeAsync": "(self, s)",
}
_SERVER_ASYNC = (
    "(self, verifierDB=None, certChain=None, privateKey=None, reqCert=False, sessionCache=None, settings=None, "
    "checker=None, reqCAs=None, tacks=None, activationFlags=0, nextProtos=None, anon=False, alpn=None, sni=None"
)
_SERVER_TLS13 = (
    "(self, settings, clientHello, cipherSuite, privateKey, serverCertChain, version, scheme, srv_alpns, reqCert"
)
_CREATE_CERT = (
    "(self, peer, request_msg, valid_compression_algos, cert_chain, cert_type, cert_context=b'', version=(3, 2)"
)
#: tlslite-ng's signature of every method the seam hooks, per supported release.
HOOKED = {
    "0.8.2": _SAME_IN_BOTH
    | {
        "handshakeServerAsync": _SERVER_ASYNC + ")",
        "_serverTLS13Handshake": _SERVER_TLS13 + ")",
        "_create_cert_msg": _CREATE_CERT + ")",
    },
    "0.9.0b2": _SAME_IN_BOTH
    | {
        "handshakeServerAsync": _SERVER_ASYNC + ", dc_key=None, del_cred=None)",
        "_serverTLS13Handshake": _SERVER_TLS13 + ", dc_key, del_cred)",
        "_create_cert_msg": _CREATE_CERT + ", ext=None)",
    },
}


def test_every_hooked_method_has_the_signature_the_seam_was_written_for() -> None:
    expected = HOOKED.get(tlslite.__version__)
    if expected is None:
        pytest.fail(f"tlslite-ng {tlslite.__version__} is not supported: check each hook against HOOKED")
    found = {name: str(inspect.signature(getattr(TlsliteConnection, name))) for name in seam.HOOKED_METHODS}
    assert found == expected


def test_each_tlslite_method_is_overridden_once_and_only_in_the_seam() -> None:
    overrides: dict[str, list[str]] = {}
    for cls in ibepsk.TLSConnection.__mro__:
        if cls.__module__.startswith("ibepsk"):
            for name in vars(cls):
                if name in dir(TlsliteConnection) and callable(getattr(TlsliteConnection, name)):
                    overrides.setdefault(name, []).append(cls.__qualname__)
    assert overrides == {name: ["TLSConnection"] for name in seam.HOOKED_METHODS}
    assert ibepsk.TLSConnection is seam.TLSConnection


def test_only_the_seam_imports_tlslite_tlsconnection() -> None:
    package = Path(ibepsk.__file__).parent
    importers = [
        path.relative_to(package).as_posix()
        for path in package.rglob("*.py")
        if re.search(r"^\s*(from tlslite\.tlsconnection import|import tlslite\.tlsconnection)", path.read_text(), re.M)
    ]
    assert importers == ["tls/seam.py"]

"""TLS for the listeners: the server context, and the certificate chain a client presented.

Client certificates work as in Vault, in one of three modes per listener:

``request`` (the default)
    Ask every client for a certificate and take whatever it presents, unchecked, or nothing (Go's
    ``tls.RequestClientCert``). Whether a certificate means anything is for the cert auth method
    to decide later, against its own trust anchors. Many clients present a certificate on every
    connection (hvac's test set-up presents a self-signed one), so checking it here would drop
    them.
``require``
    ``tls_require_and_verify_client_cert``: refuse the handshake unless the client presents a
    certificate that chains to ``tls_client_ca_file`` (the system's CAs when that is unset, as in
    Vault). Python's ordinary ``CERT_REQUIRED`` verification, nothing of ours.
``none``
    ``tls_disable_client_certs``: do not ask for a certificate.

Why ``request`` needs more than the ``ssl`` module: ``CERT_NONE`` does not ask for a certificate,
and ``CERT_OPTIONAL`` asks and then verifies what is presented against the context's CAs, failing
the handshake for any certificate it does not know. ``post_handshake_auth`` and the SNI callback
do not help (the first verifies just the same, the second runs before the client's certificate
arrives). OpenSSL itself can do it with a verify callback that accepts, but ``ssl`` exposes no
callback, so we install one through ctypes, in the libssl that ``_ssl`` itself uses:
``SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept)``. Every connection made from the context
(asyncio's and uvloop's both go through ``SSLContext.wrap_bio``) inherits it, and CPython keeps a
callback it finds on the context whenever ``verify_mode`` is set again. The ``SSL_CTX`` pointer is
the first field of CPython's ``PySSLContext`` after the object header; it is checked before use
(OpenSSL must report the context's own options for it) and after (the context must now report
``CERT_OPTIONAL``). Where any of that cannot be done (not CPython, no such symbols) the listener
does not ask for client certificates at all and logs a warning: clients still connect, and cert
login sees no certificate, so it fails closed. The callback only ever relaxes the check of a
*client* certificate on a *server* context, which is exactly what Vault's default does.
"""

from __future__ import annotations

import _ssl
import ctypes
import functools
import logging
import ssl
import sys
from typing import Any, Literal

log = logging.getLogger("strongroom.http")

ClientCerts = Literal["request", "require", "none"]

TLS_VERSIONS = {"tls12": ssl.TLSVersion.TLSv1_2, "tls13": ssl.TLSVersion.TLSv1_3}

_SSL_VERIFY_PEER = 0x01  # without SSL_VERIFY_FAIL_IF_NO_PEER_CERT: a certificate is asked for, not required

_VerifyCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)


def _carry_on(preverify_ok: int, store_ctx: int | None) -> int:
    # Called by OpenSSL for each certificate of the presented chain; 1 means "carry on" whatever
    # the verification found. Only installed on server contexts in the "request" mode.
    return 1


_accept = _VerifyCallback(_carry_on)  # module-level: OpenSSL holds the pointer for the process's life


def server_context(cert_file: str, key_file: str, *, min_version: str = "tls12",
                   client_certs: ClientCerts = "request", client_ca_file: str = "") -> ssl.SSLContext:
    """A TLS 1.2+ server context with the given client certificate mode (see the module docstring).

    Raises ``OSError``/``ssl.SSLError`` for unreadable or invalid certificate, key or CA files.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = TLS_VERSIONS.get(min_version, ssl.TLSVersion.TLSv1_2)
    ctx.load_cert_chain(cert_file, key_file)
    if client_certs == "require":
        if client_ca_file:
            ctx.load_verify_locations(client_ca_file)
        else:
            ctx.load_default_certs(ssl.Purpose.CLIENT_AUTH)
        ctx.verify_mode = ssl.CERT_REQUIRED
    elif client_certs == "request" and not _accept_any_client_cert(ctx):
        ctx.verify_mode = ssl.CERT_NONE
        log.warning("this Python's ssl module cannot accept unverified client certificates: the TLS "
                    "listener will not ask clients for one (certificate login will not work)")
    return ctx  # "none": a server context asks for no certificate unless told to


def peer_chain(ssl_object: ssl.SSLObject | None) -> tuple[bytes, ...]:
    """The certificates the client presented, DER, leaf first, as sent (not verified); ``()`` if none."""
    if ssl_object is None:
        return ()
    leaf = ssl_object.getpeercert(binary_form=True)
    if not leaf:
        return ()
    return (leaf, *(der for der in _presented(ssl_object) if der != leaf))


def _presented(ssl_object: ssl.SSLObject) -> list[bytes]:
    """The whole presented chain where this Python can tell it (3.10+), else nothing."""
    try:
        inner: Any = getattr(ssl_object, "_sslobj", None)
        if inner is None or not hasattr(inner, "get_unverified_chain"):
            return []
        # _ssl.Certificate objects; on the server side CPython puts the peer's certificate first
        # (None when there is none), which peer_chain() dedupes against the leaf.
        certs = inner.get_unverified_chain() or []
        return [cert.public_bytes(_ssl.ENCODING_DER) for cert in certs if cert is not None]
    except (AttributeError, TypeError, ValueError, ssl.SSLError):
        return []


# --------------------------------------------------------------------------- the verify callback


def _accept_any_client_cert(ctx: ssl.SSLContext) -> bool:
    """Ask for a client certificate and accept any (see the module docstring); False if impossible."""
    lib = _libssl()
    if lib is None:
        return False
    address = id(ctx) + object.__basicsize__  # PySSLContext: PyObject_HEAD, then SSL_CTX *ctx
    pointer = ctypes.c_void_p.from_address(address).value
    if not pointer or lib.SSL_CTX_get_options(pointer) != int(ctx.options):
        return False
    lib.SSL_CTX_set_verify(pointer, _SSL_VERIFY_PEER, _accept)
    installed = lib.SSL_CTX_get_verify_callback(pointer) == ctypes.cast(_accept, ctypes.c_void_p).value
    if ctx.verify_mode != ssl.CERT_OPTIONAL or not installed:
        ctx.verify_mode = ssl.CERT_NONE
        return False
    return True


@functools.cache
def _libssl() -> Any:
    """The libssl the ``_ssl`` module is linked with, with the three functions typed; None if unusable."""
    if sys.implementation.name != "cpython":
        return None
    try:
        lib = ctypes.CDLL(getattr(_ssl, "__file__", None))  # None: _ssl is built in, so is libssl
        lib.SSL_CTX_set_verify.argtypes = [ctypes.c_void_p, ctypes.c_int, _VerifyCallback]
        lib.SSL_CTX_set_verify.restype = None
        lib.SSL_CTX_get_verify_callback.argtypes = [ctypes.c_void_p]
        lib.SSL_CTX_get_verify_callback.restype = ctypes.c_void_p
        lib.SSL_CTX_get_options.argtypes = [ctypes.c_void_p]
        # uint64_t from OpenSSL 3.0, unsigned long before.
        lib.SSL_CTX_get_options.restype = ctypes.c_uint64 if ssl.OPENSSL_VERSION_INFO >= (3,) else ctypes.c_ulong
    except (OSError, AttributeError):
        return None
    return lib

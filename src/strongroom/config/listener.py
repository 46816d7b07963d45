"""``listener "tcp" { ... }`` stanzas: the :class:`ListenerConfig` dataclass and the checks of its keys."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from strongroom.config.values import (
    _address,
    _Bad,
    _blocks,
    _bool,
    _duration,
    _get,
    _int,
    _is_set,
    _optional_address,
    _Repeated,
    _str,
    _tls_version,
)

DEFAULT_MAX_REQUEST_SIZE = 32 * 1024 * 1024
DEFAULT_MAX_REQUEST_DURATION = 90
DEFAULT_ADDRESS = "127.0.0.1:8200"


@dataclass(frozen=True, slots=True)
class ListenerConfig:
    """One ``listener "tcp"`` stanza. ``max_request_size`` < 0 means unlimited; durations are seconds.

    ``cluster_address`` empty means "one port above ``address``", which the server derives.

    Client certificates, as Vault: by default a TLS listener asks for one and accepts whatever is
    presented, unchecked (cert login checks it later); ``tls_require_and_verify_client_cert``
    refuses the handshake unless one is presented that chains to ``tls_client_ca_file`` (the
    system's CAs when that is unset, as Vault); ``tls_disable_client_certs`` does not ask for one.
    ``tls_client_ca_file`` only matters with ``tls_require_and_verify_client_cert``.
    """

    type: str = "tcp"
    address: str = DEFAULT_ADDRESS
    cluster_address: str = ""
    tls_disable: bool = False
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_min_version: str = "tls12"
    tls_client_ca_file: str = ""
    tls_require_and_verify_client_cert: bool = False
    tls_disable_client_certs: bool = False
    max_request_size: int = DEFAULT_MAX_REQUEST_SIZE
    max_request_duration: int = DEFAULT_MAX_REQUEST_DURATION
    # OpenBao's switches for the token-less key ceremony endpoints (off by default, as in Vault).
    disable_unauthed_rekey_endpoints: bool = False
    disable_unauthed_generate_root_endpoints: bool = False
    # telemetry { unauthenticated_metrics_access = true }: sys/metrics answered without a token.
    unauthenticated_metrics_access: bool = False


_LISTENER_FIELDS = frozenset(f.name for f in dataclasses.fields(ListenerConfig)) - {"type", "unauthenticated_metrics_access"}

# Accepted and ignored: benign, or ignoring them only makes us stricter (e.g. metrics stay authenticated).
_LISTENER_IGNORED: dict[str, Callable[[object, str], object]] = {
    "http_idle_timeout": _duration, "http_read_header_timeout": _duration, "http_read_timeout": _duration,
    "http_write_timeout": _duration, "tls_max_version": _tls_version,
    "tls_prefer_server_cipher_suites": _bool,
    "max_request_json_memory": _int, "max_request_json_strings": _int,
    "profiling": lambda v, k: v, "inflight_requests_logging": lambda v, k: v,
}

# Refused when set: ignoring these would quietly serve with weaker checks than the operator wrote.
_LISTENER_UNSUPPORTED = ("tls_cipher_suites", "tls_key_exchange_preferences", "tls_auto_reload", "tls_acme_", "proxy_protocol_",
                         "x_forwarded_for_", "custom_response_headers", "chroot_namespace", "redact_")


def _listener(kind: str, body: dict[str, object]) -> ListenerConfig:
    try:
        return _tcp_listener(kind, body)
    except _Bad as exc:
        raise _Bad(exc.key, f'listener "{kind}": {exc.message}') from None


def _tcp_listener(kind: str, body: dict[str, object]) -> ListenerConfig:
    if kind != "tcp":
        raise _Bad("listener", 'only "tcp" listeners are supported')
    unauthenticated_metrics = False
    for key, value in body.items():
        if isinstance(value, _Repeated):
            raise _Bad(key, f'"{key}" is set more than once')
        if key in _LISTENER_FIELDS:
            continue
        if key in _LISTENER_IGNORED:
            _LISTENER_IGNORED[key](value, key)
        elif key == "telemetry":
            unauthenticated_metrics = _listener_telemetry(value)
        elif key.startswith(_LISTENER_UNSUPPORTED):
            if _is_set(value):
                raise _Bad(key, f"{key} is not supported yet")
        else:
            raise _Bad(key, f'unknown key "{key}"')

    listener = ListenerConfig(
        type=kind,
        address=_get(body, "address", _address, DEFAULT_ADDRESS),
        cluster_address=_get(body, "cluster_address", _optional_address, ""),
        tls_disable=_get(body, "tls_disable", _bool, False),
        tls_cert_file=_get(body, "tls_cert_file", _str, ""),
        tls_key_file=_get(body, "tls_key_file", _str, ""),
        tls_min_version=_get(body, "tls_min_version", _tls_version, "tls12"),
        tls_client_ca_file=_get(body, "tls_client_ca_file", _str, ""),
        tls_require_and_verify_client_cert=_get(body, "tls_require_and_verify_client_cert", _bool, False),
        tls_disable_client_certs=_get(body, "tls_disable_client_certs", _bool, False),
        # 0 means "the default" in Vault; _Builder fills in max_request_duration's, which may come
        # from default_max_request_duration in another file.
        max_request_size=_get(body, "max_request_size", _int, 0),
        max_request_duration=_get(body, "max_request_duration", _duration, 0),
        disable_unauthed_rekey_endpoints=_get(body, "disable_unauthed_rekey_endpoints", _bool, False),
        disable_unauthed_generate_root_endpoints=_get(body, "disable_unauthed_generate_root_endpoints", _bool, False),
        unauthenticated_metrics_access=unauthenticated_metrics,
    )
    if listener.max_request_size == 0:
        listener = dataclasses.replace(listener, max_request_size=DEFAULT_MAX_REQUEST_SIZE)
    elif listener.max_request_size < 0:
        listener = dataclasses.replace(listener, max_request_size=-1)
    if not listener.tls_disable and not (listener.tls_cert_file and listener.tls_key_file):
        raise _Bad("tls_cert_file", "TLS is enabled but tls_cert_file and tls_key_file are not both set "
                                    "(set tls_disable = true to serve plain HTTP)")
    if (not listener.tls_disable and listener.tls_require_and_verify_client_cert
            and listener.tls_disable_client_certs):  # Vault checks this only when TLS is on, too
        raise _Bad("tls_disable_client_certs", "tls_disable_client_certs and tls_require_and_verify_client_cert "
                                               "are mutually exclusive")
    max_version = _get(body, "tls_max_version", _tls_version, "tls13")
    if listener.tls_min_version > max_version:
        raise _Bad("tls_min_version", f'tls_min_version "{listener.tls_min_version}" is above '
                                      f'tls_max_version "{max_version}"')
    return listener


def _listener_telemetry(value: object) -> bool:
    unauthenticated = False
    for _, body in _blocks(value, 0, "telemetry { ... }"):
        for key, setting in body.items():
            if key == "unauthenticated_metrics_access":
                unauthenticated = bool(_bool(setting, key))
            elif _is_set(setting):
                raise _Bad(key, f"telemetry {key} is not supported yet")
    return unauthenticated

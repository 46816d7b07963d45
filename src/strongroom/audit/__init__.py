"""Audit devices: where audit entries go. One module per device type (file, socket, syslog).

A device gets each entry as finished bytes (the optional prefix, then one JSON object, no newline)
and either stores it or raises. It never sees a Request or a secret: formatting and HMAC'ing are
done before, in :mod:`strongroom.audit.entry`, by the broker (core/audit/), which also enforces
each device's deadline and the fail-closed rule.

Options are Vault's ``map[string]string``: the common ones are parsed here (:class:`CommonOptions`),
each device parses its own in its constructor and raises InvalidRequest on a bad one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from strongroom.errors import InvalidRequest

DEVICE_TYPES = ("file", "socket", "syslog")
DEFAULT_TIMEOUT = 5.0  # seconds; Strongroom's per-device deadline (option "timeout")


class AuditDevice(Protocol):
    """One audit sink. ``write`` may assume it is never called concurrently with itself (the broker
    serialises writes per device, unless the device sets ``concurrent_writes = True``), and must
    raise (OSError or any error) when the entry was not stored. ``close`` releases files and
    sockets; the device is not used afterwards.

    Optionally, ``write_inline(entry) -> bool``: store the entry synchronously, on the event loop,
    and return True; or return False when it must go through ``write`` (under the deadline). Only
    for writes that cannot block for long (a regular file, a non-blocking datagram): the broker
    cannot time them out, so the device must watch them itself (see audit/file.py)."""

    async def write(self, entry: bytes) -> None: ...

    async def close(self) -> None: ...


def parse_bool(options: Mapping[str, str], key: str, default: bool) -> bool:
    """Go's strconv.ParseBool, with its error text (Vault's wording for a bad option)."""
    text = options.get(key)
    if text is None or text == "":
        return default
    if text in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if text in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise InvalidRequest(f'strconv.ParseBool: parsing "{text}": invalid syntax')


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)?")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_seconds(options: Mapping[str, str], key: str, default: float) -> float:
    """A duration option ("2s", "500ms", "1.5"; a bare number is seconds)."""
    text = (options.get(key) or "").strip()
    if not text:
        return default
    m = _DURATION.fullmatch(text)
    if m is None:
        raise InvalidRequest(f'invalid {key} "{text}": use a duration such as "2s" or "500ms"')
    return float(m.group(1)) * _UNIT[m.group(2)]


@dataclass(frozen=True, slots=True)
class CommonOptions:
    """The options every device takes (Vault's), and Strongroom's ``timeout``."""

    prefix: str = ""
    log_raw: bool = False
    hmac_accessor: bool = True
    skip_test: bool = False
    elide_list_responses: bool = False
    # The longest the server waits for this device to take one entry; slower counts as a failure.
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def parse(cls, options: Mapping[str, str]) -> CommonOptions:
        fmt = options.get("format", "") or "json"
        if fmt != "json":
            raise InvalidRequest(f'unknown format type "{fmt}"')
        timeout = parse_seconds(options, "timeout", DEFAULT_TIMEOUT)
        if timeout <= 0:
            raise InvalidRequest("timeout must be positive")
        return cls(prefix=options.get("prefix", ""), log_raw=parse_bool(options, "log_raw", False),
                   hmac_accessor=parse_bool(options, "hmac_accessor", True),
                   skip_test=parse_bool(options, "skip_test", False),
                   elide_list_responses=parse_bool(options, "elide_list_responses", False), timeout=timeout)


def open_device(kind: str, options: Mapping[str, str], chain_key: bytes) -> AuditDevice:
    """A device of type ``kind`` configured by ``options``; InvalidRequest on a bad type or option.
    ``chain_key`` keys the file device's running HMAC chain (see :mod:`strongroom.audit.chain`)."""
    factory = _factories().get(kind)
    if factory is None:
        raise InvalidRequest(f'unknown backend type: "{kind}"')
    return factory(options, chain_key)


def _factories() -> dict[str, Callable[[Mapping[str, str], bytes], AuditDevice]]:
    # Imported here so `strongroom.audit.chain` (used by the CLI's verifier) pulls in no device code.
    from strongroom.audit.file import FileDevice
    from strongroom.audit.socket import SocketDevice
    from strongroom.audit.syslog import SyslogDevice

    return {
        "file": FileDevice,
        "socket": lambda o, _k: SocketDevice(o),
        "syslog": lambda o, _k: SyslogDevice(o),
    }

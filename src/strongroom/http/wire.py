"""HTTP/1.1 bytes on the wire: Vault's LIST method in a request line, and whole responses as one buffer.

Pure functions; the connection protocol (http/server.py) decides when to call them.

llhttp (behind httptools) knows a fixed set of methods and rejects LIST, which hvac, Terraform and
curl users send. Vault treats ``LIST /v1/p`` and ``GET /v1/p?list=true`` identically, so a LIST
request line at the start of a message is rewritten into the GET form before the parser sees it.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus

LIST_PREFIX = b"LIST "
# A request line longer than this without CRLF is not ours to fix: the parser rejects it.
MAX_LIST_LINE = 16384

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

# Every answer is JSON that must not be cached (Vault's headers); the length follows.
_COMMON = b"Content-Type: application/json\r\nCache-Control: no-store\r\n"
_LENGTH = b"Content-Length: "
_CLOSE = b"Connection: close\r\n"
_KEEP = b"Connection: keep-alive\r\n"
# Statuses whose responses never carry a body, so no Content-Length either (RFC 9110 8.6).
_NO_BODY = frozenset({204, 304})

_heads: dict[int, bytes] = {}
_status_lines: dict[int, bytes] = {}


class Body(bytes):
    """A response body that is not Vault's JSON envelope, or that carries headers of its own: a raw
    answer (a certificate, a CRL, an ACME document) with its Content-Type and extra headers. Plain
    ``bytes`` bodies get the fixed JSON headers."""

    content_type: str
    headers: Mapping[str, str]
    # Content-Type, Cache-Control and the extra headers, encoded (checked when the body is made).
    lines: bytes

    def __new__(cls, data: bytes, content_type: str = "application/json",
                headers: Mapping[str, str] | None = None) -> Body:
        """ValueError when a header name or value holds CR or LF (no header injection)."""
        self = super().__new__(cls, data)
        self.content_type = content_type
        self.headers = headers = headers or {}
        parts = [_header("Content-Type", content_type)]
        if not any(name.lower() == "cache-control" for name in headers):
            parts.append(b"Cache-Control: no-store\r\n")
        parts += [_header(name, value) for name, value in headers.items()]
        self.lines = b"".join(parts)
        return self


def _header(name: str, value: str) -> bytes:
    line = f"{name}: {value}\r\n"
    if "\r" in line[:-2] or "\n" in line[:-2] or ":" in name:
        raise ValueError(f"response header {name!r} holds a line break")  # header injection
    return line.encode("latin-1")


def rewrite_list(data: bytes) -> bytes:
    """``LIST /path?q HTTP/1.1`` → ``GET /path?q&list=true HTTP/1.1`` (the rest of ``data`` unchanged).

    ``data`` starts with ``LIST `` and holds the whole request line (a CRLF)."""
    end = data.index(b"\r\n")
    line = data[len(LIST_PREFIX):end]
    target, sep, version = line.rpartition(b" ")
    if not sep:
        return data
    joiner = b"&" if b"?" in target else b"?"
    return b"GET " + target + joiner + b"list=true " + version + data[end:]


def _status_line(status: int) -> bytes:
    line = _status_lines.get(status)
    if line is None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        line = _status_lines[status] = b"HTTP/1.1 %d %s\r\n" % (status, phrase.encode("ascii"))
    return line


def _head(status: int) -> bytes:
    """Status line and the fixed headers for ``status``, built once per status code."""
    head = _heads.get(status)
    if head is None:
        head = _heads[status] = _status_line(status) + _COMMON
    return head




def response(status: int, body: bytes, *, keep_alive: bool, http10: bool = False, head: bool = False) -> bytes:
    """A whole response as one buffer, so it leaves in one write (one syscall, usually one segment).

    ``head``: a HEAD request gets the GET answer's headers, Content-Length included, without the body.
    ``http10``: an HTTP/1.0 client that asked for keep-alive is told it is kept."""
    # A Body's Content-Type, Cache-Control (no-store unless it sets one) and its own headers.
    parts = [_status_line(status) + body.lines if type(body) is Body else _head(status)]
    if status not in _NO_BODY:
        parts += (_LENGTH, b"%d\r\n" % len(body))
    else:
        body = b""
    if not keep_alive:
        parts.append(_CLOSE)
    elif http10:
        parts.append(_KEEP)
    parts.append(b"\r\n")
    if not head:
        parts.append(body)
    return b"".join(parts)

"""The running HMAC chain of the file device (beyond Vault), and its verifier. Pure functions.

Each line the file device writes ends with one more top-level JSON member, so every line stays a
valid JSON object that Vault-format consumers can parse (they ignore the extra key):

    {"time":...,"type":"request",...,"chain":{"seq":42,"hmac":"<64 hex>"}}

``hmac`` = HMAC-SHA256(chain key, prev || "\\n" || seq || "\\n" || body), where ``body`` is the line
as it would be without the chain member (prefix and JSON object, no newline) and ``prev`` is the
previous line's ``hmac`` in hex ("" before the first line, seq 1). So

  - an edited line no longer matches its HMAC;
  - a deleted line leaves a gap in ``seq`` (and the next HMAC was made over a different ``prev``);
  - reordered lines come out of sequence; a renumbered line does not match its HMAC;
  - lines cut from the end are invisible in the file alone: compare with the device's current
    head (``sys/audit-chain/<path>``), which ``strongroom audit verify -path`` does.

A write cut short (a crash, a full disk) leaves part of a line: not a whole JSON object, no chain
member. The device never counts such a write (the next line carries the same sequence number and
starts on a line of its own), so the chain runs on unbroken around it. That is reported apart from
tampering, as a torn line: nothing chained is missing or changed, one entry is incomplete. A line
that is a whole JSON object without a chain member is an insertion (or an edit), never torn.

SECURITY: the chain key is not the device's salt. ``sys/audit-hash`` hands out HMACs under the salt
to any caller allowed to use it; with the salt as chain key, such a caller could forge lines.
Whoever holds the chain key can forge lines too (HMAC is symmetric), so it is given to sudo callers
only, and comparisons are constant-time.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from strongroom.audit.mac import KeyedSha256

# The chain member exactly as the device appends it; the verifier splits a line on this shape.
_TAIL = re.compile(rb',"chain":\{"seq":(\d{1,19}),"hmac":"([0-9a-f]{64})"\}\}\r?\n?\Z')


def chain_mac(key: bytes | KeyedSha256, prev: str, seq: int, body: bytes) -> str:
    """``key``: the chain key, or (the file device's, saving the key schedule per line) a
    KeyedSha256 of it."""
    head = b"%s\n%d\n" % (prev.encode(), seq)
    if isinstance(key, KeyedSha256):
        return key.hexdigest(head, body)  # in parts: the body (a whole entry) is not copied
    return hmac.digest(key, head + body, "sha256").hex()


def chained_line(key: bytes | KeyedSha256, prev: str, seq: int, body: bytes) -> tuple[bytes, str]:
    """``body`` (a prefix, then a JSON object) with the chain member added, newline-terminated;
    and the line's HMAC, which is the next line's ``prev``."""
    if not body.endswith(b"}"):
        raise ValueError("an audit entry must end with a JSON object")
    mac = chain_mac(key, prev, seq, body)
    return body[:-1] + b',"chain":{"seq":%d,"hmac":"%s"}}\n' % (seq, mac.encode()), mac


def split_line(line: bytes) -> tuple[bytes, int, str] | None:
    """(body, seq, hmac) of a chained line, or None if it carries no chain member."""
    m = _TAIL.search(line)
    if m is None:
        return None
    return line[: m.start()] + b"}", int(m.group(1)), m.group(2).decode()


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    lines: int  # lines that verified
    last_seq: int  # the sequence number of the last line that verified
    bad_line: int = 0  # 1-based number (across all inputs) of the first break; 0 when ok
    reason: str = ""
    # 1-based numbers of torn lines (writes cut short) the chain ran on around; ok may still be True.
    torn: tuple[int, ...] = ()


def is_torn(line: bytes) -> bool:
    """Part of a line, as a write cut short leaves it: not a whole JSON object (after the device's
    prefix, if any). Trailing NULs, which a crash can leave in place of the lost bytes, are part of
    the tear. A whole object without a chain member is not torn: it was inserted or edited."""
    text = line.rstrip(b"\r\n").rstrip(b"\x00")
    start = text.find(b"{")
    if start < 0:
        return True
    try:
        return not isinstance(orjson.loads(text[start:]), dict)
    except orjson.JSONDecodeError:
        return True


def verify(key: bytes, lines: Iterable[bytes], *, head_seq: int = 0, head_hmac: str = "") -> Verdict:
    """Check a chain from its first line (several files in order verify as one: rotated logs).

    ``head_seq``/``head_hmac``: the device's current head, when known. The lines must reach that
    sequence number with that HMAC (lines written since may follow), or lines were cut off the end
    (or the file was replaced)."""
    prev, expected, n = "", 1, 0
    reached = not head_seq
    torn: list[int] = []
    for n, line in enumerate(lines, 1):
        parts = split_line(line)
        if parts is None:
            if is_torn(line):
                # Passed over: if a line is really missing around it, the next one shows a gap.
                torn.append(n)
                continue
            return Verdict(False, n - 1 - len(torn), expected - 1, n,
                           "the line carries no chain member (inserted or edited)", tuple(torn))
        body, seq, mac = parts
        verified = n - 1 - len(torn)
        if seq != expected:
            what = "lines deleted before it" if seq > expected else "out of order or repeated"
            return Verdict(False, verified, expected - 1, n, f"sequence number {seq}, expected {expected} ({what})",
                           tuple(torn))
        # SECURITY: constant-time comparison of the recorded and recomputed HMACs.
        if not hmac.compare_digest(chain_mac(key, prev, seq, body), mac):
            return Verdict(False, verified, expected - 1, n, "HMAC mismatch: the line was edited, or the key is wrong",
                           tuple(torn))
        if seq == head_seq:
            if head_hmac and not hmac.compare_digest(mac, head_hmac):
                return Verdict(False, verified, expected - 1, n,
                               "the device wrote a different line with this sequence number (file replaced)",
                               tuple(torn))
            reached = True
        prev, expected = mac, expected + 1
    if not reached:
        return Verdict(False, n - len(torn), expected - 1, n + 1,
                       f"the file ends at sequence {expected - 1}, but the device has written {head_seq} lines "
                       "(lines deleted from the end)", tuple(torn))
    return Verdict(True, n - len(torn), expected - 1, torn=tuple(torn))

"""The file device's HMAC line chain: every kind of tampering is found at the first broken line."""

from __future__ import annotations

import json

from strongroom.audit.chain import chained_line, split_line, verify

KEY = b"k" * 32


def _log(n: int, key: bytes = KEY, prefix: str = "") -> list[bytes]:
    prev, out = "", []
    for seq in range(1, n + 1):
        body = prefix.encode() + json.dumps({"type": "request", "request": {"id": str(seq)}}).encode()
        line, prev = chained_line(key, prev, seq, body)
        out.append(line)
    return out


def test_an_intact_chain_verifies_and_each_line_is_still_json() -> None:
    lines = _log(5)
    v = verify(KEY, lines)
    assert v.ok and v.lines == 5 and v.last_seq == 5
    for seq, line in enumerate(lines, 1):
        entry = json.loads(line)
        assert entry["type"] == "request" and entry["chain"]["seq"] == seq
        assert split_line(line) is not None


def test_an_edited_line_is_reported() -> None:
    lines = _log(5)
    lines[2] = lines[2].replace(b'"id": "3"', b'"id": "X"')
    v = verify(KEY, lines)
    assert not v.ok and v.bad_line == 3 and "edited" in v.reason and v.lines == 2


def test_a_deleted_line_is_reported() -> None:
    lines = _log(5)
    del lines[1]
    v = verify(KEY, lines)
    assert not v.ok and v.bad_line == 2 and "expected 2" in v.reason


def test_reordered_lines_are_reported() -> None:
    lines = _log(5)
    lines[1], lines[3] = lines[3], lines[1]
    v = verify(KEY, lines)
    assert not v.ok and v.bad_line == 2


def test_a_renumbered_line_does_not_match_its_hmac() -> None:
    lines = _log(5)
    del lines[1]
    body, _seq, mac = split_line(lines[1]) or (b"", 0, "")
    lines[1] = body[:-1] + b',"chain":{"seq":2,"hmac":"%s"}}\n' % mac.encode()
    v = verify(KEY, lines)
    assert not v.ok and v.bad_line == 2 and "HMAC" in v.reason


def test_an_inserted_unchained_line_and_a_wrong_key_are_reported() -> None:
    lines = _log(3)
    assert not verify(KEY, [*lines[:1], b'{"type":"request"}\n', *lines[1:]]).ok
    assert verify(b"x" * 32, lines).bad_line == 1


def test_lines_cut_from_the_end_need_the_devices_head() -> None:
    lines = _log(5)
    _, _, head = split_line(lines[4]) or (b"", 0, "")
    assert verify(KEY, lines[:3]).ok  # the file alone cannot tell
    v = verify(KEY, lines[:3], head_seq=5, head_hmac=head)
    assert not v.ok and "deleted from the end" in v.reason
    assert verify(KEY, lines, head_seq=5, head_hmac=head).ok
    # A head from another chain (the file was replaced by a re-keyed forgery) does not match.
    assert not verify(KEY, lines, head_seq=5, head_hmac="0" * 64).ok


def test_a_prefix_is_covered_by_the_chain() -> None:
    lines = _log(3, prefix="AUDIT: ")
    assert verify(KEY, lines).ok
    lines[1] = lines[1].replace(b"AUDIT: ", b"AUDlT: ")
    assert verify(KEY, lines).bad_line == 2


def test_a_torn_last_line_is_not_tampering() -> None:
    # A crash or a full disk cuts the last write short: the chain holds up to it.
    lines = _log(5)
    _, _, head4 = split_line(lines[3]) or (b"", 0, "")
    for cut in (1, 20, len(lines[4]) - 40, len(lines[4]) - 3):
        torn = [*lines[:4], lines[4][:cut]]
        v = verify(KEY, torn)
        assert v.ok and v.torn == (5,) and v.lines == 4 and v.last_seq == 4
        # The device never counted the torn write, so its head is line 4: still not tampering.
        assert verify(KEY, torn, head_seq=4, head_hmac=head4).torn == (5,)
        # But if the device did write line 5 whole, the file was cut afterwards: tampering.
        assert not verify(KEY, torn, head_seq=5, head_hmac="0" * 64).ok
    v = verify(KEY, [*lines[:4], lines[4][:30] + b"\x00" * 100])  # a crash may leave NULs
    assert v.ok and v.torn == (5,)
    assert verify(KEY, [*lines[:4], lines[4][:-1]]).torn == ()  # only the newline lost: the line is whole


def test_a_torn_line_the_chain_runs_on_around() -> None:
    # After a failed write (or a restart after a crash) the device writes the same sequence
    # number again, on a line of its own.
    lines = _log(5)
    v = verify(KEY, [*lines[:2], lines[2][:50] + b"\n", *lines[2:]])
    assert v.ok and v.torn == (3,) and v.lines == 5 and v.last_seq == 5


def test_an_edited_or_truncated_complete_line_is_still_tampering() -> None:
    lines = _log(5)
    edited = lines[4].replace(b'"id": "5"', b'"id": "X"')  # the last line, edited, whole
    v = verify(KEY, [*lines[:4], edited])
    assert not v.ok and "HMAC" in v.reason and v.torn == ()
    # A line cut short in the middle of the log, with nothing written again in its place: the
    # chain does not run on around it, so it is a deletion.
    v = verify(KEY, [*lines[:2], lines[2][:50] + b"\n", *lines[3:]])
    assert not v.ok and v.bad_line == 4 and "expected 3" in v.reason
    # A whole JSON object without a chain member was inserted, not torn.
    v = verify(KEY, [*lines, b'{"type":"request","forged":true}'])
    assert not v.ok and "inserted or edited" in v.reason
    stripped = split_line(lines[4])
    assert stripped is not None
    v = verify(KEY, [*lines[:4], stripped[0]])  # the last line with its chain member removed
    assert not v.ok and "inserted or edited" in v.reason

"""Go's quoted literals as the parser reads them: strconv.Unquote for "interpreted" strings (with their
escapes), `raw` strings and 'c' character constants."""

from __future__ import annotations


_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\",
                   "'": "'", '"': '"'}


def unquote(s: str) -> str:
    """Go's strconv.Unquote for "interpreted", `raw` and 'c' literals."""
    if len(s) < 2:
        raise ValueError("invalid syntax")
    q = s[0]
    if q == "`":
        return s[1:-1].replace("\r", "")
    body = s[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        i += 1
        if i >= len(body):
            raise ValueError("invalid syntax")
        e = body[i]
        i += 1
        if e in _SIMPLE_ESCAPES:
            if (e == "'" and q == '"') or (e == '"' and q == "'"):
                raise ValueError("invalid syntax")
            out.append(_SIMPLE_ESCAPES[e])
        elif e in "xuU":
            n = {"x": 2, "u": 4, "U": 8}[e]
            digits = body[i:i + n]
            if len(digits) != n or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise ValueError("invalid syntax")
            i += n
            v = int(digits, 16)
            if e == "x":
                out.append(chr(v) if v < 0x80 else bytes([v]).decode("latin-1"))
            else:
                out.append(chr(v))
        elif e in "01234567":
            digits = body[i - 1:i + 2]
            if len(digits) != 3 or any(d not in "01234567" for d in digits):
                raise ValueError("invalid syntax")
            i += 2
            out.append(chr(int(digits, 8)))
        else:
            raise ValueError("invalid syntax")
    return "".join(out)

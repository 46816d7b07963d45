"""consul-template's string functions: Go's strings package (split, join, trims, case, replaceAll), indent
and the regular-expression functions (RE2 patterns in Python's re, Go's expansion of $1 and ${name})."""

from __future__ import annotations

import re

from strongroom.agent.template.gofunc import FuncError, GoFunc
from strongroom.agent.template.values import GoStrings


_GO_SPACE = " \t\n\v\f\r\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
            "\u2028\u2029\u202f\u205f\u3000"


def _split(sep: str, s: str) -> GoStrings:
    s = s.strip(_GO_SPACE)
    if s == "":
        return GoStrings()
    if sep == "":
        return GoStrings(list(s))
    return GoStrings(s.split(sep))


def _join(sep: str, a: GoStrings) -> str:
    return sep.join(a)


def _trim_space(s: str) -> str:
    return s.strip(_GO_SPACE)


def _replace_all(f: str, t: str, s: str) -> str:
    if f == "":
        chars = list(s)
        return t + "".join(c + t for c in chars)
    return s.replace(f, t)


def _to_lower(s: str) -> str:
    """strings.ToLower: rune by rune (U+0130 becomes a plain 'i', as in Go)."""
    if s.isascii():
        return s.lower()
    return "".join(c.lower()[0] for c in s)


def _to_upper(s: str) -> str:
    """strings.ToUpper: rune by rune; a rune without a one-rune upper case ('ß') stays as it is."""
    if s.isascii():
        return s.upper()
    return "".join(u if len(u := c.upper()) == 1 else c for c in s)


def _indent(spaces: int, s: str) -> str:
    if spaces < 0:
        raise FuncError("indent value must be a positive integer")
    prefix = " " * spaces
    out: list[str] = []
    at_line_start = True
    for c in s:
        if at_line_start and c != "\n":
            out.append(prefix)
        out.append(c)
        at_line_start = c == "\n"
    return "".join(out)


def _trim(cutset: str, s: str) -> str:
    return s.strip(cutset) if cutset else s


def _trim_prefix(prefix: str, s: str) -> str:
    return s.removeprefix(prefix)


def _trim_suffix(suffix: str, s: str) -> str:
    return s.removesuffix(suffix)


def _go_regexp(pattern: str) -> re.Pattern[str]:
    """A Go (RE2) pattern in Python's re: the common syntax is shared; \\z is \\Z here."""
    try:
        return re.compile(pattern.replace("\\z", "\\Z"))
    except re.error as e:
        raise FuncError(f"error parsing regexp: {e}: `{pattern}`") from None


_TEMPLATE_REF = re.compile(r"\$(?:\$|\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))")


def _go_expand(template: str, m: re.Match[str]) -> str:
    """regexp.Expand: $1, ${1}, $name, ${name}; $$ is a dollar; an unknown group is empty."""
    def ref(r: re.Match[str]) -> str:
        name = r.group(1) or r.group(2)
        if name is None:
            return "$"
        try:
            got = m.group(int(name)) if name.isdigit() else m.group(name)
        except (IndexError, re.error):
            return ""
        return got or ""
    return _TEMPLATE_REF.sub(ref, template)


def _regex_replace_all(pattern: str, repl: str, s: str) -> str:
    compiled = _go_regexp(pattern)
    out: list[str] = []
    pos = 0
    last_end = -1
    for m in compiled.finditer(s):
        if m.start() == m.end() and m.start() == last_end:
            continue  # Go ignores an empty match right after the previous match
        out.append(s[pos:m.start()])
        out.append(_go_expand(repl, m))
        pos = m.end()
        last_end = m.end()
    out.append(s[pos:])
    return "".join(out)


def _regex_match(pattern: str, s: str) -> bool:
    return _go_regexp(pattern).search(s) is not None



STRING_FUNCTIONS: dict[str, GoFunc] = {
    "regexReplaceAll": GoFunc(_regex_replace_all, ("string", "string", "string")),
    "regexMatch": GoFunc(_regex_match, ("string", "string")),
    "indent": GoFunc(_indent, ("int", "string")),
    "trim": GoFunc(_trim, ("string", "string")),
    "trimPrefix": GoFunc(_trim_prefix, ("string", "string")),
    "trimSuffix": GoFunc(_trim_suffix, ("string", "string")),
    "split": GoFunc(_split, ("string", "string")),
    "join": GoFunc(_join, ("string", "[]string")),
    "trimSpace": GoFunc(_trim_space, ("string",)),
    "replaceAll": GoFunc(_replace_all, ("string", "string", "string")),
    "toLower": GoFunc(_to_lower, ("string",)),
    "toUpper": GoFunc(_to_upper, ("string",)),
}

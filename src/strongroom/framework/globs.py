"""Vault's glob (ryanuber/go-glob), used by role bindings across auth methods and templates: ``*``
matches any run of characters (none included), every other character is literal. Linear in the
length of the value; no regular expression."""

from __future__ import annotations

__all__ = ["glob_match"]


def glob_match(pattern: str, value: str) -> bool:
    if "*" not in pattern:
        return pattern == value
    parts = pattern.split("*")
    first, last = parts[0], parts[-1]
    if len(value) < len(first) + len(last) or not value.startswith(first) or not value.endswith(last):
        return False
    pos, end = len(first), len(value) - len(last)
    for part in parts[1:-1]:
        i = value.find(part, pos, end)
        if i < 0:
            return False
        pos = i + len(part)
    return True

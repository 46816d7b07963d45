"""framework.globs.glob_match: Vault's go-glob, the one matcher the auth methods' role bindings
and the username templates' ``glob`` share."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from strongroom.framework.globs import glob_match


def test_go_glob_cases() -> None:
    cases = [("*", "", True), ("*", "anything\nat all", True), ("a*", "abc", True), ("*c", "abc", True),
             ("a*c", "ac", True), ("a*b*c", "axxbyyc", True), ("a*b*c", "acb", False), ("ab*ba", "aba", False),
             ("exact", "exact", True), ("exact", "exactly", False), ("?", "x", False), ("[a]", "[a]", True),
             ("arn:aws:iam::1:role/*", "arn:aws:iam::1:role/web", True), ("prod-*", "dev-1", False)]
    for pattern, value, want in cases:
        assert glob_match(pattern, value) is want, (pattern, value)


@given(st.text(alphabet="ab*.\n", max_size=8), st.text(alphabet="ab.\n", max_size=10))
def test_same_answers_as_the_regular_expression_it_replaced(pattern: str, value: str) -> None:
    regex = ".*".join(re.escape(p) for p in pattern.split("*"))
    assert glob_match(pattern, value) is (re.fullmatch(regex, value, re.S) is not None)

"""framework/passwords.py: the default policy and charset rules every generated password satisfies."""

import pytest

from strongroom.errors import InvalidRequest
from strongroom.framework.passwords import DEFAULT_POLICY, DIGITS, LOWER, UPPER, CharsetRule, PasswordPolicy
from strongroom.framework.system import StaticSystemView
from strongroom.storage.inmem import InmemStorage


def test_default_policy_twenty_chars_with_each_kind() -> None:
    seen = set()
    for _ in range(200):
        pw = DEFAULT_POLICY.generate()
        assert len(pw) == 20
        assert set(pw) <= set(LOWER + UPPER + DIGITS + "-")
        for charset in (LOWER, UPPER, DIGITS, "-"):
            assert any(c in charset for c in pw), pw
        seen.add(pw)
    assert len(seen) == 200


def test_min_chars_honoured_and_bad_policies_refused() -> None:
    policy = PasswordPolicy(8, (CharsetRule("ab", 0), CharsetRule("!", 3)))
    policy.validate()
    assert all(policy.generate().count("!") >= 3 for _ in range(50))
    for bad in (PasswordPolicy(3, (CharsetRule("a"),)), PasswordPolicy(8, ()),
                PasswordPolicy(4, (CharsetRule("a", 3), CharsetRule("b", 2)))):
        with pytest.raises(InvalidRequest):
            bad.validate()


async def test_static_system_view_named_and_unknown_policy() -> None:
    view = StaticSystemView(InmemStorage(), password_policies={"pin": PasswordPolicy(6, (CharsetRule(DIGITS),))})
    assert (await view.generate_password("pin")).isdigit()
    assert len(await view.generate_password()) == 20
    with pytest.raises(InvalidRequest, match='policy "nope" not found'):
        await view.generate_password("nope")

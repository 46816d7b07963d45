"""Password generation shared by every backend (database users, RabbitMQ users, ...).

A password *policy* (Vault's ``sys/policies/password/NAME``) is a length and a list of charset rules,
each demanding at least ``min_chars`` characters of its charset. Backends never parse policies: they
ask their SystemView, ``await system.generate_password(name)``; the empty name is the default policy
below (Vault's default for generated credentials: 20 characters of letters, digits and ``-``, at
least one of each kind). Randomness comes from :mod:`secrets` only.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from strongroom.errors import InvalidRequest

LOWER = "abcdefghijklmnopqrstuvwxyz"
UPPER = LOWER.upper()
DIGITS = "0123456789"


@dataclass(frozen=True, slots=True)
class CharsetRule:
    charset: str
    min_chars: int = 0


@dataclass(frozen=True, slots=True)
class PasswordPolicy:
    length: int
    rules: tuple[CharsetRule, ...] = field(default_factory=tuple)

    def charset(self) -> str:
        """Every character any rule allows, each once, in first-seen order."""
        return "".join(dict.fromkeys("".join(r.charset for r in self.rules)))

    def validate(self) -> None:
        if self.length < 4 or self.length > 100:
            raise InvalidRequest("length must be between 4 and 100")
        if not self.rules or not self.charset():
            raise InvalidRequest("no charset specified")
        if sum(r.min_chars for r in self.rules) > self.length:
            raise InvalidRequest("length is smaller than the sum of the minimum characters")

    def generate(self) -> str:
        """A password of ``length`` characters satisfying every rule: the demanded characters drawn
        from each rule's charset, the rest from the union, then shuffled (all with ``secrets``)."""
        chars = [secrets.choice(r.charset) for r in self.rules for _ in range(r.min_chars)]
        union = self.charset()
        chars += [secrets.choice(union) for _ in range(self.length - len(chars))]
        for i in range(len(chars) - 1, 0, -1):  # Fisher-Yates with a CSPRNG
            j = secrets.randbelow(i + 1)
            chars[i], chars[j] = chars[j], chars[i]
        return "".join(chars)


DEFAULT_POLICY = PasswordPolicy(20, (CharsetRule(LOWER, 1), CharsetRule(UPPER, 1), CharsetRule(DIGITS, 1),
                                     CharsetRule("-", 1)))


def generate_default() -> str:
    return DEFAULT_POLICY.generate()


__all__ = ["DEFAULT_POLICY", "CharsetRule", "PasswordPolicy", "generate_default"]

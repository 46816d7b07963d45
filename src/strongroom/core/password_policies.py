"""Named password policies (Vault's ``sys/policies/password/NAME``): parsed from HCL, stored through
the barrier, cached parsed, and the source of every mount's ``SystemView.generate_password(name)``.

A policy document is Vault's::

    length = 20
    rule "charset" {
      charset   = "abcdefghijklmnopqrstuvwxyz"
      min-chars = 1
    }

Parsing and validation are pure (:func:`parse_password_policy`); the store is a lifecycle part whose
cache is dropped on every write, delete, invalidation and seal, so a policy changed on another node
(or restored) is never served stale.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from strongroom import hcl
from strongroom.errors import InvalidRequest
from strongroom.framework.passwords import CharsetRule, PasswordPolicy, generate_default
from strongroom.lifecycle import Part
from strongroom.logical import Storage

#: Storage key prefix inside the view handed to the store (core gives it ``sys/``, so the barrier
#: key is ``sys/password_policy/<name>``, Vault's layout): JSON ``{"policy": <document text>}``.
#: The text is re-parsed on load, so a parser fix applies to stored policies without a migration.
PASSWORD_POLICY_PREFIX = "password_policy/"

MIN_LENGTH, MAX_LENGTH = 4, 100
_CACHE_SIZE = 4096  # parsed policies kept; a deployment has a handful


def _multierror(errors: list[str]) -> str:
    """Go's multierror text, which Vault embeds in its messages (clients match on the inner lines)."""
    head = "1 error occurred:" if len(errors) == 1 else f"{len(errors)} errors occurred:"
    return head + "\n" + "".join(f"\t* {e}\n" for e in errors) + "\n"


def _int(value: Any, name: str, where: str) -> int:
    # HCL numbers decode to int; Go's decoder also takes a float (truncated) and refuses strings.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        kind = "string" if isinstance(value, str) else type(value).__name__
        raise InvalidRequest(f"invalid password policy: {where}'{name}' expected type 'int', "
                             f"got unconvertible type '{kind}'")
    return int(value)


def _last(value: Any) -> Any:
    """A repeated attribute in HCL1 decodes to its last value."""
    return value[-1] if isinstance(value, list) and value and not isinstance(value, hcl.Block) else value


def _rules(doc: dict[str, Any]) -> list[CharsetRule]:
    rules: list[CharsetRule] = []
    for entry in doc.get("rule") or []:
        if not isinstance(entry, dict) or isinstance(entry, hcl.Block):  # `rule { ... }`: no rule type
            raise InvalidRequest("invalid password policy: unable to parse rules: unable to get rule info: "
                                 "unable to get rule data: '' source data must be an array or slice, got string")
        for kind, body in entry.items():
            if kind != "charset":
                raise InvalidRequest(f"invalid password policy: unable to parse rules: unable to parse rule "
                                     f"{kind}: unrecognized rule type {kind}")
            if not isinstance(body, hcl.Block):  # `rule "charset" "label" { }`: not a charset rule body
                continue
            charset = _last(body.get("charset", ""))
            if not isinstance(charset, str):
                raise InvalidRequest("invalid password policy: unable to parse rules: unable to parse rule charset: "
                                     "failed to parse charset restriction: 'charset' expected type 'string'")
            min_chars = _int(_last(body.get("min-chars", 0)), "min-chars",
                             "unable to parse rules: unable to parse rule charset: failed to parse charset "
                             "restriction: ")
            rules.append(CharsetRule(charset, max(min_chars, 0)))
    return rules


def parse_password_policy(text: str) -> PasswordPolicy:
    """The policy of an HCL document, validated as Vault does; raises InvalidRequest (400) with Vault's
    wording. Never returns a policy that cannot generate a password."""
    try:
        doc = hcl.loads(text)
    except hcl.HCLError as e:
        raise InvalidRequest(f"invalid password policy: unable to decode: {e.detail}") from None
    if not isinstance(doc, dict):
        raise InvalidRequest("invalid password policy: unable to decode: not an object")
    length = _int(_last(doc.get("length", 0)), "length", "failed to decode configuration: ")
    policy = PasswordPolicy(length, tuple(_rules(doc)))
    errors = []
    if length <= 0:
        errors.append("length must be > 0")
    if not policy.charset():
        errors.append("no charset specified")
    needed = sum(r.min_chars for r in policy.rules)
    if not errors and needed > length:
        errors.append(f"specified rules require at least {needed} characters but {length} is specified")
    if errors:
        raise InvalidRequest("invalid password policy: " + _multierror(errors))
    if not MIN_LENGTH <= length <= MAX_LENGTH:
        raise InvalidRequest(f"passwords must be between {MIN_LENGTH} and {MAX_LENGTH} characters")
    return policy


def decode_policy_text(text: str) -> str:
    """As Vault: a policy that is valid standard base64 is taken to be its decoding."""
    try:
        return base64.b64decode(text.replace("\r", "").replace("\n", ""), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return text


class PasswordPolicyStore(Part):
    """Password policies kept in ``view`` (under :data:`PASSWORD_POLICY_PREFIX`), cached parsed."""

    def __init__(self, view: Storage) -> None:
        self._view = view
        self._cache: dict[str, PasswordPolicy | None] = {}  # None caches "not stored"
        self._generation = 0  # bumped on every change, so a read racing a write caches nothing

    async def get_text(self, name: str) -> str | None:
        raw = await self._view.get(PASSWORD_POLICY_PREFIX + name)
        return None if raw is None else str(orjson.loads(raw)["policy"])

    async def get(self, name: str) -> PasswordPolicy | None:
        if name in self._cache:
            return self._cache[name]
        generation = self._generation
        text = await self.get_text(name)
        policy = None if text is None else parse_password_policy(text)
        if generation == self._generation:
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            self._cache[name] = policy
        return policy

    async def put(self, name: str, text: str) -> None:
        policy = parse_password_policy(text)  # raises before anything is written
        await self._view.put(PASSWORD_POLICY_PREFIX + name, orjson.dumps({"policy": text}))
        self._forget()
        self._cache[name] = policy

    async def delete(self, name: str) -> None:
        await self._view.delete(PASSWORD_POLICY_PREFIX + name)
        self._forget()

    async def list(self) -> list[str]:
        return sorted(k for k in await self._view.list(PASSWORD_POLICY_PREFIX) if not k.endswith("/"))

    async def generate(self, name: str) -> str:
        """A password from policy ``name`` ("" = the default policy): SystemView.generate_password."""
        if not name:
            return generate_default()
        policy = await self.get(name)
        if policy is None:
            raise InvalidRequest(f'failed to generate password: policy "{name}" not found')
        return policy.generate()

    def _forget(self) -> None:
        self._generation += 1
        self._cache.clear()

    async def setup(self) -> None:
        self._forget()

    async def deactivate(self) -> None:
        self._forget()

    async def invalidate(self, key: str) -> None:
        if key.startswith(PASSWORD_POLICY_PREFIX):
            self._forget()


__all__ = ["PASSWORD_POLICY_PREFIX", "PasswordPolicyStore", "decode_policy_text", "parse_password_policy"]

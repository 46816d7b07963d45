"""Compiled ACLs: which capabilities a set of policies grants on a path. Sync and pure.

Compilation merges the stanzas of all policies by pattern: capabilities are unioned, ``deny``
wins over everything and clears the rest, and parameter constraints are merged the way Vault
merges them. Patterns then go to one of three tables:

* exact paths: a dict, consulted first; an exact rule always beats any wildcard rule;
* prefix globs (``secret/*``, ``secret/zip-*``): a dict keyed by prefix, probed at each distinct
  prefix length from the longest down, so the longest matching prefix costs a few dict lookups;
* ``+``-segment patterns: bucketed by their first segment, matched segment by segment.

When several wildcard rules match, exactly one applies, chosen by Vault's priority order (see
:func:`_priority`). An ACL is immutable, so per-path lookups are cached inside it and can never
go stale; a policy change produces a new ACL.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from strongroom.logical import Operation

if TYPE_CHECKING:
    from strongroom.core.policy import PathRules, Policy

__all__ = ["ACL", "ACLResult", "Permissions"]

_CACHE_SIZE = 4096  # distinct (path, list?) lookups remembered per ACL

_OPERATION_CAPABILITY = {
    Operation.CREATE: "create",
    Operation.READ: "read",
    Operation.HEADER: "read",  # as Vault: a HEAD is a read without the body
    Operation.UPDATE: "update",
    Operation.PATCH: "patch",
    Operation.DELETE: "delete",
    Operation.LIST: "list",
    # Lease renewal and revocation issued by core are authorised as updates, as in Vault.
    Operation.RENEW: "update",
    Operation.REVOKE: "update",
}
# Vault checks parameter constraints on reads too (query parameters), not only on writes.
_PARAMETER_OPERATIONS = frozenset({Operation.READ, Operation.CREATE, Operation.UPDATE, Operation.PATCH})


@dataclass(frozen=True, slots=True)
class Permissions:
    """The merged rule for one pattern. Empty parameter maps mean "no constraint"."""

    capabilities: frozenset[str]
    allowed_parameters: Mapping[str, tuple[object, ...]]
    denied_parameters: Mapping[str, tuple[object, ...]]
    required_parameters: tuple[str, ...]
    min_wrapping_ttl: int
    max_wrapping_ttl: int


@dataclass(frozen=True, slots=True)
class ACLResult:
    """The answer to "may this request proceed?".

    ``sudo`` is true when the matched rule grants sudo (or for root), even if the operation itself
    is denied. ``message`` says why a request was denied, for logs; it names parameters but never
    echoes their values. Clients should still just see "permission denied", as Vault answers.
    """

    allowed: bool
    sudo: bool = False
    capabilities: frozenset[str] = frozenset()
    is_root: bool = False
    min_wrapping_ttl: int = 0
    max_wrapping_ttl: int = 0
    message: str = ""


_NO_MATCH = ACLResult(allowed=False, message="permission denied")
_ROOT_RESULT = ACLResult(allowed=True, sudo=True, capabilities=frozenset({"root"}), is_root=True)
_HELP_RESULT = ACLResult(allowed=True)  # help is always allowed (verified against OpenBao)


@dataclass(slots=True)
class _Merged:
    """A pattern's permissions while policies are being merged into it."""

    capabilities: set[str] = field(default_factory=set)
    allowed: dict[str, list[object]] = field(default_factory=dict)
    denied: dict[str, list[object]] = field(default_factory=dict)
    required: list[str] = field(default_factory=list)
    min_ttl: int = 0
    max_ttl: int = 0

    def add(self, rule: PathRules) -> None:
        if "deny" in self.capabilities:
            return
        if "deny" in rule.capabilities:
            self.capabilities = {"deny"}
            self.allowed, self.denied = {}, {}
            return
        self.capabilities |= rule.capabilities
        # Wrapping bounds: the shorter of two set values wins, keeping wrapped responses short-lived.
        if rule.max_wrapping_ttl and (not self.max_ttl or rule.max_wrapping_ttl < self.max_ttl):
            self.max_ttl = rule.max_wrapping_ttl
        if rule.min_wrapping_ttl and (not self.min_ttl or rule.min_wrapping_ttl < self.min_ttl):
            self.min_ttl = rule.min_wrapping_ttl
        _merge_values(self.allowed, rule.allowed_parameters)
        _merge_values(self.denied, rule.denied_parameters)
        self.required += [p for p in rule.required_parameters if p not in self.required]

    def freeze(self) -> Permissions:
        return Permissions(
            frozenset(self.capabilities),
            {k: tuple(v) for k, v in self.allowed.items()},
            {k: tuple(v) for k, v in self.denied.items()},
            tuple(self.required),
            self.min_ttl,
            self.max_ttl,
        )


def _merge_values(into: dict[str, list[object]], new: Mapping[str, tuple[object, ...]]) -> None:
    """Vault's merge: "any value" ([]) on either side wins; otherwise the value lists concatenate.

    Note the asymmetry this inherits: a stanza *without* constraints merged with one *with*
    constraints yields the constraints (it restricts rather than widens).
    """
    for key, values in new.items():
        if not values or (key in into and not into[key]):
            into[key] = []
        else:
            into[key] = list(values) + into.get(key, [])


@dataclass(frozen=True, slots=True)
class _SegmentRule:
    parts: tuple[str, ...]  # the pattern split on '/', trailing '*' removed
    is_prefix: bool
    priority: tuple[int, bool, int, int, str]
    permissions: Permissions

    def matches(self, path_parts: list[str]) -> bool:
        n = len(self.parts)
        if len(path_parts) < n or (not self.is_prefix and len(path_parts) != n):
            return False
        last = n - 1
        for i, part in enumerate(self.parts):
            if part == "+" or part == path_parts[i]:
                continue
            if self.is_prefix and i == last and path_parts[i].startswith(part):
                continue
            return False
        return True

    def covers(self, mount_parts: list[str]) -> bool:
        """Whether paths this pattern matches can lie under the mount whose segments are given."""
        last = len(self.parts) - 1
        for i, part in enumerate(mount_parts):
            if i > last:
                return self.is_prefix
            if part == self.parts[i] or self.parts[i] == "+":
                continue
            return self.is_prefix and i == last and part.startswith(self.parts[i])
        return True


def _grants(perms: Permissions) -> bool:
    return bool(perms.capabilities) and "deny" not in perms.capabilities


def _priority(
    pattern: str, first_wildcard: int, is_prefix: bool, wildcards: int
) -> tuple[int, bool, int, int, str]:
    """Sort key: among matching wildcard rules, the greatest key wins. In Vault's order:
    a later first wildcard/glob wins; then not ending in '*' wins; then fewer '+' segments;
    then the longer pattern; then the lexicographically greater one."""
    return (first_wildcard, not is_prefix, -wildcards, len(pattern), pattern)


def _is_segment_pattern(path: str) -> bool:
    return path == "+" or "/+" in path or path.startswith("+/")


class ACL:
    """The compiled, immutable result of a set of policies. Build with :meth:`compile`."""

    __slots__ = (
        "_any_segments",
        "_cache",
        "_exact",
        "_prefix",
        "_prefix_lengths",
        "_root",
        "_segments",
        "expires_at",
    )  # fmt: skip

    def __init__(self) -> None:
        self._root = False
        self._exact: dict[str, Permissions] = {}
        self._prefix: dict[str, Permissions] = {}
        self._prefix_lengths: tuple[int, ...] = ()  # distinct prefix lengths, longest first
        self._segments: dict[str, tuple[_SegmentRule, ...]] = {}  # by literal first segment
        self._any_segments: tuple[_SegmentRule, ...] = ()  # patterns starting with '+'
        self._cache: dict[tuple[str, bool], Permissions | None] = {}
        #: Epoch seconds at which the earliest expiring stanza lapses; recompile after it.
        self.expires_at: float | None = None

    @classmethod
    def compile(cls, policies: Sequence[Policy], root: bool = False, *, now: float | None = None) -> ACL:
        acl = cls()
        if root or any(p.name == "root" for p in policies):
            acl._root = True
            return acl
        at = time.time() if now is None else now
        exact: dict[str, _Merged] = {}
        prefix: dict[str, _Merged] = {}
        segment: dict[str, _Merged] = {}
        for policy in policies:
            for rule in policy.rules:
                if rule.expiration is not None:
                    lapses = rule.expiration.timestamp()
                    if lapses <= at:
                        continue
                    acl.expires_at = lapses if acl.expires_at is None else min(acl.expires_at, lapses)
                if _is_segment_pattern(rule.path):
                    table, key = segment, rule.path
                elif rule.path.endswith("*"):
                    table, key = prefix, rule.path[:-1]
                else:
                    table, key = exact, rule.path
                table.setdefault(key, _Merged()).add(rule)
        acl._exact = {k: m.freeze() for k, m in exact.items()}
        acl._prefix = {k: m.freeze() for k, m in prefix.items()}
        acl._prefix_lengths = tuple(sorted({len(k) for k in prefix}, reverse=True))
        buckets: dict[str, list[_SegmentRule]] = {}
        for pattern, merged in segment.items():
            is_prefix = pattern.endswith("*")
            body = pattern[:-1] if is_prefix else pattern
            parts = tuple(body.split("/"))
            priority = _priority(body, pattern.index("+"), is_prefix, parts.count("+"))
            compiled = _SegmentRule(parts, is_prefix, priority, merged.freeze())
            buckets.setdefault("+" if parts[0] == "+" else parts[0], []).append(compiled)
        acl._any_segments = tuple(buckets.pop("+", ()))
        acl._segments = {k: tuple(v) for k, v in buckets.items()}
        return acl

    @property
    def root(self) -> bool:
        return self._root

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at is not None and (time.time() if now is None else now) >= self.expires_at

    def capabilities(self, path: str) -> list[str]:
        """What sys/capabilities answers: sorted names, ["root"] for root, ["deny"] for nothing."""
        if self._root:
            return ["root"]
        # Vault evaluates this as a LIST so that "secret/foo/" also finds a rule for "secret/foo".
        perms = self._lookup(path.lstrip("/"), True)
        if perms is None or "deny" in perms.capabilities or not perms.capabilities:
            return ["deny"]
        return sorted(perms.capabilities)

    def check(
        self, op: Operation, path: str, data: Mapping[str, object] | None = None, *, wrap_ttl: int = 0
    ) -> ACLResult:
        """Authorise ``op`` on ``path`` (no leading '/'; LIST paths end in '/').

        ``wrap_ttl`` is the response-wrapping TTL the client asked for (0 = none): a rule with
        ``max_wrapping_ttl`` therefore makes wrapping mandatory, as in Vault.
        """
        if self._root:
            return _ROOT_RESULT
        if op is Operation.HELP:
            return _HELP_RESULT
        perms = self._lookup(path.lstrip("/"), op is Operation.LIST)
        if perms is None:
            return _NO_MATCH
        caps = perms.capabilities
        needed = _OPERATION_CAPABILITY.get(op)
        if needed is None or needed not in caps or "deny" in caps:
            reason = "permission denied"
        else:
            reason = _wrapping_problem(perms, wrap_ttl)
            if not reason and op in _PARAMETER_OPERATIONS:
                reason = _parameter_problem(perms, data or {})
        return ACLResult(
            allowed=not reason,
            sudo="sudo" in caps,
            capabilities=caps,
            min_wrapping_ttl=perms.min_wrapping_ttl,
            max_wrapping_ttl=perms.max_wrapping_ttl,
            message=reason,
        )

    def has_any_capability_under(self, prefix: str) -> bool:
        """Whether any rule grants something at or below ``prefix`` (a mount path ending in '/').

        Decides which mounts sys/internal/ui/mounts shows a token. Not cached: it is rare and walks
        every rule, unlike :meth:`check`.
        """
        if self._root or self.capabilities(prefix) != ["deny"]:
            return True
        for table in (self._exact, self._prefix):
            if any(key.startswith(prefix) and _grants(perms) for key, perms in table.items()):
                return True
        mount_parts = prefix.rstrip("/").split("/")
        for rule in (*self._any_segments, *(r for rules in self._segments.values() for r in rules)):
            if _grants(rule.permissions) and rule.covers(mount_parts):
                return True
        return False

    def _lookup(self, path: str, listing: bool) -> Permissions | None:
        key = (path, listing)
        try:
            return self._cache[key]
        except KeyError:
            pass
        perms = self._exact.get(path)
        if perms is None and listing:
            perms = self._exact.get(path.removesuffix("/"))
        if perms is None:
            perms = self._wildcard(path)
        # A LIST of "foo/" may be governed by a rule for "foo"; it can only be a shorter, so
        # lower-priority, match than any found above, hence this is tried last.
        if perms is None and listing and path.endswith("/"):
            perms = self._wildcard(path[:-1])
        if len(self._cache) >= _CACHE_SIZE:
            del self._cache[next(iter(self._cache))]
        self._cache[key] = perms
        return perms

    def _wildcard(self, path: str) -> Permissions | None:
        best: Permissions | None = None
        best_priority: tuple[int, bool, int, int, str] | None = None
        size = len(path)
        for n in self._prefix_lengths:
            if n <= size:
                found = self._prefix.get(path[:n])
                if found is not None:
                    best, best_priority = found, _priority(path[:n], n, True, 0)
                    break
        if not self._segments and not self._any_segments:
            return best
        parts = path.split("/")
        for rule in (*self._segments.get(parts[0], ()), *self._any_segments):
            if (best_priority is None or rule.priority > best_priority) and rule.matches(parts):
                best, best_priority = rule.permissions, rule.priority
        return best


def _wrapping_problem(perms: Permissions, wrap_ttl: int) -> str:
    if perms.max_wrapping_ttl and (not wrap_ttl or wrap_ttl > perms.max_wrapping_ttl):
        return f"response wrapping with a TTL of at most {perms.max_wrapping_ttl}s is required"
    if perms.min_wrapping_ttl and (not wrap_ttl or wrap_ttl < perms.min_wrapping_ttl):
        return f"response wrapping with a TTL of at least {perms.min_wrapping_ttl}s is required"
    return ""


def _parameter_problem(perms: Permissions, data: Mapping[str, object]) -> str:
    """Why ``data`` breaks the rule's parameter constraints, or "" if it doesn't.

    Policy parameter names are lowercase; request names are lowercased before lookup. Required
    names are looked up lowercased but request keys are not (Vault's behaviour: "NAME" does not
    satisfy required "name").
    """
    for name in perms.required_parameters:
        if name.lower() not in data:
            return f'required parameter "{name}" is missing'
    if not data:
        return ""
    denied = perms.denied_parameters
    if denied:
        if "*" in denied:
            return "no parameters may be set on this path"
        for name, value in data.items():
            values = denied.get(name.lower())
            if values is not None and _value_in(value, values):
                return f'parameter "{name}" is denied' + (" for this value" if values else "")
    allowed = perms.allowed_parameters
    if not allowed:
        return ""
    any_name = "*" in allowed
    if any_name and len(allowed) == 1:
        return ""
    for name, value in data.items():
        values = allowed.get(name.lower())
        if values is None:
            if not any_name:
                return f'parameter "{name}" is not allowed'
        elif not _value_in(value, values):
            return f'value of parameter "{name}" is not allowed'
    return ""


def _value_in(value: object, values: tuple[object, ...]) -> bool:
    """Whether ``value`` is one of ``values``; an empty tuple means any value."""
    if not values:
        return True
    return any(_value_matches(value, item) for item in values)


def _value_matches(value: object, item: object) -> bool:
    if isinstance(item, str) and isinstance(value, str):
        return _glob_match(item, value)
    # bool is an int in Python; keep true from matching 1 (Vault compares types strictly).
    if isinstance(item, bool) or isinstance(value, bool):
        return isinstance(item, bool) and isinstance(value, bool) and item is value
    return item == value


def _glob_match(pattern: str, value: str) -> bool:
    """Vault's parameter-value glob: a '*' at the start and/or end; a lone "*" is literal."""
    if len(pattern) < 2:
        return value == pattern
    starts, ends = pattern.startswith("*"), pattern.endswith("*")
    if starts and ends:
        return pattern[1:-1] in value
    if starts:
        return value.endswith(pattern[1:])
    if ends:
        return value.startswith(pattern[:-1])
    return value == pattern

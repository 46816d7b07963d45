"""ACL policies: the document model, its HCL/JSON parser, and the store that persists them.

A policy document is a list of ``path "<pattern>" { ... }`` stanzas, written in HCL or in the
equivalent JSON (``{"path": {"<pattern>": {...}}}``). :func:`parse_policy` turns it into an
immutable :class:`Policy`; :mod:`strongroom.core.acl` compiles a set of policies into the ACL that
authorises requests. Parsing is a sync pure function; only :class:`PolicyStore` does I/O.

Templated paths (``{{identity.entity.id}}``) are not supported: such text is taken literally.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from strongroom import hcl
from strongroom.core.acl import ACL
from strongroom.durations import parse_duration
from strongroom.errors import InvalidRequest
from strongroom.lifecycle import Part
from strongroom.logical import Storage

__all__ = [
    "CAPABILITIES",
    "DEFAULT_POLICY",
    "POLICY_PREFIX",
    "PathRules",
    "Policy",
    "PolicyStore",
    "normalize_name",
    "parse_policy",
]

#: Every capability a path stanza may grant. ``scan`` (recursive list) exists in OpenBao; Vault's
#: ``subscribe`` and ``recover`` do not, and OpenBao rejects them, so we do too.
CAPABILITIES = frozenset({"create", "read", "update", "patch", "delete", "list", "scan", "sudo", "deny"})

# The pre-0.5 ``policy = "..."`` shorthand inside a path stanza; added to any ``capabilities``.
_LEGACY: dict[str, frozenset[str]] = {
    "deny": frozenset({"deny"}),
    "read": frozenset({"read", "list"}),
    "write": frozenset({"create", "read", "update", "delete", "list"}),
    "sudo": frozenset({"create", "read", "update", "delete", "list", "sudo"}),
}

_TOP_LEVEL_KEYS = frozenset({"name", "path"})
_PATH_KEYS = frozenset({
    "comment", "policy", "capabilities", "allowed_parameters", "denied_parameters",
    "required_parameters", "min_wrapping_ttl", "max_wrapping_ttl", "expiration",
    # Enterprise-only in Vault; OpenBao parses and ignores them, and so do we.
    "mfa_methods", "control_group",
})  # fmt: skip
# OpenBao-specific keys we cannot enforce yet. Refused rather than ignored: a policy author relying on
# them would otherwise get broader access than they wrote down.
_UNSUPPORTED_PATH_KEYS = frozenset({"pagination_limit", "list_scan_response_keys_filter_path"})

#: The built-in ``default`` policy, attached to tokens unless they opt out. The same grants as
#: OpenBao's, minus the identity-templated entity paths (templating is not supported). Declared as
#: data so the server can compile it at start-up without loading the HCL parser (~120 ms); the HCL
#: text operators read back is generated from the same data.
_DEFAULT_GRANTS: tuple[tuple[str, tuple[tuple[str, tuple[str, ...]], ...]], ...] = (
    ("A token may inspect, renew and revoke itself, and ask what it may do on a path.", (
        ("auth/token/lookup-self", ("read",)), ("auth/token/renew-self", ("update",)),
        ("auth/token/revoke-self", ("update",)), ("sys/capabilities-self", ("update",)))),
    ("The UI reads the token's merged ACL here; the answer's format is internal.", (
        ("sys/internal/ui/resultant-acl", ("read",)),)),
    ("Lease operations that need the lease ID, which its holder already knows.", (
        ("sys/leases/renew", ("update",)), ("sys/leases/lookup", ("update",)))),
    ("Every token owns a private cubbyhole.", (
        ("cubbyhole/*", ("create", "read", "update", "delete", "list")),)),
    ("Response wrapping: wrap a value, inspect a wrapping token, unwrap one.", (
        ("sys/wrapping/wrap", ("update",)), ("sys/wrapping/lookup", ("update",)),
        ("sys/wrapping/unwrap", ("update",)))),
    ("Hashing helpers.", (("sys/tools/hash", ("update",)), ("sys/tools/hash/*", ("update",)))),
    ("The authorize endpoint of any OIDC provider.", (
        ("identity/oidc/provider/+/authorize", ("read", "update")),)),
)


def _grants_text() -> str:
    groups = []
    for comment, grants in _DEFAULT_GRANTS:
        lines = [f"# {comment}"]
        for path, caps in grants:
            quoted = ", ".join(f'"{c}"' for c in caps)
            lines.append(f'path "{path}" {{ capabilities = [{quoted}] }}')
        groups.append("\n".join(lines) + "\n")
    return "\n".join(groups)


DEFAULT_POLICY = _grants_text()


def default_policy() -> Policy:
    """The compiled default policy, built from the same data as its text (no HCL parse)."""
    rules = tuple(_path_rules(path, {"capabilities": list(caps)})
                  for _, grants in _DEFAULT_GRANTS for path, caps in grants)
    return Policy(name=_DEFAULT, text=DEFAULT_POLICY, rules=rules)


@dataclass(frozen=True, slots=True)
class PathRules:
    """One ``path`` stanza. ``path`` is the pattern as written, minus one leading '/'.

    Parameter names in ``allowed_parameters``/``denied_parameters`` are lowercased (Vault compares
    them case-insensitively); an empty value tuple means "any value".
    """

    path: str
    capabilities: frozenset[str]
    allowed_parameters: dict[str, tuple[object, ...]] = field(default_factory=dict)
    denied_parameters: dict[str, tuple[object, ...]] = field(default_factory=dict)
    required_parameters: tuple[str, ...] = ()
    min_wrapping_ttl: int = 0  # seconds; 0 = no bound
    max_wrapping_ttl: int = 0
    expiration: datetime | None = None  # the stanza stops applying at this instant (aware, UTC)


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    text: str  # the document exactly as the operator wrote it; sys/policy reads it back verbatim
    rules: tuple[PathRules, ...] = ()


def parse_policy(name: str, text: str) -> Policy:
    """Parse an HCL or JSON policy document. Raises InvalidRequest naming the problem."""
    name = normalize_name(name)
    if not text.strip():
        raise InvalidRequest("'policy' parameter not supplied or empty")
    try:
        stanzas = _json_stanzas(text) if text.lstrip().startswith("{") else _hcl_stanzas(text)
        rules = tuple(_path_rules(pattern, body) for pattern, body in stanzas)
    except _ParseError as e:
        raise InvalidRequest(f"failed to parse policy: {e}") from None
    return Policy(name=name, text=text, rules=rules)


def normalize_name(name: str) -> str:
    """Policy names are case-insensitive (stored lowercase). '/' is allowed, as in Vault, but not
    empty, "." or ".." segments: the name becomes part of a storage key."""
    name = name.strip().lower()
    if not name.isprintable():  # NUL or control characters (OpenBao: 400)
        raise InvalidRequest("policy name cannot contain non-printable characters")
    if not name or any(seg in ("", ".", "..") for seg in name.split("/")):
        raise InvalidRequest(f'invalid policy name "{name}"')
    return name


class _ParseError(Exception):
    pass


def _check_keys(where: str, keys: Sequence[str], valid: frozenset[str]) -> None:
    bad = [k for k in keys if k not in valid]
    if bad:
        raise _ParseError(where + ", ".join(f'invalid key "{k}"' for k in bad))


def _hcl_stanzas(text: str) -> list[tuple[str, Mapping[str, Any]]]:
    try:
        doc = hcl.loads(text)
    except hcl.HCLError as e:
        raise _ParseError(str(e)) from None
    _check_keys("", list(doc), _TOP_LEVEL_KEYS)
    blocks = doc.get("path", [])
    if not isinstance(blocks, list):
        raise _ParseError('"path" must be a block: path "<pattern>" { ... }')
    stanzas: list[tuple[str, Mapping[str, Any]]] = []
    for block in blocks:
        if not isinstance(block, dict) or isinstance(block, hcl.Block) or len(block) != 1:
            raise _ParseError('path block needs exactly one label: path "<pattern>" { ... }')
        ((pattern, body),) = block.items()
        if not isinstance(body, hcl.Block):
            raise _ParseError(f'path "{pattern}": path block needs exactly one label')
        stanzas.append((pattern, body))
    return stanzas


def _json_stanzas(text: str) -> list[tuple[str, Mapping[str, Any]]]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise _ParseError(f"At {e.lineno}:{e.colno}: {e.msg}") from None
    if not isinstance(doc, dict):
        raise _ParseError("does not contain a root object")
    _check_keys("", list(doc), _TOP_LEVEL_KEYS)
    raw = doc.get("path", {})
    # Vault's JSON form allows both {"path": {...}} and {"path": [{...}, {...}]}.
    objects = raw if isinstance(raw, list) else [raw]
    stanzas: list[tuple[str, Mapping[str, Any]]] = []
    for obj in objects:
        if not isinstance(obj, dict):
            raise _ParseError('"path" must map patterns to objects')
        for pattern, body in obj.items():
            if not isinstance(body, dict):
                raise _ParseError(f'path "{pattern}": expected an object')
            stanzas.append((pattern, body))
    return stanzas


def _path_rules(pattern: str, body: Mapping[str, Any]) -> PathRules:
    where = f'path "{pattern}": '
    _check_keys(where, list(body), _PATH_KEYS | _UNSUPPORTED_PATH_KEYS)
    unsupported = sorted(_UNSUPPORTED_PATH_KEYS & body.keys())
    if unsupported:
        raise _ParseError(f'{where}"{unsupported[0]}" is not supported')
    # Paths in requests never start with '/', so a leading one in the policy is dropped.
    path = pattern.removeprefix("/")
    if "+*" in path:
        raise _ParseError(f"{where}invalid use of wildcards ('+*' is forbidden)")

    caps = set(_string_list(where, "capabilities", body.get("capabilities", [])))
    legacy = body.get("policy")
    if legacy is not None:
        if not isinstance(legacy, str) or legacy not in _LEGACY:
            raise _ParseError(f'{where}invalid policy "{legacy}"')
        caps = set(_LEGACY[legacy]) if legacy == "deny" else caps | _LEGACY[legacy]
    for cap in sorted(caps):
        if cap not in CAPABILITIES:
            raise _ParseError(f'{where}invalid capability "{cap}"')
    expiration = _expiration(where, body.get("expiration"))
    if "deny" in caps:
        # Deny overrides everything else in the stanza; Vault skips parsing the rest, and so do we.
        return PathRules(path=path, capabilities=frozenset({"deny"}), expiration=expiration)

    min_ttl = _ttl(where, "min_wrapping_ttl", body.get("min_wrapping_ttl"))
    max_ttl = _ttl(where, "max_wrapping_ttl", body.get("max_wrapping_ttl"))
    if min_ttl and max_ttl and max_ttl < min_ttl:
        raise _ParseError(f"{where}max_wrapping_ttl cannot be less than min_wrapping_ttl")
    return PathRules(
        path=path,
        capabilities=frozenset(caps),
        allowed_parameters=_parameters(where, "allowed_parameters", body.get("allowed_parameters")),
        denied_parameters=_parameters(where, "denied_parameters", body.get("denied_parameters")),
        required_parameters=tuple(
            _string_list(where, "required_parameters", body.get("required_parameters", []))
        ),
        min_wrapping_ttl=min_ttl,
        max_wrapping_ttl=max_ttl,
        expiration=expiration,
    )


def _string_list(where: str, key: str, value: object) -> list[str]:
    if not isinstance(value, list):
        raise _ParseError(f"{where}{key} must be a list of strings")
    return [v if isinstance(v, str) else json.dumps(v) for v in value]


def _parameters(where: str, key: str, value: object) -> dict[str, tuple[object, ...]]:
    if value is None:
        return {}
    # `allowed_parameters { ... }` (block syntax) arrives as a list of block bodies.
    if isinstance(value, list) and all(isinstance(v, hcl.Block) for v in value):
        value = {k: v for block in value for k, v in block.items()}
    if not isinstance(value, dict):
        raise _ParseError(f"{where}{key} must be an object mapping parameter names to lists of values")
    out: dict[str, tuple[object, ...]] = {}
    for name, values in value.items():
        if not isinstance(values, list):
            raise _ParseError(f'{where}{key}: value of "{name}" must be a list')
        out[str(name).lower()] = tuple(values)
    return out


def _ttl(where: str, key: str, value: object) -> int:
    if value is None:
        return 0
    try:
        return parse_duration(value, name=key)
    except InvalidRequest as e:
        raise _ParseError(f"{where}error parsing {key}: {e}") from None


def _expiration(where: str, value: object) -> datetime | None:
    if value is None:
        return None
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
        when = datetime.fromisoformat(value) if isinstance(value, str) else None
    except (ValueError, OverflowError, OSError):
        when = None
    if when is None:
        raise _ParseError(f"{where}invalid expiration time: {value!r} is not an RFC 3339 timestamp")
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


# ---------------------------------------------------------------------------------------------
# Persistence

#: Storage key prefix (inside the view handed to the store): ``policy/<name>`` holds the JSON
#: object ``{"name": <name>, "policy": <document text>}``. The text is re-parsed on load, so a
#: parser fix applies to stored policies without a migration.
POLICY_PREFIX = "policy/"

_ROOT = "root"
_DEFAULT = "default"
# Built in, never stored, never writable: the only policy of a response-wrapping token. Unwrapping
# itself goes through sys/wrapping/*, which needs no policy; this keeps Vault's legacy read path.
_WRAPPING = "response-wrapping"
_WRAPPING_TEXT = 'path "cubbyhole/response" { capabilities = ["read"] }\n'
_BUILTIN = (_ROOT, _WRAPPING)
_ACL_CACHE_SIZE = 1024  # distinct policy sets; tokens share a handful of them in practice


class PolicyStore(Part):
    """ACL policies kept in ``view``, cached in memory, and compiled ACLs cached by policy set.

    ``root`` is never stored: it exists implicitly, cannot be written or deleted, and yields the
    root ACL. ``default`` is written by :meth:`setup` if absent and cannot be deleted, but an
    operator may rewrite it (and we never overwrite their version).
    """

    def __init__(self, view: Storage) -> None:
        self._view = view
        self._policies: dict[str, Policy | None] = {}  # None caches "not in storage"
        self._acls: dict[frozenset[str], ACL] = {}
        self._root_acl = ACL.compile((), root=True)
        self.generation = 0  # bumped on every change; compiled ACLs from older generations are dropped

    async def setup(self) -> None:
        self.forget()  # nothing read before a seal is trusted after it
        if await self.get(_DEFAULT) is None:
            await self.put(_DEFAULT, DEFAULT_POLICY, compiled=default_policy())

    async def get(self, name: str) -> Policy | None:
        name = normalize_name(name)
        if name == _ROOT:
            return Policy(name=_ROOT, text="")
        if name == _WRAPPING:
            return parse_policy(_WRAPPING, _WRAPPING_TEXT)
        if name in self._policies:
            return self._policies[name]
        generation = self.generation
        raw = await self._view.get(POLICY_PREFIX + name)
        policy = None if raw is None else parse_policy(name, str(orjson.loads(raw)["policy"]))
        if generation == self.generation:  # else a write raced this read: don't cache what it replaced
            self._policies[name] = policy
        return policy

    async def put(self, name: str, text: str, *, compiled: Policy | None = None) -> Policy:
        """Store a policy. ``compiled`` is ``text`` already parsed (the built-in default)."""
        name = normalize_name(name)
        if name in _BUILTIN:
            raise InvalidRequest(f'cannot update "{name}" policy')
        policy = compiled or parse_policy(name, text)  # raises before anything is written
        await self._view.put(POLICY_PREFIX + name, orjson.dumps({"name": name, "policy": text}))
        self._policies[name] = policy
        self._changed()
        return policy

    async def delete(self, name: str) -> None:
        name = normalize_name(name)
        if name in _BUILTIN:
            raise InvalidRequest(f'cannot delete "{name}" policy')
        if name == _DEFAULT:
            raise InvalidRequest("cannot delete default policy")  # OpenBao's wording, unquoted
        await self._view.delete(POLICY_PREFIX + name)
        self._policies[name] = None
        self._changed()

    async def _names(self, folder: str) -> list[str]:
        # Names may contain '/': each folder's names follow the plain names of its parent, as in bao.
        keys = await self._view.list(POLICY_PREFIX + folder)
        names = sorted(folder + k for k in keys if not k.endswith("/"))
        for sub in sorted(k for k in keys if k.endswith("/")):
            names += await self._names(folder + sub)
        return names

    async def list(self) -> list[str]:
        """Stored policy names, sorted, then "root" last (the order Vault answers with)."""
        return await self._names("") + [_ROOT]

    async def acl(self, names: Sequence[str]) -> ACL:
        """The compiled ACL for a token's policy names; unknown names grant nothing."""
        key = frozenset(n.strip().lower() for n in names)
        if _ROOT in key:
            return self._root_acl
        cached = self._acls.get(key)
        if cached is not None and not cached.expired():
            return cached
        generation = self.generation
        policies: list[Policy] = []
        for name in sorted(key):
            try:
                policy = await self.get(name)
            except InvalidRequest:  # a malformed name can never have been stored
                continue
            if policy is not None:
                policies.append(policy)
        acl = ACL.compile(policies)
        if generation == self.generation:  # a concurrent change would make this result stale
            if len(self._acls) >= _ACL_CACHE_SIZE:
                self._acls.clear()
            self._acls[key] = acl
        return acl

    async def invalidate(self, key: str) -> None:
        """A policy's record changed elsewhere (``key`` relative to this store's view)."""
        if key.startswith(POLICY_PREFIX):
            self.forget(key[len(POLICY_PREFIX):])

    async def deactivate(self) -> None:
        self.forget()

    def forget(self, name: str | None = None) -> None:
        """Forget cached state: all of it, or one policy's."""
        if name is None:
            self._policies.clear()
        else:
            self._policies.pop(name.strip().lower(), None)
        self._changed()

    def _changed(self) -> None:
        self.generation += 1
        self._acls.clear()

"""``user_lockout "all"|"userpass"|"approle"|"ldap" { ... }`` stanzas (OpenBao's user lockout).

Each stanza may set ``lockout_threshold`` (failed logins before a lock), ``lockout_duration``,
``lockout_counter_reset`` (durations) and ``disable_lockout``. As OpenBao: a method's stanza takes
what it leaves unset from the "all" stanza, which takes what it leaves unset from the defaults
(5 failures, 15 minutes, 15 minutes, enabled). With any stanza, the result has an "all" entry;
without one it is empty (the defaults everywhere).
"""

from __future__ import annotations

from dataclasses import dataclass

from strongroom.config.values import _Bad, _blocks, _bool, _duration

LOCKOUT_TYPES = ("all", "userpass", "approle", "ldap")
_KEYS = ("lockout_threshold", "lockout_duration", "lockout_counter_reset", "disable_lockout")


@dataclass(frozen=True, slots=True)
class UserLockoutConfig:
    """One method's lockout settings (durations in seconds)."""

    lockout_threshold: int = 5
    lockout_duration: int = 900
    lockout_counter_reset: int = 900
    disable_lockout: bool = False


def _threshold(value: object, key: str) -> int:
    text = str(value).strip() if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
    if not text.isascii() or not text.isdigit() or len(text) > 20 or int(text) >= 1 << 64:
        raise _Bad(key, f"error parsing {key}: must be a whole number of failed logins, not {value!r}")
    return int(text)


def _parse(labels: tuple[str, ...], body: dict[str, object]) -> tuple[str, dict[str, object]]:
    kind = labels[0].lower()
    if kind not in LOCKOUT_TYPES:
        raise _Bad("user_lockout", f'user_lockout: unsupported auth type "{labels[0]}" '
                                   f'(one of {", ".join(LOCKOUT_TYPES)})')
    out: dict[str, object] = {}
    for key, value in body.items():
        where = f"user_lockout.{key}"
        if key == "lockout_threshold":
            out[key] = _threshold(value, where)
        elif key in ("lockout_duration", "lockout_counter_reset"):
            out[key] = _duration(value, where)
        elif key == "disable_lockout":
            out[key] = _bool(value, where)
        else:
            raise _Bad(where, f'unknown key "{where}"')
    return kind, out


class LockoutStanzas:
    """The user_lockout stanzas of every file, by type; a later stanza of a type replaces an
    earlier one, as OpenBao's merge does."""

    def __init__(self) -> None:
        self.raw: dict[str, dict[str, object]] = {}

    def add(self, value: object) -> None:
        for labels, body in _blocks(value, 1, 'user_lockout "TYPE" { ... }'):
            kind, settings = _parse(labels, body)
            self.raw[kind] = settings

    def build(self) -> dict[str, UserLockoutConfig]:
        if not self.raw:
            return {}  # no stanza: the defaults everywhere
        base = UserLockoutConfig(**self.raw.get("all", {}))  # type: ignore[arg-type]
        out = {"all": base}
        for kind, settings in self.raw.items():
            if kind != "all":
                out[kind] = UserLockoutConfig(**{k: settings.get(k, getattr(base, k)) for k in _KEYS})  # type: ignore[arg-type]
        return out

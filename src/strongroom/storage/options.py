"""Reading a ``storage "KIND" { ... }`` stanza's options (strings from the config file), with
errors that name the backend and the option: one reader for every backend that takes them."""

from __future__ import annotations

from typing import Any

from strongroom.durations import parse_duration
from strongroom.errors import InvalidRequest

__all__ = ["StorageOptions"]


class StorageOptions:
    def __init__(self, kind: str, options: dict[str, Any]) -> None:
        self.kind = kind
        self.options = options

    def _raw(self, name: str) -> Any:
        raw = self.options.get(name)
        return None if raw is None or raw == "" else raw

    def seconds(self, name: str, default: float) -> float:
        """A positive duration ("30s", "1m", 30)."""
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            seconds = parse_duration(raw, name=name)
        except Exception as e:  # noqa: BLE001 - any parse failure is a config error
            raise InvalidRequest(f'{self.kind} storage: invalid "{name}": {e}') from None
        if seconds <= 0:
            raise InvalidRequest(f'{self.kind} storage: "{name}" must be positive')
        return float(seconds)

    def count(self, name: str, default: int, *, minimum: int) -> int:
        """An integer of at least ``minimum``."""
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except (TypeError, ValueError):
            raise InvalidRequest(f'{self.kind} storage: "{name}" must be an integer, not {raw!r}') from None
        if value < minimum:
            raise InvalidRequest(f'{self.kind} storage: "{name}" must be at least {minimum}')
        return value

    def flag(self, name: str) -> bool:
        raw = str(self.options.get(name, "false")).strip().lower()
        if raw in ("true", "1"):
            return True
        if raw in ("false", "0", ""):
            return False
        raise InvalidRequest(f'{self.kind} storage: "{name}" must be true or false, not {raw!r}')

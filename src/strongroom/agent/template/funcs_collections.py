"""consul-template's membership functions: contains and in (a value in a list, a substring in a string, with
Go's type-strict equality) and containsAll, containsAny, containsNone, containsNotAll."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from strongroom.agent.template.gofunc import GoFunc


def _contains(v: Any, lst: Any) -> bool:
    """consul-template's ``in(l, v)``."""
    if isinstance(lst, list):
        for x in lst:
            if isinstance(x, bool) or isinstance(v, bool):
                continue
            if isinstance(x, int) and isinstance(v, int) or isinstance(x, float) and isinstance(v, float):
                if x == v:
                    return True
            elif isinstance(x, str) and isinstance(v, str) and type(x) is type(v) and x == v:
                return True
        return False
    if isinstance(lst, str) and isinstance(v, str):
        return type(lst) is type(v) and v in lst
    return False


def _contains_some(ret_true: bool, invert: bool) -> Callable[[list[Any], Any], bool]:
    def fn(values: list[Any], lst: Any) -> bool:
        for v in values:
            if _contains(v, lst) != invert:
                return not ret_true
        return ret_true
    return fn


def _in(lst: Any, v: Any) -> bool:
    return _contains(v, lst)



COLLECTION_FUNCTIONS: dict[str, GoFunc] = {
    "in": GoFunc(_in, ("any", "any")),
    "containsAll": GoFunc(_contains_some(True, True), ("[]any", "any")),
    "containsAny": GoFunc(_contains_some(False, False), ("[]any", "any")),
    "containsNone": GoFunc(_contains_some(True, False), ("[]any", "any")),
    "containsNotAll": GoFunc(_contains_some(False, True), ("[]any", "any")),
    "contains": GoFunc(_contains, ("any", "any")),
}

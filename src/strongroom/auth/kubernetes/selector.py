"""bound_service_account_namespace_selector: a Kubernetes LabelSelector (JSON) that a namespace's
labels must satisfy, read from the Kubernetes API at login (``GET /api/v1/namespaces/NAME``).

Semantics of meta/v1 LabelSelector: every ``matchLabels`` pair must be present and equal, and
every ``matchExpressions`` requirement hold (``In``, ``NotIn``, ``Exists``, ``DoesNotExist``);
an empty selector selects every namespace, as in Kubernetes.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from strongroom.errors import InvalidRequest

_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
# A namespace name is a DNS label; anything else never reaches a URL.
NAMESPACE_RE = re.compile(r"^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$")


def parse_selector(text: str) -> dict[str, Any]:
    """The selector as {"matchLabels": {...}, "matchExpressions": [...]}; InvalidRequest if malformed."""
    bad = InvalidRequest('invalid "bound_service_account_namespace_selector" configured')
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise bad from None
    if not isinstance(doc, dict) or set(doc) - {"matchLabels", "matchExpressions"}:
        raise bad
    labels = doc.get("matchLabels") or {}
    exprs = doc.get("matchExpressions") or []
    if not isinstance(labels, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise bad
    if not isinstance(exprs, list):
        raise bad
    for e in exprs:
        if not isinstance(e, dict) or not isinstance(e.get("key"), str) or e.get("operator") not in _OPERATORS:
            raise bad
        values = e.get("values") or []
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise bad
        if (e["operator"] in ("In", "NotIn")) != bool(values):
            raise bad  # In/NotIn need values; Exists/DoesNotExist take none
    return {"matchLabels": labels, "matchExpressions": exprs}


def matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    for key, value in selector["matchLabels"].items():
        if labels.get(key) != value:
            return False
    for e in selector["matchExpressions"]:
        key, op, values = e["key"], e["operator"], e.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True

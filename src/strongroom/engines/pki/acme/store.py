"""ACME records in the mount's storage, under ``acme/`` (JSON through the barrier).

    config/acme                          the ACME configuration (Vault's key)
    acme/accounts/KID                    account: status, contact, jwk, thumbprint, directory
    acme/account-keys/THUMBPRINT         -> KID (one account per key)
    acme/orders/ID                       order: account, identifiers, authorizations, status, cert
    acme/account-orders/KID/ID           index of an account's orders (acme/orders lists it)
    acme/authz/ID                        authorization with its challenges
    acme/serials/SERIAL                  certificate issued through ACME -> account, order, revoked
    acme/eab/ID                          an unused external account binding (eab.py), its HMAC key

Times are Unix seconds; they are rendered as RFC 3339 on the wire.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

from strongroom.logical import Storage

CONFIG_KEY = "config/acme"
ACCOUNTS = "acme/accounts/"
ACCOUNT_KEYS = "acme/account-keys/"
ORDERS = "acme/orders/"
ACCOUNT_ORDERS = "acme/account-orders/"
AUTHZ = "acme/authz/"
SERIALS = "acme/serials/"


async def get(storage: Storage, key: str) -> dict[str, Any] | None:
    raw = await storage.get(key)
    if raw is None:
        return None
    value = orjson.loads(raw)
    return value if isinstance(value, dict) else None


async def put(storage: Storage, key: str, value: dict[str, Any]) -> None:
    await storage.put(key, orjson.dumps(value))


def rfc3339(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def serial_key(serial: str | int) -> str:
    """A serial number however written (int, "3a:5f", "3A5F") as the index key: lowercase hex."""
    value = serial if isinstance(serial, int) else int(serial.replace(":", "").replace("-", ""), 16)
    return SERIALS + format(value, "x")

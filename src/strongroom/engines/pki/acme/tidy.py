"""Tidy of ACME state (what Vault's ``tidy`` does with ``tidy_acme``): orders, with their
authorizations and index entries, are deleted once they ended more than ``safety_buffer`` ago.
An order ends when it expires, or, once finalized, when its certificate expires (until then a
client may still download or revoke it). Runs from the pki engine's tidy, never per request; its
cost grows with the number of orders stored, which is what tidy is for."""

from __future__ import annotations

from cryptography import x509

from strongroom.engines.pki.acme import store
from strongroom.logical import Storage

#: Vault's default acme_account_safety_buffer: 30 days.
DEFAULT_SAFETY_BUFFER = 30 * 24 * 3600.0


def _ended(order: dict[str, object]) -> float:
    if order.get("status") == "valid" and isinstance(order.get("certificate"), str):
        try:
            cert = x509.load_pem_x509_certificate(str(order["certificate"]).encode())
            return cert.not_valid_after_utc.timestamp()
        except ValueError:
            pass
    expires = order.get("expires")
    return float(expires) if isinstance(expires, (int, float)) else 0.0


async def acme_tidy(storage: Storage, now: float, safety_buffer: float = DEFAULT_SAFETY_BUFFER) -> int:
    """Delete the orders that ended more than ``safety_buffer`` seconds before ``now``; the count."""
    deleted = 0
    for order_id in await storage.list(store.ORDERS):
        order = await store.get(storage, store.ORDERS + order_id)
        if order is None or _ended(order) + safety_buffer > now:
            continue
        authorizations = order.get("authorizations")
        for authz_id in authorizations if isinstance(authorizations, list) else []:
            await storage.delete(store.AUTHZ + str(authz_id))
        if order.get("serial_number"):
            await storage.delete(store.serial_key(str(order["serial_number"])))
        await storage.delete(f"{store.ACCOUNT_ORDERS}{order.get('account')}/{order_id}")
        await storage.delete(store.ORDERS + order_id)
        deleted += 1
    return deleted

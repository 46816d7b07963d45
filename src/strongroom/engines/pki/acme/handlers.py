"""The ACME path table (RFC 8555 §7) under a pki mount, in Vault's four directory flavours:
``acme/``, ``roles/ROLE/acme/``, ``issuer/REF/acme/`` and ``issuer/REF/roles/ROLE/acme/``.
endpoint.py has what every endpoint shares, accounts.py and orders.py the endpoints."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strongroom.engines.pki.acme.accounts import account, key_change, new_account
from strongroom.engines.pki.acme.endpoint import ID, NAME, directory, new_nonce
from strongroom.engines.pki.acme.orders import (
    authorization,
    certificate,
    challenge,
    finalize,
    get_order,
    list_orders,
    new_order,
    revoke_cert,
)
from strongroom.framework import Handler, Op, Path

if TYPE_CHECKING:
    from strongroom.engines.pki.acme.ca import AcmeCA


PREFIXES = ["", f"roles/(?P<role>{NAME})/", f"issuer/(?P<issuer_ref>{NAME})/",
            f"issuer/(?P<issuer_ref>{NAME})/roles/(?P<role>{NAME})/"]

ENDPOINTS: list[tuple[str, dict[Op, Handler[AcmeCA]], str]] = [
    ("directory", {Op.READ: directory}, "The ACME directory (RFC 8555 §7.1.1)."),
    ("new-nonce", {Op.READ: new_nonce, Op.HEADER: new_nonce}, "A fresh anti-replay nonce."),
    ("new-account", {Op.UPDATE: new_account}, "Create or find an ACME account."),
    (f"account/{ID}", {Op.UPDATE: account}, "Read, update or deactivate an ACME account."),
    ("key-change", {Op.UPDATE: key_change}, "Roll over an account's key."),
    ("new-order", {Op.UPDATE: new_order}, "Create an order for a certificate."),
    ("orders", {Op.UPDATE: list_orders}, "The signing account's orders."),
    (f"account/{ID}/orders", {Op.UPDATE: list_orders}, "An account's orders (its orders URL)."),
    (f"order/{ID}", {Op.UPDATE: get_order}, "An order."),
    (f"order/{ID}/finalize", {Op.UPDATE: finalize}, "Finalize an order with a CSR."),
    (f"order/{ID}/cert", {Op.UPDATE: certificate}, "Download an order's certificate chain."),
    (f"authorization/{ID}", {Op.UPDATE: authorization}, "An authorization."),
    (f"challenge/{ID}/(?:http-01|dns-01|tls-alpn-01)", {Op.UPDATE: challenge}, "Answer a challenge."),
    ("revoke-cert", {Op.UPDATE: revoke_cert}, "Revoke a certificate issued through ACME."),
]


def acme_endpoint_paths() -> list[Path[AcmeCA]]:
    return [Path(f"{prefix}acme/{suffix}", operations=ops, unauthenticated=True, synopsis=synopsis)
            for prefix in PREFIXES for suffix, ops, synopsis in ENDPOINTS]

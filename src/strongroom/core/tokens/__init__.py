"""The token store and the auth/token/ backend.

    store.py      TokenStore: lookup, accessors, create (the parent/child tree), use counts, renew, roles
    records.py    its storage layout, salted hashing, entry cache and lock stripes (TokenStore's base)
    revocation.py revoke (subtree or orphaning), expired tokens in the background, quarantine
    entry.py      TokenEntry (storage format, lookup and auth shapes) and token/policy helpers
    ttl.py        TTL arithmetic for creation and renewal (pure)
    create.py     auth/token/create* and the policy rules for who may mint what
    roles.py      TokenRole and auth/token/roles/*
    paths.py      the auth/token/* path table: token_backend()
"""

from strongroom.core.tokens.entry import TokenEntry, sanitize_policies
from strongroom.core.tokens.paths import TokenBackend, token_backend
from strongroom.core.tokens.roles import TokenRole
from strongroom.core.tokens.store import TokenStore

__all__ = ["TokenBackend", "TokenEntry", "TokenRole", "TokenStore", "sanitize_policies", "token_backend"]

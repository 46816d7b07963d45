"""Lease: what the expiration manager keeps about one secret or token lease, and where it keeps it.

Storage layout inside the manager's barrier-encrypted view (``sys/expire/``)::

    id/<lease id>                      the Lease as JSON. Authoritative: a lease exists iff this does.
                                       Keyed by the lease id itself so LIST sys/leases/lookup/<prefix>
                                       is one storage list.
    due/<bucket>/<expire ms>-<digest>  expiry index, value the lease id. <bucket> is the expiry time
                                       divided by the store's bucket width (see "Bucket width"), so
                                       restore after unseal lists keys and reads nothing for leases
                                       that are not due soon; <expire ms> lets the scheduler order the
                                       leases of a bucket without decrypting anything.
    token/<token id>/<digest>          the leases a token holds (value the lease id), so revoking the
                                       token finds them without a scan. <token id> is the token
                                       store's salted hash, never the token.
    salt                               32 random bytes: the HMAC key for token lease ids.
    layout                             {"bucket_seconds": N}: the bucket width of this store's due/ keys.

<digest> is a SHA-256 of the lease id (not secret: lease ids are not credentials; the digest only
flattens the slashes of a lease id into one key segment).

Bucket width: the scheduler keeps in memory only the leases of loaded buckets, and loads a bucket
one width before it starts, so the width is the memory horizon: with 300 s, the leases due within
the next 5-10 minutes (~210-225 bytes each), not every lease due within the next two hours as with
3600 s. But the width is also part of every due/ key, and renew and revoke find a lease's old
index entry by recomputing its key, so a store must keep the width its keys were written with.
It is recorded in ``layout`` the first time the manager sets up on a store, and read from there
ever after (a changed SchedulerConfig.bucket_seconds then applies to new stores only). A store
with no record but with due/ entries predates the record and was written with 3600 s, the only
width used before (LEGACY_BUCKET_SECONDS): it records and keeps 3600. A store with neither has no
key that depends on the width and records the configured default.

Write order (crash safety): indexes first, the id/ record last; delete the id/ record first,
indexes after. A crash in between leaves only index entries without a lease, which the scheduler
and tidy drop when they meet them, never a lease without an expiry.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

ID_PREFIX = "id/"
DUE_PREFIX = "due/"
TOKEN_PREFIX = "token/"
SALT_KEY = "salt"
LAYOUT_KEY = "layout"

# The bucket width of every store written before the layout record existed (see "Bucket width").
LEGACY_BUCKET_SECONDS = 3600

KIND_SECRET = "secret"
KIND_TOKEN = "token"


def digest(lease_id: str) -> str:
    return hashlib.sha256(lease_id.encode()).hexdigest()[:40]


def due_key(expire_ms: int, lease_digest: str, bucket_ms: int) -> str:
    return f"{DUE_PREFIX}{expire_ms // bucket_ms}/{expire_ms:013d}-{lease_digest}"


def parse_due_name(name: str) -> tuple[int, str] | None:
    """(expire ms, digest) from the last segment of a due/ key, or None if it is not one of ours."""
    ms, sep, lease_digest = name.partition("-")
    if not sep or not ms.isdigit() or not lease_digest:
        return None
    return int(ms), lease_digest


@dataclass(slots=True)
class Lease:
    id: str
    # The request path the secret was issued at ("database/creds/ro"), or the token's creation path.
    path: str
    kind: str = KIND_SECRET
    issue_time: float = 0.0
    expire_time: float = 0.0  # 0 = never (only tokens without a TTL could, and they get no lease)
    last_renewal: float = 0.0
    renewable: bool = True
    # The secret's TTL as issued (the default renewal increment) and its own max TTL (0 = mount's).
    ttl: int = 0
    max_ttl: int = 0
    # SECURITY: for a secret, the salted hash of the token that owns it; for a token lease, the
    # salted hash of that token. Never a raw token.
    token_id: str = ""
    # The backend's data about the secret (e.g. a database username): only behind the barrier.
    internal_data: dict[str, Any] = field(default_factory=dict)
    mount_accessor: str = ""
    # Set once background revocation gave up (Vault's irrevocable lease); revoke-force clears it.
    revoke_error: str = ""

    @property
    def expire_ms(self) -> int:
        # Rounded up, so a lease never fires before its expire_time (the wrapping alarm, for one,
        # checks that the token it is told about has really expired).
        return math.ceil(self.expire_time * 1000)

    def remaining(self, now: float) -> int:
        return max(0, int(self.expire_time - now)) if self.expire_time else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "path": self.path, "kind": self.kind, "issue_time": self.issue_time,
            "expire_time": self.expire_time, "last_renewal": self.last_renewal, "renewable": self.renewable,
            "ttl": self.ttl, "max_ttl": self.max_ttl, "token_id": self.token_id,
            "internal_data": self.internal_data, "mount_accessor": self.mount_accessor,
            "revoke_error": self.revoke_error,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Lease:
        return cls(
            id=str(d["id"]), path=str(d.get("path", "")), kind=str(d.get("kind", KIND_SECRET)),
            issue_time=float(d.get("issue_time", 0.0)), expire_time=float(d.get("expire_time", 0.0)),
            last_renewal=float(d.get("last_renewal", 0.0)), renewable=bool(d.get("renewable", True)),
            ttl=int(d.get("ttl", 0)), max_ttl=int(d.get("max_ttl", 0)), token_id=str(d.get("token_id", "")),
            internal_data=dict(d.get("internal_data") or {}), mount_accessor=str(d.get("mount_accessor", "")),
            revoke_error=str(d.get("revoke_error", "")),
        )

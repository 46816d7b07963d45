"""Leases and expiration.

    lease.py      Lease (storage format) and the storage layout under sys/expire/
    storage.py    LeaseStorage: records, the due/ and token/ indexes, per-lease locks
    scheduler.py  one timer task over a heap of due leases, a worker pool, retries with backoff
    manager.py    ExpirationManager: register, lookup, renew, revoke(-prefix/-force), tidy, token hooks
"""

from strongroom.core.expiration.manager import ExpirationManager
from strongroom.core.expiration.scheduler import SchedulerConfig

__all__ = ["ExpirationManager", "SchedulerConfig"]

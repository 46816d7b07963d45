"""AuditBroker: fans each request, response and security event out to the enabled audit devices.

SECURITY: fail closed. When at least one device is enabled and none of them records an entry,
``log_request`` raises, and the pipeline refuses the request before any backend runs. A device that
does not take an entry within its deadline (option ``timeout``) counts as failed for that entry, so
a stalled device delays a request by at most its deadline, never indefinitely. A device that can
store an entry synchronously without blocking (``write_inline``: a regular file, a datagram) does
so with no timer, task or lock; the file device watches those writes itself and goes back to its
deadline-bound worker thread after one that blocked (see :mod:`strongroom.audit.file`).

Per request, the ``auth`` and ``request`` members are built once per device and serve both the
request and the response entry, unless something they were built from changed in between. A read
answered from core/readcache.py writes its two entries from the members kept with it (a
:class:`Replay`): with one file device, staged for the device's one write per event-loop turn
(the answer waits for it); otherwise both in one write where the device writes inline.

The audit table (which devices exist, their options, salts and chain keys) is persisted through the
barrier under ``core/audit``, like the mount tables. Devices declared in the server config are
(re)enabled at every unseal and cannot be disabled through the API; enabling through the API is
refused unless the config sets ``unsafe_allow_api_audit_creation`` (as OpenBao does). Devices
themselves live in :mod:`strongroom.audit`; entry formatting in :mod:`strongroom.audit.entry`.

Modules: :mod:`.table` (the persisted table and the config's stanzas), :mod:`.members` (what is
kept between entries: per-device writers, shared members, replays), :mod:`.broker` (AuditBroker).
"""

from strongroom.core.audit.broker import AuditBroker, MountInfo
from strongroom.core.audit.members import Replay
from strongroom.core.audit.table import (
           AUDIT_TABLE_KEY,
           AuditConfig,
           AuditEntry,
           DeclaredDevice,
           normalize_path,
)

__all__ = ["AUDIT_TABLE_KEY", "AuditBroker", "AuditConfig", "AuditEntry", "DeclaredDevice", "MountInfo", "Replay",
           "normalize_path"]

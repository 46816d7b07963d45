"""Identity: entities, aliases and groups (store.py: the writes; index.py: storage layout, indexes and
lookups; records.py: the records) and the identity/ engine over them (backend.py: the path table;
handlers.py: its handlers).

Core owns one :class:`IdentityStore`; logins find or create entities through it
(core/pipeline.py ``register``), every request adds the policies of the token's entity and its
groups (``authenticate``), and the identity/ mount answers Vault's identity API from it. Login MFA
(mfa/) holds a login an enforcement matches until its second factor is given.
"""

from __future__ import annotations

from strongroom.core.identity.backend import IdentityBackend
from strongroom.core.identity.mfa import LoginMFA
from strongroom.core.identity.records import Alias, EntityRecord, GroupRecord
from strongroom.core.identity.store import IdentityStore

__all__ = ["Alias", "EntityRecord", "GroupRecord", "IdentityBackend", "IdentityStore", "LoginMFA"]

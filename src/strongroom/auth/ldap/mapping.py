"""groups/<name> and users/<name>: what an LDAP group or user is worth in policies
(framework/group_mappings.py). Names are lower-cased unless the config sets
``case_sensitive_names`` (as Vault); a user's extra groups read back comma-joined, as Vault's."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strongroom.auth.ldap.config import get_config
from strongroom.framework import Path, Request
from strongroom.framework.group_mappings import GROUP_PREFIX, USER_PREFIX, get_mapping, mapping_paths

if TYPE_CHECKING:
    from strongroom.auth.ldap import LdapBackend


async def canonical(req: Request, name: str) -> str:
    cfg = await get_config(req)
    return name if cfg is not None and cfg.case_sensitive_names else name.lower()


def paths() -> list[Path[LdapBackend]]:
    return mapping_paths("LDAP", canonical, user_groups_joined=True,
                         user_groups_doc="Comma-separated list of additional groups associated with the user.")


__all__ = ["GROUP_PREFIX", "USER_PREFIX", "canonical", "get_mapping", "paths"]

"""groups/<name> and users/<name>: what an Okta group or user is worth in policies (a user may also
name extra local groups; framework/group_mappings.py). Names are matched case-insensitively (stored
lower-case)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strongroom.framework import Path, Request
from strongroom.framework.group_mappings import GROUP_PREFIX, USER_PREFIX, get_mapping, mapping_paths
from strongroom.logical import Storage

if TYPE_CHECKING:
    from strongroom.auth.okta import OktaBackend


async def _lower(req: Request, name: str) -> str:
    return name.lower()


def paths() -> list[Path[OktaBackend]]:
    return mapping_paths("Okta", _lower, user_groups_joined=False,
                         user_groups_doc="List of groups associated with the user.")


async def policies_for(st: Storage, username: str, okta_groups: list[str]) -> tuple[list[str], list[str]]:
    """(mapped policies, all groups): the policies of the user's Okta and local groups, then the user's."""
    user = await get_mapping(st, USER_PREFIX, username.lower())
    groups = [*okta_groups, *(user.groups if user else [])]
    out: list[str] = []
    for g in dict.fromkeys(g.lower() for g in groups):
        group = await get_mapping(st, GROUP_PREFIX, g)
        if group is not None:
            out += group.policies
    if user is not None:
        out += user.policies
    return list(dict.fromkeys(out)), groups

"""github: the user's team names and slugs in the organization are its external identity groups on
the mount (Vault's group aliases), and follow GitHub on the next login."""

from __future__ import annotations

from tests.auth.conftest import Vault
from tests.auth.github.fakegithub import FakeGitHub, Org, Team, User
from tests.auth.groups import POLICY, external_group, reads_team_secret


async def test_teams_feed_external_groups(gv: Vault, github: FakeGitHub) -> None:
    acme, other = github.orgs["acme"], Org("other", 7)
    alice = User("alice", 1, [acme, other], [Team("Dev Ops", "dev-ops", acme, 5), Team("Core", "core", other, 6)])
    github.users["tok-alice"] = alice
    github.users["tok-bob"] = User("bob", 2, [acme], [])
    await gv.done("POST", "auth/github/config", {"organization": "acme", "base_url": github.base_url})
    await external_group(gv, "github", "dev-ops")  # by slug
    await external_group(gv, "github", "Core")  # a team of another organization: never reported

    async def login(token: str) -> dict[str, object]:
        return dict((await gv.ok("POST", "auth/github/login", {"token": token}, token=None))["auth"])

    first = await login("tok-alice")
    assert first["identity_policies"] == [POLICY]
    token = str(first["client_token"])
    assert await reads_team_secret(gv, token)
    entity = (await gv.ok("GET", f"identity/entity/id/{first['entity_id']}"))["data"]
    groups = [(await gv.ok("GET", f"identity/group/id/{g}"))["data"]["name"] for g in entity["group_ids"]]
    assert groups == ["github-dev-ops"] and entity["aliases"][0]["name"] == "alice"
    bob = await login("tok-bob")
    assert bob["entity_id"] != first["entity_id"] and not bob["identity_policies"]
    # alice leaves the team on GitHub: her next login leaves the group, her first token loses the policy.
    alice.teams = [t for t in alice.teams if t.org is not acme]
    assert not (await login("tok-alice"))["identity_policies"]
    assert not await reads_team_secret(gv, token)
    # By its name too (the alias "Dev Ops").
    alice.teams.append(Team("Dev Ops", "dev-ops", acme, 5))
    await external_group(gv, "github", "Dev Ops")
    assert (await login("tok-alice"))["identity_policies"] == [POLICY]
    assert await reads_team_secret(gv, token)

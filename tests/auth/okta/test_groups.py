"""okta: the user's Okta group names (and its locally listed groups) are its external identity
groups on the mount (Vault's group aliases), and follow Okta on the next login."""

from __future__ import annotations

from tests.auth.conftest import Vault
from tests.auth.groups import POLICY, external_group, reads_team_secret
from tests.auth.okta.fakeokta import FakeOkta, Person


async def test_okta_groups_feed_external_groups(ov: Vault, okta: FakeOkta) -> None:
    alice = okta.add(Person("alice@acme.example", "alice-pw", groups=["Everyone", "Engineering", "Ops"]))
    okta.add(Person("bob@acme.example", "bob-pw", groups=["Everyone"]))
    r = await ov.call("POST", "auth/okta/config", {"org_name": "acme", "base_url": okta.url,
                                                   "api_token": okta.api_token})
    assert r.status_code in (200, 204), r.text
    await external_group(ov, "okta", "Engineering")

    async def login(user: str, password: str) -> dict[str, object]:
        body = await ov.ok("POST", f"auth/okta/login/{user}", {"password": password}, token=None)
        return dict(body["auth"])

    first = await login("alice@acme.example", "alice-pw")
    assert first["identity_policies"] == [POLICY]
    token = str(first["client_token"])
    assert await reads_team_secret(ov, token)
    bob = await login("bob@acme.example", "bob-pw")
    assert bob["entity_id"] != first["entity_id"] and not bob["identity_policies"]
    # Okta removes alice from Engineering: the next login leaves the group, the first token loses it.
    alice.groups = ["Everyone", "Ops"]
    assert not (await login("alice@acme.example", "alice-pw"))["identity_policies"]
    assert not await reads_team_secret(ov, token)
    # A group listed locally at users/<name> counts as well, as in Vault.
    await ov.done("POST", "auth/okta/users/alice@acme.example", {"groups": "Engineering"})
    assert (await login("alice@acme.example", "alice-pw"))["identity_policies"] == [POLICY]
    assert await reads_team_secret(ov, token)

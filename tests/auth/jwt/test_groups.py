"""JWT/OIDC: the role's groups_claim values are the user's external identity groups on the mount
(Vault's group aliases), per user, and follow the IdP on the next login."""

from __future__ import annotations

from tests.auth.conftest import Vault
from tests.auth.groups import POLICY, external_group, reads_team_secret

from .conftest import Keys, claims, public_pem, sign


async def test_groups_claim_feeds_external_groups(vault: Vault, keys: Keys) -> None:
    await vault.done("POST", "auth/jwt/config", {"jwt_validation_pubkeys": [public_pem(keys.rsa)],
                                                 "bound_issuer": "https://issuer.example"})
    await vault.done("POST", "auth/jwt/role/r", {"role_type": "jwt", "user_claim": "email", "groups_claim": "groups",
                                                 "bound_audiences": "strongroom", "token_policies": "default"})
    await external_group(vault, "jwt", "dev")

    async def login(email: str, groups: list[str]) -> dict[str, object]:
        jwt = sign(claims(email=email, groups=groups), keys.rsa)
        return dict((await vault.ok("POST", "auth/jwt/login", {"role": "r", "jwt": jwt}, token=None))["auth"])

    alice = await login("alice@example.com", ["dev", "ops"])
    assert alice["identity_policies"] == [POLICY] and POLICY in alice["policies"]  # type: ignore[operator]
    assert await reads_team_secret(vault, str(alice["client_token"]))
    # Another user of the same role is another entity: the group is alice's, not the role's.
    bob = await login("bob@example.com", ["ops"])
    assert bob["entity_id"] != alice["entity_id"] and not bob["identity_policies"]
    assert not await reads_team_secret(vault, str(bob["client_token"]))
    # The IdP drops alice from dev: her next login leaves the group, and her earlier token loses
    # the group's policy at request time.
    again = await login("alice@example.com", ["ops"])
    assert again["entity_id"] == alice["entity_id"] and not again["identity_policies"]
    assert not await reads_team_secret(vault, str(alice["client_token"]))
    assert (await login("alice@example.com", ["dev"]))["identity_policies"] == [POLICY]
    assert await reads_team_secret(vault, str(alice["client_token"]))

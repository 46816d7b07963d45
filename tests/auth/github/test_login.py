"""The github auth method in process: config, team/user maps, login against the local GitHub API
(membership, policies, pagination, refusals, GitHub down) and renewal re-checking membership."""

from __future__ import annotations

import time

from tests.auth.conftest import Vault
from tests.auth.github.conftest import ORG_ID
from tests.auth.github.fakegithub import FakeGitHub, Org, Team, User

from strongroom.auth.github import GitHubBackend
from strongroom.auth.github.api import next_page


async def _configure(gv: Vault, gh: FakeGitHub, **extra: object) -> None:
    await gv.done("POST", "auth/github/config", {"organization": "acme", "base_url": gh.base_url, **extra})


def _alice(gh: FakeGitHub) -> User:
    acme, other = gh.orgs["acme"], Org("other", 7)
    user = User("alice", 1, [other, acme], [Team("Dev Ops", "dev-ops", acme, 5), Team("Admins", "admins", other, 6)])
    gh.users["tok-alice"] = user
    return user


async def test_config_fetches_org_id_and_reads_back(gv: Vault, github: FakeGitHub) -> None:
    await gv.fails(404, "GET", "auth/github/config")
    errs = await gv.fails(400, "POST", "auth/github/config", {"base_url": github.base_url})
    assert errs == ["organization is a required parameter"]
    await gv.done("POST", "auth/github/config", {"organization": "acme", "base_url": github.base_url.rstrip("/"),
                                                 "token_policies": "base", "ttl": "1h"})
    data = (await gv.ok("GET", "auth/github/config"))["data"]
    assert data["organization"] == "acme" and data["organization_id"] == ORG_ID
    assert data["base_url"] == github.base_url  # a "/" is added, as Vault does
    assert data["token_policies"] == ["base"] and data["token_ttl"] == 3600 and data["ttl"] == 3600
    assert "/api/v3/orgs/acme" in github.requests
    # A merge: organization kept, only the id changed; no GitHub call when the id is given.
    github.requests.clear()
    await gv.done("POST", "auth/github/config", {"organization_id": 99})
    data = (await gv.ok("GET", "auth/github/config"))["data"]
    assert data["organization"] == "acme" and data["organization_id"] == 99 and not github.requests
    errs = await gv.fails(500, "POST", "auth/github/config", {"organization": "ghost", "organization_id": 0})
    assert errs[0].startswith("unable to fetch the organization_id, you must manually set it in the config")
    assert "404 Not Found" in errs[0]
    await gv.fails(400, "POST", "auth/github/config", {"base_url": "ftp://x/"})
    await gv.fails(400, "POST", "auth/github/config", {"token_ttl": "2h", "token_max_ttl": "1h"})
    assert (await gv.ok("GET", "auth/github/config"))["data"]["organization"] == "acme"  # nothing half-written


async def test_maps_list_read_write_delete(gv: Vault) -> None:
    await gv.fails(404, "LIST", "auth/github/map/teams")
    await gv.done("POST", "auth/github/map/teams/Dev-Ops", {"value": "p1, p2"})
    await gv.done("POST", "auth/github/map/users/alice", {"value": "u1"})
    assert (await gv.ok("GET", "auth/github/map/teams/dev-ops"))["data"] == {"value": "p1, p2"}
    assert (await gv.ok("LIST", "auth/github/map/teams"))["data"]["keys"] == ["dev-ops"]
    assert (await gv.ok("GET", "auth/github/map/users"))["data"]["keys"] == ["alice"]
    await gv.fails(404, "POST", "auth/github/map/teams/bad.name", {"value": "x"})
    await gv.done("DELETE", "auth/github/map/teams/dev-ops")
    await gv.fails(404, "GET", "auth/github/map/teams/dev-ops")


async def test_login_policies_from_config_teams_and_user(gv: Vault, github: FakeGitHub) -> None:
    _alice(github)
    await _configure(gv, github, token_policies="base", token_ttl="30m")
    await gv.done("POST", "auth/github/map/teams/dev-ops", {"value": "ops,shared"})  # by slug
    await gv.done("POST", "auth/github/map/teams/dev-opsx", {"value": "never"})
    github.users["tok-alice"].teams.append(Team("Platform", "platform-team", github.orgs["acme"], 8))
    await gv.done("POST", "auth/github/map/teams/platform", {"value": "plat"})  # by name (lower-cased)
    await gv.done("POST", "auth/github/map/teams/admins", {"value": "root-ish"})  # a team of another org
    await gv.done("POST", "auth/github/map/users/ALICE", {"value": "mine"})
    await gv.done("POST", "auth/github/map/users/default", {"value": "everyone"})
    auth = (await gv.ok("POST", "auth/github/login", {"token": "tok-alice"}, token=None))["auth"]
    assert auth["policies"] == ["base", "default", "everyone", "mine", "ops", "plat", "shared"]
    assert auth["metadata"] == {"org": "acme", "username": "alice"}  # Vault's, nothing more
    assert "tok-alice" not in str(auth)
    assert auth["lease_duration"] == 1800 and auth["renewable"] is True
    me = (await gv.ok("GET", "auth/token/lookup-self", token=auth["client_token"]))["data"]
    assert me["display_name"] == "github-alice" and me["path"] == "auth/github/login"
    assert me["meta"] == {"org": "acme", "username": "alice"} and "tok-alice" not in str(me)


async def test_non_member_and_bad_token_refused(gv: Vault, github: FakeGitHub) -> None:
    github.users["tok-bob"] = User("bob", 2, [Org("other", 7)], [])
    await _configure(gv, github)
    errs = await gv.fails(400, "POST", "auth/github/login", {"token": "tok-bob"}, token=None)
    assert errs == ["user is not part of required org"]
    errs = await gv.fails(400, "POST", "auth/github/login", {"token": "stolen"}, token=None)
    assert errs == [f"GET {github.base_url}user: 401 Bad credentials"]
    assert (await gv.fails(400, "POST", "auth/github/login", {}, token=None)) == ["missing token"]
    # An organization renamed on GitHub still matches by id, with Vault's warning.
    github.orgs["acme"].login = "acme-inc"
    _alice(github)
    body = await gv.ok("POST", "auth/github/login", {"token": "tok-alice"}, token=None)
    assert body["auth"]["metadata"]["org"] == "acme-inc" and "acme-inc" in body["warnings"][0]


async def test_login_unconfigured_and_bound_cidrs(gv: Vault, github: FakeGitHub) -> None:
    _alice(github)
    errs = await gv.fails(400, "POST", "auth/github/login", {"token": "tok-alice"}, token=None)
    assert errs == ["configuration has not been set"]
    await _configure(gv, github, token_bound_cidrs="10.9.9.0/24")
    github.requests.clear()
    await gv.fails(403, "POST", "auth/github/login", {"token": "tok-alice"}, token=None)
    assert not github.requests  # refused before GitHub is asked


async def test_pagination_follows_link_headers(gv: Vault, github: FakeGitHub) -> None:
    acme = github.orgs["acme"]
    orgs = [Org(f"o{i}", 1000 + i) for i in range(230)] + [acme]  # acme is on page 3 of 100
    teams = [Team(f"T{i}", f"t{i}", acme, i) for i in range(205)]
    github.users["tok-many"] = User("many", 3, orgs, teams)
    await _configure(gv, github)
    await gv.done("POST", "auth/github/map/teams/t204", {"value": "last-page"})
    auth = (await gv.ok("POST", "auth/github/login", {"token": "tok-many"}, token=None))["auth"]
    assert auth["policies"] == ["default", "last-page"]
    pages = [r for r in github.requests if r.startswith("/api/v3/user/orgs")]
    assert len(pages) == 3 and "page=3" in pages[-1]
    assert next_page('<https://x/user/teams?per_page=100&page=4>; rel="next", <https://x/a?page=9>; rel="last"') == 4
    assert next_page('<https://x/a?page=1>; rel="first"') == 0


async def test_github_down_or_slow_fails_within_deadline(gv: Vault, github: FakeGitHub) -> None:
    _alice(github)
    await _configure(gv, github)
    backend = gv.core.router.match("auth/github/login")[0].backend
    assert isinstance(backend, GitHubBackend)
    backend.api_timeout = 0.3
    github.delay = 2.0
    start = time.monotonic()
    errs = await gv.fails(500, "POST", "auth/github/login", {"token": "tok-alice"}, token=None)
    assert time.monotonic() - start < 1.5 and "did not answer within 0.3s" in errs[0]
    github.delay = 0.0
    await gv.done("POST", "auth/github/config", {"base_url": "http://127.0.0.1:1/"})  # nothing listens there
    errs = await gv.fails(500, "POST", "auth/github/login", {"token": "tok-alice"}, token=None)
    assert errs[0].startswith("GET http://127.0.0.1:1/user: ConnectError")


async def test_renew_rechecks_membership_and_policies(gv: Vault, github: FakeGitHub) -> None:
    user = _alice(github)
    await _configure(gv, github, token_ttl="1h")
    await gv.done("POST", "auth/github/map/teams/dev-ops", {"value": "ops"})
    token = (await gv.ok("POST", "auth/github/login", {"token": "tok-alice"}, token=None))["auth"]["client_token"]
    await gv.ok("POST", "auth/token/renew-self", {}, token=token)
    # A team mapping changed: the token's policies no longer match what a login would give.
    await gv.done("POST", "auth/github/map/teams/dev-ops", {"value": "ops,more"})
    assert await gv.fails(400, "POST", "auth/token/renew-self", {}, token=token) == ["policies do not match"]
    await gv.done("POST", "auth/github/map/teams/dev-ops", {"value": "ops"})
    await gv.ok("POST", "auth/token/renew-self", {}, token=token)
    # The user left the organization.
    user.orgs = [o for o in user.orgs if o.id != ORG_ID]
    errs = await gv.fails(400, "POST", "auth/token/renew-self", {}, token=token)
    assert errs == ["user is not part of required org"]
    # Revoked GitHub token.
    del github.users["tok-alice"]
    errs = await gv.fails(400, "POST", "auth/token/renew-self", {}, token=token)
    assert "401 Bad credentials" in errs[0]


async def test_token_with_control_characters_refused_without_echo(gv: Vault, github: FakeGitHub) -> None:
    await _configure(gv, github)
    github.requests.clear()
    errs = await gv.fails(400, "POST", "auth/github/login", {"token": "ghp_secret\r\nX-Evil: 1"}, token=None)
    assert "secret" not in errs[0] and not github.requests

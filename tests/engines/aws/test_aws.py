"""The aws engine through the whole server (in-process core and HTTP app) against a moto server:
configuration, roles, credentials of each type used against moto, revocation, failures half-way."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from strongroom.testing import app_client, unsealed_core

from .conftest import ACCOUNT, READ_S3, ROOT_KEY, ROOT_SECRET, assume_role_policy, boto, user_names


@pytest.fixture
async def c(moto: str) -> AsyncIterator[httpx.AsyncClient]:
    async with unsealed_core() as (core, root), app_client(core, root) as client:
        r = await client.post("/v1/sys/mounts/aws", json={"type": "aws"})
        assert r.status_code == 204, r.text
        r = await client.post("/v1/aws/config/root", json={
            "access_key": ROOT_KEY, "secret_key": ROOT_SECRET, "region": "us-east-1",
            "iam_endpoint": moto, "sts_endpoint": moto, "max_retries": 0})
        assert r.status_code == 204, r.text
        yield client


async def _ok(r: Any) -> dict[str, Any]:
    resp = await r
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def test_config_root_and_lease(c: httpx.AsyncClient, moto: str) -> None:
    data = (await _ok(c.get("/v1/aws/config/root")))["data"]
    assert data["access_key"] == ROOT_KEY and "secret_key" not in data
    assert data["iam_endpoint"] == moto and data["region"] == "us-east-1" and data["max_retries"] == 0
    assert data["username_template"].startswith("{{ if (eq .Type")  # Vault stores its default template
    assert (await c.get("/v1/aws/config/lease")).status_code == 404
    assert (await c.post("/v1/aws/config/lease", json={"lease": "30m", "lease_max": "12h"})).status_code == 204
    assert (await _ok(c.get("/v1/aws/config/lease")))["data"] == {"lease": "30m0s", "lease_max": "12h0m0s"}
    for body, words in [({"lease": "30m"}, "'lease_max' is a required parameter"),
                        ({"lease": "soon", "lease_max": "1h"}, "Invalid lease")]:
        r = await c.post("/v1/aws/config/lease", json=body)
        assert r.status_code == 400 and words in r.json()["errors"][0]
    for body, words in [({"iam_endpoint": "ftp://x"}, "iam_endpoint must be an http or https URL"),
                        ({"username_template": "{{ nosuch }}"}, 'function "nosuch" not defined'),
                        ({"username_template": "{{ .Nope }}"}, "can't evaluate field Nope"),
                        ({"username_template": "{{ if .Type }}x"}, "missing {{end}}")]:
        r = await c.post("/v1/aws/config/root", json={"access_key": "a", "secret_key": "b", **body})
        assert r.status_code == 400 and words in r.json()["errors"][0], r.text


async def test_roles_crud_and_validation(c: httpx.AsyncClient) -> None:
    assert (await c.request("LIST", "/v1/aws/roles")).status_code == 404
    r = await c.post("/v1/aws/roles/dev", json={"credential_type": "iam_user",
                                                "policy_document": '{ "Version": "2012-10-17",\n "Statement": [] }',
                                                "policy_arns": "arn:aws:iam::aws:policy/ReadOnlyAccess",
                                                "iam_groups": ["g1", "g2"], "iam_tags": ["team=core", "env=ci"],
                                                "user_path": "/vault/"})
    assert r.status_code == 204, r.text
    data = (await _ok(c.get("/v1/aws/roles/dev")))["data"]
    assert data["credential_type"] == "iam_user"
    assert data["policy_document"] == '{"Version":"2012-10-17","Statement":[]}'  # compacted, as Vault does
    assert data["policy_arns"] == ["arn:aws:iam::aws:policy/ReadOnlyAccess"] and data["iam_groups"] == ["g1", "g2"]
    assert data["iam_tags"] == {"team": "core", "env": "ci"} and data["user_path"] == "/vault/"
    assert data["role_arns"] == [] and data["default_sts_ttl"] == 0 and data["max_sts_ttl"] == 0
    # A write merges: fields not sent keep their values.
    assert (await c.post("/v1/aws/roles/dev", json={"iam_groups": "g3"})).status_code == 204
    data = (await _ok(c.get("/v1/aws/roles/dev")))["data"]
    assert data["iam_groups"] == ["g3"] and data["policy_arns"] == ["arn:aws:iam::aws:policy/ReadOnlyAccess"]
    assert (await c.post("/v1/aws/roles/sts", json={"credential_type": "assumed_role", "role_arns": "arn:a,arn:b",
                                                    "default_sts_ttl": "15m", "max_sts_ttl": "1h"})).status_code == 204
    data = (await _ok(c.get("/v1/aws/roles/sts")))["data"]
    assert data["role_arns"] == ["arn:a", "arn:b"] and data["default_sts_ttl"] == 900 and data["max_sts_ttl"] == 3600
    keys = (await _ok(c.request("LIST", "/v1/aws/roles")))["data"]["keys"]
    assert keys == ["dev", "sts"]
    bad = [({"credential_type": "magic"}, "unrecognized credential type: magic"),
           ({}, "did not supply credential_type"),
           ({"credential_type": "iam_user", "role_arns": "arn:x"}, "cannot supply role_arns when credential_type"),
           ({"credential_type": "iam_user", "policy_document": "{nope"}, "cannot parse policy document"),
           ({"credential_type": "iam_user", "default_sts_ttl": 60}, "default_sts_ttl parameter only valid"),
           ({"credential_type": "federation_token", "default_sts_ttl": 600, "max_sts_ttl": 60},
            r'\"default_sts_ttl\" value must be less than or equal to \"max_sts_ttl\" value'),
           ({"credential_type": "iam_user", "user_path": "no-slash"}, "user_path is invalid"),
           ({"credential_type": "iam_user", "permissions_boundary_arn": "arn:aws:s3:::bucket"},
            "invalid permissions_boundary_arn parameter: expected a service of iam")]
    for body, words in bad:
        r = await c.post("/v1/aws/roles/bad", json=body)
        assert r.status_code == 400, (body, r.text)
        assert words in r.json()["errors"][0], (body, r.text)
    assert (await c.get("/v1/aws/roles/bad")).status_code == 404  # nothing stored by a refused write
    assert (await c.delete("/v1/aws/roles/dev")).status_code == 204
    assert (await c.get("/v1/aws/roles/dev")).status_code == 404
    r = await c.get("/v1/aws/creds/dev")
    assert r.status_code == 400 and r.json()["errors"] == ['Role "dev" not found']


async def test_iam_user_creds_work_and_revoke_deletes_everything(c: httpx.AsyncClient, moto: str) -> None:
    iam = boto("iam", moto)
    arn = iam.create_policy(PolicyName="ro", PolicyDocument=READ_S3)["Policy"]["Arn"]
    iam.create_group(GroupName="devs")
    assert (await c.post("/v1/aws/config/lease", json={"lease": "30m", "lease_max": "2h"})).status_code == 204
    r = await c.post("/v1/aws/roles/app", json={"credential_type": "iam_user", "policy_document": READ_S3,
                                                "policy_arns": [arn], "iam_groups": "devs",
                                                "iam_tags": {"team": "core"}, "user_path": "/vault/"})
    assert r.status_code == 204, r.text
    body = await _ok(c.get("/v1/aws/creds/app"))
    data = body["data"]
    assert set(data) == {"access_key", "secret_key", "security_token"} and data["security_token"] is None
    assert body["lease_id"].startswith("aws/creds/app/") and body["renewable"] is True
    assert body["lease_duration"] == 1800
    [username] = user_names(iam)
    assert username.startswith("vault-token-app-") and len(username) <= 64
    user = iam.get_user(UserName=username)["User"]
    assert user["Path"] == "/vault/" and {"Key": "team", "Value": "core"} in user.get("Tags", [])
    assert iam.list_user_policies(UserName=username)["PolicyNames"] == ["app"]
    assert [p["PolicyArn"] for p in iam.list_attached_user_policies(UserName=username)["AttachedPolicies"]] == [arn]
    assert [g["GroupName"] for g in iam.list_groups_for_user(UserName=username)["Groups"]] == ["devs"]

    # The keys are the new user's own: STS says who is calling.
    who = boto("sts", moto, data["access_key"], data["secret_key"]).get_caller_identity()
    assert who["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/vault/{username}"

    renewed = await _ok(c.put("/v1/sys/leases/renew", json={"lease_id": body["lease_id"]}))
    assert renewed["lease_duration"] == 1800
    r = await c.put("/v1/sys/leases/revoke", json={"lease_id": body["lease_id"]})
    assert r.status_code == 204, r.text
    assert user_names(iam) == []
    assert iam.list_group_policies(GroupName="devs")["PolicyNames"] == []
    assert iam.get_group(GroupName="devs")["Users"] == []


async def test_creds_by_post_and_many_users(c: httpx.AsyncClient, moto: str) -> None:
    assert (await c.post("/v1/aws/roles/app", json={"credential_type": "iam_user",
                                                    "policy_document": READ_S3})).status_code == 204
    leases = [(await _ok(c.post("/v1/aws/creds/app", json={})))["lease_id"] for _ in range(3)]
    leases.append((await _ok(c.get("/v1/aws/sts/app")))["lease_id"])  # sts/ serves iam_user roles too
    assert len(user_names(boto("iam", moto))) == 4
    r = await c.put("/v1/sys/leases/revoke-prefix/aws/creds/app")
    assert r.status_code == 204, r.text
    assert len(user_names(boto("iam", moto))) == 1
    assert (await c.put("/v1/sys/leases/revoke", json={"lease_id": leases[-1]})).status_code == 204
    assert user_names(boto("iam", moto)) == []


@pytest.mark.parametrize(("role", "words"), [
    ({"policy_document": '{"Version":"2012-10-17","Statement":[{"Effect":"Perhaps","Action":"s3:*"}]}'},
     "Error putting user policy: MalformedPolicyDocument"),
    ({"policy_arns": f"arn:aws:iam::{ACCOUNT}:policy/does-not-exist"}, "Error attaching user policy: NoSuchEntity"),
    ({"policy_document": READ_S3, "iam_groups": "no-such-group"}, "Error adding user to group: NoSuchEntity"),
])
async def test_failure_half_way_leaves_no_user(c: httpx.AsyncClient, moto: str, role: dict[str, str],
                                               words: str) -> None:
    iam = boto("iam", moto)
    assert (await c.post("/v1/aws/roles/bad", json={"credential_type": "iam_user", **role})).status_code == 204
    r = await c.get("/v1/aws/creds/bad")
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0].startswith(words), r.text
    assert user_names(iam) == []


async def test_assumed_role(c: httpx.AsyncClient, moto: str) -> None:
    iam = boto("iam", moto)
    arn = iam.create_role(RoleName="deploy", AssumeRolePolicyDocument=assume_role_policy())["Role"]["Arn"]
    other = iam.create_role(RoleName="other", AssumeRolePolicyDocument=assume_role_policy())["Role"]["Arn"]
    r = await c.post("/v1/aws/roles/deploy", json={"credential_type": "assumed_role", "role_arns": [arn, other],
                                                   "policy_document": READ_S3, "max_sts_ttl": "30m"})
    assert r.status_code == 204, r.text
    r = await c.post("/v1/aws/sts/deploy", json={})
    assert r.status_code == 400 and "did not supply a role_arn parameter" in r.json()["errors"][0]
    r = await c.post("/v1/aws/sts/deploy", json={"role_arn": "arn:aws:iam::1:role/nope"})
    assert r.status_code == 400 and "not in allowed role arns" in r.json()["errors"][0]
    body = await _ok(c.post("/v1/aws/sts/deploy", json={"role_arn": arn, "ttl": "2h",
                                                        "role_session_name": "ci job"}))
    data = body["data"]
    assert data["security_token"] and data["access_key"].startswith("ASIA")
    assert data["arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/deploy/ci_job"
    assert body["renewable"] is False and 1790 <= body["lease_duration"] <= 1800  # capped by max_sts_ttl
    who = boto("sts", moto, data["access_key"], data["secret_key"], data["security_token"]).get_caller_identity()
    assert who["Arn"] == data["arn"]
    r = await c.put("/v1/sys/leases/renew", json={"lease_id": body["lease_id"]})
    assert r.status_code == 400 and "lease is not renewable" in r.text
    assert (await c.put("/v1/sys/leases/revoke", json={"lease_id": body["lease_id"]})).status_code == 204
    body = await _ok(c.get("/v1/aws/creds/deploy?role_arn=" + other))  # GET with the query, via creds/
    assert body["data"]["arn"].startswith(f"arn:aws:sts::{ACCOUNT}:assumed-role/other/vault-token-deploy-")


async def test_federation_token(c: httpx.AsyncClient, moto: str) -> None:
    r = await c.post("/v1/aws/roles/fed", json={"credential_type": "federation_token", "policy_document": READ_S3,
                                                "default_sts_ttl": "20m"})
    assert r.status_code == 204, r.text
    body = await _ok(c.get("/v1/aws/creds/fed"))
    assert body["data"]["security_token"] and body["renewable"] is False
    assert 1190 <= body["lease_duration"] <= 1200
    body = await _ok(c.post("/v1/aws/sts/fed", json={"ttl": 900, "tll": 60}))
    assert 890 <= body["lease_duration"] <= 900
    assert body["warnings"] == ["Endpoint ignored these unrecognized parameters: [tll]"]
    assert (await c.post("/v1/aws/roles/nopol", json={"credential_type": "federation_token"})).status_code == 204
    r = await c.get("/v1/aws/creds/nopol")
    assert r.status_code == 400 and "must specify at least one of policy_arns or policy_document" in r.text


async def test_username_template(c: httpx.AsyncClient, moto: str) -> None:
    r = await c.post("/v1/aws/config/root", json={
        "access_key": ROOT_KEY, "secret_key": ROOT_SECRET, "iam_endpoint": moto, "sts_endpoint": moto,
        "username_template": '{{ printf "app-%s-%s" (.PolicyName) (random 6) | lowercase }}'})
    assert r.status_code == 204, r.text
    assert (await c.post("/v1/aws/roles/Web", json={"credential_type": "iam_user",
                                                    "policy_document": READ_S3})).status_code == 204
    await _ok(c.get("/v1/aws/creds/Web"))
    [name] = user_names(boto("iam", moto))
    assert name.startswith("app-web-") and len(name) == len("app-web-") + 6
    r = await c.post("/v1/aws/config/root", json={
        "access_key": ROOT_KEY, "secret_key": ROOT_SECRET, "iam_endpoint": moto,
        "username_template": '{{ printf "%s" (random 70) }}'})
    assert r.status_code == 400 and "exceeds the STS username length limits of 32 chars" in r.text


async def test_no_root_config_and_unreachable_endpoint(moto: str) -> None:
    async with unsealed_core() as (core, root), app_client(core, root) as c:
        assert (await c.post("/v1/sys/mounts/aws", json={"type": "aws"})).status_code == 204
        assert (await c.post("/v1/aws/roles/r", json={"credential_type": "iam_user",
                                                      "policy_document": READ_S3})).status_code == 204
        r = await c.get("/v1/aws/creds/r")
        assert r.status_code == 400 and "no AWS root credentials configured" in r.text
        from .conftest import _free_port
        dead = f"http://127.0.0.1:{_free_port()}"
        assert (await c.post("/v1/aws/config/root", json={"access_key": "a", "secret_key": "b", "max_retries": 1,
                                                          "iam_endpoint": dead})).status_code == 204
        r = await c.get("/v1/aws/creds/r")
        assert r.status_code == 500 and "Error creating IAM user" in r.text and "cannot reach" in r.text
        assert "b" not in r.json()["errors"][0].split()  # never the secret key


async def test_existing_user_of_the_same_name_is_never_touched(c: httpx.AsyncClient, moto: str) -> None:
    iam = boto("iam", moto)
    iam.create_user(UserName="fixed-name")
    key = iam.create_access_key(UserName="fixed-name")["AccessKey"]["AccessKeyId"]
    r = await c.post("/v1/aws/config/root", json={"access_key": ROOT_KEY, "secret_key": ROOT_SECRET,
                                                  "iam_endpoint": moto, "username_template": "fixed-name"})
    assert r.status_code == 204, r.text
    assert (await c.post("/v1/aws/roles/app", json={"credential_type": "iam_user",
                                                    "policy_document": READ_S3})).status_code == 204
    r = await c.get("/v1/aws/creds/app")
    assert r.status_code == 400 and "Error creating IAM user: EntityAlreadyExists" in r.text
    assert user_names(iam) == ["fixed-name"]
    assert [k["AccessKeyId"] for k in iam.list_access_keys(UserName="fixed-name")["AccessKeyMetadata"]] == [key]
    assert iam.list_user_policies(UserName="fixed-name")["PolicyNames"] == []


async def test_rotate_root(c: httpx.AsyncClient, moto: str) -> None:
    iam = boto("iam", moto)
    iam.create_user(UserName="vault-root")
    old = iam.create_access_key(UserName="vault-root")["AccessKey"]
    r = await c.post("/v1/aws/config/root", json={"access_key": old["AccessKeyId"], "secret_key":
                                                  old["SecretAccessKey"], "iam_endpoint": moto, "sts_endpoint": moto})
    assert r.status_code == 204, r.text
    new = (await _ok(c.post("/v1/aws/config/rotate-root", json={})))["data"]["access_key"]
    assert new != old["AccessKeyId"]
    assert [k["AccessKeyId"] for k in iam.list_access_keys(UserName="vault-root")["AccessKeyMetadata"]] == [new]
    assert (await _ok(c.get("/v1/aws/config/root")))["data"]["access_key"] == new
    # The engine goes on working with the new key.
    assert (await c.post("/v1/aws/roles/app", json={"credential_type": "iam_user",
                                                    "policy_document": READ_S3})).status_code == 204
    await _ok(c.get("/v1/aws/creds/app"))
    assert len(user_names(iam)) == 2
    r = await c.post("/v1/aws/config/root", json={"access_key": "", "secret_key": "", "iam_endpoint": moto})
    r = await c.post("/v1/aws/config/rotate-root", json={})
    assert r.status_code == 400 and "either access_key or secret_key is empty" in r.text


async def test_users_go_at_lease_expiry_and_on_unmount(c: httpx.AsyncClient, moto: str) -> None:
    import asyncio
    iam = boto("iam", moto)
    assert (await c.post("/v1/aws/roles/app", json={"credential_type": "iam_user",
                                                    "policy_document": READ_S3})).status_code == 204
    assert (await c.post("/v1/aws/config/lease", json={"lease": "1s", "lease_max": "1s"})).status_code == 204
    await _ok(c.get("/v1/aws/creds/app"))
    assert len(user_names(iam)) == 1
    for _ in range(100):  # the expiration manager revokes it about a second later
        if not user_names(iam):
            break
        await asyncio.sleep(0.1)
    assert user_names(iam) == []
    assert (await c.post("/v1/aws/config/lease", json={"lease": "1h", "lease_max": "1h"})).status_code == 204
    await _ok(c.get("/v1/aws/creds/app"))
    await _ok(c.get("/v1/aws/creds/app"))
    assert len(user_names(iam)) == 2
    assert (await c.delete("/v1/sys/mounts/aws")).status_code == 204
    assert user_names(iam) == []


async def test_legacy_policy_and_arn_parameters(c: httpx.AsyncClient, moto: str) -> None:
    iam = boto("iam", moto)
    r = await c.post("/v1/aws/roles/old", json={"policy": READ_S3})
    assert r.status_code == 200 and r.json()["warnings"] == [
        "Detected use of legacy role or policy parameter. Please upgrade to use the new parameters."]
    data = (await _ok(c.get("/v1/aws/roles/old")))["data"]
    assert data["credential_type"] == "iam_user,federation_token" and data["policy_document"] == READ_S3
    assert (await _ok(c.get("/v1/aws/creds/old")))["data"]["security_token"] is None  # creds/: an IAM user
    assert len(user_names(iam)) == 1
    assert (await _ok(c.get("/v1/aws/sts/old")))["data"]["security_token"]  # sts/: a federation token
    assert len(user_names(iam)) == 1
    arn = iam.create_role(RoleName="deploy", AssumeRolePolicyDocument=assume_role_policy())["Role"]["Arn"]
    assert (await c.post("/v1/aws/roles/oldrole", json={"arn": arn})).status_code == 200
    assert (await _ok(c.get("/v1/aws/sts/oldrole")))["data"]["arn"].startswith(f"arn:aws:sts::{ACCOUNT}:")
    r = await c.get("/v1/aws/creds/oldrole")
    assert r.status_code == 400 and r.json()["errors"] == [
        "attempted to retrieve assumed_role credentials through the creds path; this is not allowed for legacy roles"]
    for body, words in [({"policy": READ_S3, "arn": arn}, "only one of policy or arn should be provided"),
                        ({"policy": READ_S3, "credential_type": "iam_user"}, "with an explicit credential_type"),
                        ({"arn": arn, "policy_arns": "x"}, "cannot supply deprecated role or policy parameters with "
                                                          "policy_arns"),
                        ({"arn": "arn:aws:iam::1:user/x"}, "unable to parse supplied data"),
                        ({"policy": "{not json"}, "unable to parse supplied data")]:
        r = await c.post("/v1/aws/roles/bad", json=body)
        assert r.status_code == 400 and words in r.json()["errors"][0], (body, r.text)
    # A write with the new parameters makes it an ordinary role again.
    assert (await c.post("/v1/aws/roles/oldrole", json={"credential_type": "assumed_role"})).status_code == 204
    assert (await _ok(c.get("/v1/aws/creds/oldrole")))["data"]["arn"]

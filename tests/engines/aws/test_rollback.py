"""The write-ahead log of the aws engine: a crash between creating an IAM user and writing its lease
leaves an entry whose rollback deletes the user and everything attached to it."""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.errors import Internal, InvalidRequest
from strongroom.framework import Op, wal
from strongroom.logical import LeaseInfo

from .conftest import READ_S3, ROOT_KEY, ROOT_SECRET, _free_port, boto, user_names


async def _aws(make_mount: Any, endpoint: str) -> Any:
    m = await make_mount("aws")
    await m.call(Op.UPDATE, "config/root", {"access_key": ROOT_KEY, "secret_key": ROOT_SECRET,
                                            "iam_endpoint": endpoint, "sts_endpoint": endpoint, "max_retries": 0})
    return m


async def test_crash_before_the_lease_is_rolled_back(make_mount: Any, moto: str) -> None:
    m = await _aws(make_mount, moto)
    iam = boto("iam", moto)
    arn = iam.create_policy(PolicyName="ro", PolicyDocument=READ_S3)["Policy"]["Arn"]
    iam.create_group(GroupName="devs")
    await m.call(Op.UPDATE, "roles/app", {"credential_type": "iam_user", "policy_document": READ_S3,
                                          "policy_arns": arn, "iam_groups": "devs"})
    # The handler ran (user created, response built) but no core wrote the lease: a crash there.
    resp = await m.call(Op.READ, "creds/app")
    assert resp is not None and resp.secret is not None and len(resp.wal_ids) == 1
    [username] = user_names(iam)
    assert await wal.list_wal(m.storage) == resp.wal_ids
    wal.forget_in_flight()  # as a process that died would
    done = await m.backend.rollback_wal(orphans=True)
    assert done.rolled_back == 1 and done.kept == 0
    assert user_names(iam) == [] and await wal.list_wal(m.storage) == []
    assert iam.get_group(GroupName="devs")["Users"] == []
    assert username


async def test_failure_half_way_removes_the_user_and_its_entry(make_mount: Any, moto: str) -> None:
    m = await _aws(make_mount, moto)
    await m.call(Op.UPDATE, "roles/bad", {"credential_type": "iam_user",
                                          "policy_document": '{"Statement":[{"Effect":"Perhaps"}]}'})
    with pytest.raises(InvalidRequest, match="Error putting user policy"):
        await m.call(Op.READ, "creds/bad")
    assert user_names(boto("iam", moto)) == [] and await wal.list_wal(m.storage) == []


async def test_rollback_of_a_user_never_created_and_of_an_unreachable_iam(make_mount: Any, moto: str) -> None:
    m = await _aws(make_mount, moto)
    await m.backend.put_wal("user", {"username": "vault-never-created"})
    wal.forget_in_flight()
    assert (await m.backend.rollback_wal(orphans=True)).rolled_back == 1
    dead = await _aws(make_mount, f"http://127.0.0.1:{_free_port()}")
    await dead.backend.put_wal("user", {"username": "vault-somewhere"})
    wal.forget_in_flight()
    round_ = await dead.backend.rollback_wal(orphans=True)
    assert round_.kept == 1 and len(await wal.list_wal(dead.storage)) == 1  # retried next round


async def test_revoke_right_after_issue_does_not_trust_a_missing_user(make_mount: Any, moto: str) -> None:
    m = await _aws(make_mount, moto)
    fresh = {"username": "vault-gone", "is_sts": False, "issued_at": m.backend.system.now(),
             "secret_type": "access_keys"}
    with pytest.raises(Internal, match="NoSuchEntity"):  # IAM may just not show it yet: retried later
        await m.call(Op.REVOKE, "creds/x", secret=LeaseInfo(internal_data=fresh))
    old = {**fresh, "issued_at": m.backend.system.now() - 600}
    assert await m.call(Op.REVOKE, "creds/x", secret=LeaseInfo(internal_data=old)) is None
    sts = {"username": "x", "is_sts": True, "secret_type": "access_keys"}
    assert await m.call(Op.REVOKE, "creds/x", secret=LeaseInfo(internal_data=sts)) is None
    with pytest.raises(InvalidRequest, match="not renewable"):
        await m.call(Op.RENEW, "creds/x", secret=LeaseInfo(internal_data=sts))

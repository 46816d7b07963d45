"""The aws auth method's ec2 login over HTTP (in-process server): identity documents signed with a
test certificate registered at config/certificate, moto as the EC2 API."""

from __future__ import annotations

import base64
import datetime
import os
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID
from tests.auth.aws.conftest import ACCOUNT, boto
from tests.auth.conftest import Vault

from strongroom.auth.aws.pkcs7 import PKCS7Error, verify


class Signer:
    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ec2 test")])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key())
                     .serial_number(x509.random_serial_number()).not_valid_before(now)
                     .not_valid_after(now + datetime.timedelta(days=1)).sign(self.key, hashes.SHA256()))
        self.pem = self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def der(self, doc: dict[str, Any], attributes: bool = True) -> bytes:
        opts = [pkcs7.PKCS7Options.NoCerts] + ([] if attributes else [pkcs7.PKCS7Options.NoAttributes])
        return (pkcs7.PKCS7SignatureBuilder().set_data(orjson.dumps(doc))
                .add_signer(self.cert, self.key, hashes.SHA256()).sign(serialization.Encoding.DER, opts))

    def pkcs7(self, doc: dict[str, Any], attributes: bool = True) -> str:
        return base64.b64encode(self.der(doc, attributes)).decode()


SIGNER = Signer()


def document(instance_id: str, ami: str, pending: str = "2026-01-01T00:00:00Z",
             region: str = "us-east-1") -> dict[str, Any]:
    return {"instanceId": instance_id, "imageId": ami, "accountId": ACCOUNT, "region": region,
            "pendingTime": pending, "architecture": "x86_64", "instanceType": "t2.micro"}


@pytest.fixture
def ec2(moto: str) -> Any:
    return boto("ec2", moto)


def run_instance(ec2: Any) -> tuple[str, str]:
    ami = "ami-12c6146b"  # one of moto's built-in AMIs (describe_images is slow on a fresh moto)
    inst = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1)["Instances"][0]
    return inst["InstanceId"], ami


@pytest.fixture
async def aws(vault: Vault, moto: str) -> AsyncIterator[Vault]:
    await vault.done("POST", "sys/auth/aws", {"type": "aws"})
    await vault.done("POST", "auth/aws/config/client", {"endpoint": moto, "access_key": "AKIAX", "secret_key": "s"})
    await vault.done("POST", "auth/aws/config/certificate/test", {"aws_public_cert": SIGNER.pem})
    yield vault


async def login(v: Vault, pk: str, nonce: str | None = None, role: str | None = None, status: int = 200) -> Any:
    body: dict[str, Any] = {"pkcs7": pk}
    if nonce is not None:
        body["nonce"] = nonce
    if role is not None:
        body["role"] = role
    if status == 200:
        return (await v.ok("POST", "auth/aws/login", body, token=None))["auth"]
    return await v.fails(status, "POST", "auth/aws/login", body, token=None)


async def test_certificates(aws: Vault) -> None:
    data = (await aws.ok("GET", "auth/aws/config/certificate/test"))["data"]
    assert data == {"aws_public_cert": SIGNER.pem, "type": "pkcs7"}
    b64 = base64.b64encode(SIGNER.pem.encode()).decode()
    await aws.done("POST", "auth/aws/config/certificate/other", {"aws_public_cert": b64, "type": "identity"})
    assert (await aws.ok("LIST", "auth/aws/config/certificates"))["data"]["keys"] == ["other", "test"]
    await aws.fails(400, "POST", "auth/aws/config/certificate/x", {"aws_public_cert": "garbage"})
    await aws.fails(400, "POST", "auth/aws/config/certificate/x", {"aws_public_cert": SIGNER.pem, "type": "x"})
    await aws.done("DELETE", "auth/aws/config/certificate/other")
    await aws.fails(404, "GET", "auth/aws/config/certificate/other")


async def test_ec2_role_validation(aws: Vault) -> None:
    await aws.done("POST", "auth/aws/role/web", {"auth_type": "ec2", "bound_ami_id": "ami-1"})
    data = (await aws.ok("GET", "auth/aws/role/web"))["data"]
    assert data["auth_type"] == "ec2" and data["bound_ami_id"] == ["ami-1"]
    assert (await aws.fails(400, "POST", "auth/aws/role/x", {"auth_type": "ec2"})) == [
        "at least one bound parameter should be specified on the role"]
    assert (await aws.fails(400, "POST", "auth/aws/role/x", {"auth_type": "ec2", "bound_ami_id": "a",
                                                              "bound_iam_principal_arn": "arn:aws:iam::1:user/x"})) == [
        "specified bound_iam_principal_arn but not specifying iam auth_type"]


async def test_ec2_login_and_nonce(aws: Vault, ec2: Any) -> None:
    iid, ami = run_instance(ec2)
    await aws.done("POST", "auth/aws/role/web", {"auth_type": "ec2", "bound_ami_id": ami,
                                                  "bound_account_id": ACCOUNT, "bound_region": "us-east-1",
                                                  "bound_ec2_instance_id": iid, "token_policies": "web"})
    pk = SIGNER.pkcs7(document(iid, ami))
    auth = await login(aws, pk, nonce="n-1", role="web")
    assert auth["policies"] == ["default", "web"]
    md = auth["metadata"]
    assert md["instance_id"] == iid and md["ami_id"] == ami and md["account_id"] == ACCOUNT
    assert md["region"] == "us-east-1" and md["role"] == "web" and "nonce" not in md
    await login(aws, pk, nonce="n-1", role="web")                   # reauthentication with the nonce
    assert await login(aws, pk, nonce="n-2", role="web", status=400) == ["client nonce mismatch"]
    assert await login(aws, pk, role="web", status=400) == ["client nonce mismatch"]  # replay without it
    older = SIGNER.pkcs7(document(iid, ami, pending="2025-01-01T00:00:00Z"))
    assert await login(aws, older, nonce="n-1", role="web", status=400) == [
        "instance meta-data is older than the one used for previous login"]
    newer = SIGNER.pkcs7(document(iid, ami, pending="2026-06-01T00:00:00Z"))
    assert await login(aws, newer, nonce="n-2", role="web", status=400) == ["client nonce mismatch"]
    await aws.done("POST", "auth/aws/role/web", {"allow_instance_migration": True})
    assert (await login(aws, newer, nonce="n-2", role="web"))["metadata"]["instance_id"] == iid  # migrated
    await login(aws, newer, nonce="n-2", role="web")


async def test_ec2_generated_nonce_default_role_and_disallow(aws: Vault, ec2: Any) -> None:
    iid, ami = run_instance(ec2)
    await aws.done("POST", f"auth/aws/role/{ami}", {"auth_type": "ec2", "bound_ami_id": ami})
    pk = SIGNER.pkcs7(document(iid, ami), attributes=False)
    auth = await login(aws, pk)  # no role: the AMI ID; no nonce: one is generated and returned
    nonce = auth["metadata"]["nonce"]
    assert len(nonce) == 36
    await login(aws, pk, nonce=nonce)
    await login(aws, pk, status=400)

    iid2, _ = run_instance(ec2)
    await aws.done("POST", "auth/aws/role/once", {"auth_type": "ec2", "bound_ami_id": ami,
                                                   "disallow_reauthentication": True})
    pk2 = SIGNER.pkcs7(document(iid2, ami))
    assert "nonce" not in (await login(aws, pk2, nonce="x", role="once"))["metadata"]
    assert await login(aws, pk2, nonce="x", role="once", status=400) == ["reauthentication is disabled"]


async def test_ec2_bounds_and_instance_state(aws: Vault, ec2: Any) -> None:
    iid, ami = run_instance(ec2)
    pk = SIGNER.pkcs7(document(iid, ami))
    await aws.done("POST", "auth/aws/role/other-ami", {"auth_type": "ec2", "bound_ami_id": "ami-00000000"})
    errs = await login(aws, pk, nonce="a", role="other-ami", status=400)
    assert errs == [f"Error validating instance: AMI ID '{ami}' does not belong to role 'other-ami'"]
    await aws.done("POST", "auth/aws/role/eu", {"auth_type": "ec2", "bound_region": "eu-west-1"})
    errs = await login(aws, pk, nonce="a", role="eu", status=400)
    assert errs == ["Error validating instance: region 'us-east-1' does not satisfy the constraint on role 'eu'"]
    await aws.done("POST", "auth/aws/role/acct", {"auth_type": "ec2", "bound_account_id": "999999999999"})
    await login(aws, pk, nonce="a", role="acct", status=400)
    await aws.done("POST", "auth/aws/role/iam", {"bound_iam_principal_arn": "arn:aws:iam::1:user/x",
                                                  "resolve_aws_unique_ids": False})
    assert await login(aws, pk, nonce="a", role="iam", status=400) == ["auth method ec2 not allowed for role iam"]
    assert await login(aws, pk, nonce="a", role="none", status=400) == ["entry for role none not found"]
    # Refused logins stored nothing: the first successful login sets its own nonce.
    await aws.done("POST", "auth/aws/role/ok", {"auth_type": "ec2", "bound_ami_id": ami})
    await login(aws, pk, nonce="b", role="ok")
    ghost = SIGNER.pkcs7(document("i-0123456789abcdef0", ami))
    assert (await login(aws, ghost, nonce="a", role="ok", status=400))[0].startswith("failed to verify instance ID")
    ec2.stop_instances(InstanceIds=[iid])
    assert await login(aws, pk, nonce="b", role="ok", status=400) == ["instance is not in 'running' state"]


async def test_ec2_bad_signatures(aws: Vault, ec2: Any) -> None:
    iid, ami = run_instance(ec2)
    await aws.done("POST", "auth/aws/role/ok", {"auth_type": "ec2", "bound_ami_id": ami})
    foreign = Signer().pkcs7(document(iid, ami))
    errs = await login(aws, foreign, nonce="a", role="ok", status=400)
    assert errs == ["failed to verify the instance identity document using pkcs7: failed to verify the signature"]
    der = bytearray(SIGNER.der(document(iid, ami)))
    i = bytes(der).find(iid.encode())
    der[i + 3] ^= 1  # a tampered document
    await login(aws, base64.b64encode(bytes(der)).decode(), nonce="a", role="ok", status=400)
    for junk in ("not base64!", base64.b64encode(b"\x30\x03\x02\x01\x01").decode(), ""):
        await aws.fails(400, "POST", "auth/aws/login", {"pkcs7": junk or "AA==", "role": "ok"}, token=None)
    # PEM framing with newlines (as the metadata service serves it) is accepted.
    b64 = SIGNER.pkcs7(document(iid, ami))
    pem = "-----BEGIN PKCS7-----\n" + "\n".join(b64[i:i + 64] for i in range(0, len(b64), 64)) + "\n-----END PKCS7-----"
    await login(aws, pem, nonce="a", role="ok")
    await aws.done("DELETE", "auth/aws/config/certificate/test")
    await login(aws, b64, nonce="a", role="ok", status=400)


def test_pkcs7_verifier_never_crashes() -> None:
    good = SIGNER.der(document("i-1", "ami-1"))
    assert verify(good, [SIGNER.cert]) == orjson.dumps(document("i-1", "ami-1"))
    rnd = os.urandom
    for n in range(400):
        data = bytearray(good)
        for _ in range(1 + n % 4):
            data[int.from_bytes(rnd(2), "big") % len(data)] = rnd(1)[0]
        cut = bytes(data[: len(data) - (n % 7) * 13])
        try:
            verify(cut, [SIGNER.cert])
        except PKCS7Error:
            pass


async def test_identity_accesslist_and_tidy(aws: Vault, ec2: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    iid, ami = run_instance(ec2)
    await aws.done("POST", "auth/aws/role/ok", {"auth_type": "ec2", "bound_ami_id": ami})
    pk = SIGNER.pkcs7(document(iid, ami))
    await login(aws, pk, nonce="first", role="ok")
    for name in ("identity-accesslist", "identity-whitelist"):
        data = (await aws.ok("GET", f"auth/aws/{name}/{iid}"))["data"]
        assert data["role"] == "ok" and data["client_nonce"] == "first"
        assert data["pending_time"] == "2026-01-01T00:00:00Z"
        assert data["disallow_reauthentication"] is False and data["expiration_time"].endswith("Z")
        assert (await aws.ok("LIST", f"auth/aws/{name}"))["data"]["keys"] == [iid]
    await aws.done("POST", "auth/aws/tidy/identity-accesslist", {})
    assert (await aws.ok("GET", f"auth/aws/identity-accesslist/{iid}"))["data"]["role"] == "ok"  # not expired
    await aws.done("DELETE", f"auth/aws/identity-accesslist/{iid}")  # e.g. a rebooted instance lost its nonce
    await login(aws, pk, nonce="second", role="ok")
    await aws.fails(400, "POST", "auth/aws/login", {"pkcs7": pk, "nonce": "first", "role": "ok"}, token=None)

    class Later:
        @staticmethod
        def time() -> float:
            import time
            return time.time() + 4 * 86400

    monkeypatch.setattr("strongroom.auth.aws.accesslist.time", Later)
    await aws.done("POST", "auth/aws/tidy/identity-whitelist", {"safety_buffer": "1h"})
    await aws.fails(404, "GET", f"auth/aws/identity-accesslist/{iid}")
    await aws.fails(404, "LIST", "auth/aws/identity-accesslist")


async def test_ec2_renewal_requires_running_instance(aws: Vault, ec2: Any) -> None:
    iid, ami = run_instance(ec2)
    await aws.done("POST", "auth/aws/role/ok", {"auth_type": "ec2", "bound_ami_id": ami, "token_policies": "web"})
    auth = await login(aws, SIGNER.pkcs7(document(iid, ami)), nonce="n", role="ok")
    assert auth["metadata"]["auth_type"] == "ec2"
    await aws.ok("POST", "auth/token/renew-self", {}, token=auth["client_token"])
    ec2.stop_instances(InstanceIds=[iid])
    assert await aws.fails(400, "POST", "auth/token/renew-self", {}, token=auth["client_token"]) == [
        "instance is not in 'running' state"]

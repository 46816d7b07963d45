"""The ``ec2`` login: the instance presents its PKCS#7-signed instance identity document.

Order (Vault's): the signature verifies against a registered ``pkcs7`` certificate
(config/certificate); the document parses; the role (named, or the document's AMI ID) exists and
allows ec2; the identity access list's nonce rules pass (below); the EC2 API
(``config/client`` ``endpoint``) says the instance exists and is ``running``; the role's bounds
(AMI, account, region, instance ID, VPC, subnet, instance profile ARN prefix) hold. Only then is the
access-list entry written and the token issued.

Nonce (Vault's semantics): the first login stores the client's nonce (or one generated and returned
in the token's metadata as ``nonce``); a later login of the same instance must present it
(constant-time compare) unless the role has ``allow_instance_migration`` and the document's
pendingTime is newer. A document older than the stored one is refused. With
``disallow_reauthentication`` (on the role, or an empty nonce at the first login when the role
disallows) no second login is allowed at all.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from strongroom.auth.aws import awsapi, pkcs7
from strongroom.auth.aws.certs import certificates
from strongroom.auth.aws.roles import login_role
from strongroom.auth.aws.store import AUTH_EC2, ClientConfig, Role, storage
from strongroom.errors import InvalidRequest
from strongroom.framework import FieldData, Request, Response
from strongroom.logical import Auth, Storage

if TYPE_CHECKING:
    from strongroom.auth.aws import AwsBackend

ACCESSLIST_PREFIX = "accesslist/identity/"
_ACCESSLIST_TTL = 259200  # Vault's default identity access-list entry lifetime (72h)


@dataclass(slots=True)
class IdentityDocument:
    instance_id: str
    ami_id: str
    account_id: str
    region: str
    pending_time: str


@dataclass(slots=True)
class Instance:
    state: str
    ami_id: str
    subnet_id: str
    vpc_id: str
    instance_profile_arn: str


def _pkcs7_der(text: str) -> bytes:
    body = text.strip()
    if body.startswith("-----BEGIN"):
        body = "".join(line for line in body.splitlines() if not line.startswith("-----"))
    try:
        return base64.b64decode("".join(body.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("failed to decode the PEM encoded PKCS#7 signature") from None


def parse_document(content: bytes) -> IdentityDocument:
    try:
        doc = orjson.loads(content)
    except orjson.JSONDecodeError:
        raise InvalidRequest("failed to unmarshal instance identity document") from None
    if not isinstance(doc, dict):
        raise InvalidRequest("failed to unmarshal instance identity document")

    def s(k: str) -> str:
        v = doc.get(k)
        return v if isinstance(v, str) else ""
    ident = IdentityDocument(s("instanceId"), s("imageId"), s("accountId"), s("region"), s("pendingTime"))
    if not ident.instance_id or not ident.region:
        raise InvalidRequest("instance identity document is missing instanceId or region")
    return ident


def _time(s: str) -> float:
    try:
        return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def check_nonce(nonce: str, doc: IdentityDocument, stored: dict[str, Any], allow_migration: bool) -> None:
    if stored.get("disallow_reauthentication"):
        raise InvalidRequest("reauthentication is disabled")
    if not stored.get("client_nonce"):
        raise InvalidRequest("client nonce missing in stored identity")
    given, previous = _time(doc.pending_time), _time(str(stored.get("pending_time", "")))
    if not hmac.compare_digest(nonce.encode(), str(stored["client_nonce"]).encode()):
        if not allow_migration:
            raise InvalidRequest("client nonce mismatch")
        if not given > previous:
            raise InvalidRequest("client nonce mismatch and instance meta-data incorrect")
    if given < previous:
        raise InvalidRequest("instance meta-data is older than the one used for previous login")


async def describe_instance(b: AwsBackend, config: ClientConfig, doc: IdentityDocument) -> Instance:
    endpoint = config.endpoint or f"https://ec2.{doc.region}.amazonaws.com"
    params = {"Action": "DescribeInstances", "Version": "2016-11-15", "InstanceId.1": doc.instance_id}
    try:
        root = await awsapi.call(b, config, endpoint, doc.region, "ec2", params)
    except awsapi.AwsCallError as e:
        raise InvalidRequest(f"failed to verify instance ID: {e}") from None
    local = awsapi.local
    for el in root.iter():
        if local(el.tag) == "instancesSet":
            for item in el:
                if _child_text(item, "instanceId") == doc.instance_id:
                    state = next((_child_text(c, "name") for c in item if local(c.tag) == "instanceState"), "")
                    profile = next((_child_text(c, "arn") for c in item if local(c.tag) == "iamInstanceProfile"), "")
                    return Instance(state, _child_text(item, "imageId"), _child_text(item, "subnetId"),
                                    _child_text(item, "vpcId"), profile)
    raise InvalidRequest("failed to verify instance ID: no instance details found")


def _child_text(el: ET.Element, name: str) -> str:
    for c in el:
        if awsapi.local(c.tag) == name:
            return (c.text or "").strip()
    return ""


async def login_ec2(b: AwsBackend, req: Request, d: FieldData, config: ClientConfig) -> Response | None:
    if d.get("identity") or d.get("signature"):
        raise InvalidRequest("identity/signature login is not supported; use pkcs7")
    s = storage(req)
    try:
        content = pkcs7.verify(_pkcs7_der(d.get("pkcs7")), await certificates(s, "pkcs7"))
    except pkcs7.PKCS7Error as e:
        raise InvalidRequest(f"failed to verify the instance identity document using pkcs7: {e}") from None
    doc = parse_document(content)
    role_name: str = d.get("role") or doc.ami_id
    addr = req.connection.remote_addr
    role = await login_role(s, role_name, AUTH_EC2, addr)

    async with b.instance_lock(doc.instance_id):  # one login per instance at a time: no nonce race
        return await _login_instance(b, s, d, config, doc, role_name, role, addr)


async def _login_instance(b: AwsBackend, s: Storage, d: FieldData, config: ClientConfig, doc: IdentityDocument,
                          role_name: str, role: Role, addr: str) -> Response:
    nonce: str = d.get("nonce")
    disallow = role.disallow_reauthentication
    generated = False
    if not nonce and not disallow:
        nonce, generated = str(uuid.uuid4()), True
    if len(nonce) > 128:
        raise InvalidRequest("client nonce exceeding the limit of 128 characters")
    key = ACCESSLIST_PREFIX + doc.instance_id
    raw = await s.get(key)
    stored: dict[str, Any] | None = orjson.loads(raw) if raw is not None else None
    if stored is not None and float(stored.get("expiration_time", 0)) < time.time():
        stored = None  # an expired entry counts as absent (tidy removes it)
    if stored is not None:
        check_nonce(nonce, doc, stored, role.allow_instance_migration)

    instance = await describe_instance(b, config, doc)
    if instance.state != "running":
        raise InvalidRequest("instance is not in 'running' state")
    _check_bounds(role_name, role, doc, instance)

    if stored is not None and stored.get("disallow_reauthentication"):
        disallow = True
    now = time.time()
    entry = stored or {"role": role.name, "creation_time": now, "expiration_time": now + _ACCESSLIST_TTL}
    entry.update(last_updated_time=now, pending_time=doc.pending_time, disallow_reauthentication=disallow)
    entry["client_nonce"] = "" if disallow else nonce
    await _put(s, key, entry)
    metadata = {"instance_id": doc.instance_id, "region": doc.region, "account_id": doc.account_id,
                "ami_id": doc.ami_id, "role": role.name, "role_tag_max_ttl": "0s", "auth_type": AUTH_EC2}
    if generated and not disallow:
        metadata["nonce"] = nonce
    auth = role.token.fill_auth(Auth(metadata=metadata, display_name=doc.instance_id,
                                     internal_data={"role_name": role.name, "instance_id": doc.instance_id}),
                                addr)
    return Response(auth=auth)


async def _put(s: Storage, key: str, entry: dict[str, Any]) -> None:
    await s.put(key, orjson.dumps(entry))


def _check_bounds(role_name: str, role: Role, doc: IdentityDocument, inst: Instance) -> None:
    def fail(msg: str) -> InvalidRequest:
        return InvalidRequest(f"Error validating instance: {msg}")
    if role.bound_ami_id and inst.ami_id not in role.bound_ami_id:
        raise fail(f"AMI ID {inst.ami_id!r} does not belong to role {role_name!r}")
    if role.bound_account_id and doc.account_id not in role.bound_account_id:
        raise fail(f"account ID {doc.account_id!r} does not belong to role {role_name!r}")
    if role.bound_region and doc.region not in role.bound_region:
        raise fail(f"region {doc.region!r} does not satisfy the constraint on role {role_name!r}")
    if role.bound_ec2_instance_id and doc.instance_id not in role.bound_ec2_instance_id:
        raise fail(f"instance ID {doc.instance_id!r} does not belong to role {role_name!r}")
    if role.bound_subnet_id and inst.subnet_id not in role.bound_subnet_id:
        raise fail(f"subnet ID {inst.subnet_id!r} does not satisfy the constraint on role {role_name!r}")
    if role.bound_vpc_id and inst.vpc_id not in role.bound_vpc_id:
        raise fail(f"VPC ID {inst.vpc_id!r} does not satisfy the constraint on role {role_name!r}")
    if role.bound_iam_instance_profile_arn and not any(
            inst.instance_profile_arn.startswith(p) for p in role.bound_iam_instance_profile_arn):
        raise fail(f"IAM instance profile ARN {inst.instance_profile_arn!r} does not satisfy the constraint role "
                   f"{role_name!r}")

"""pki: intermediates (CSR, sign-intermediate, set-signed), several issuers, the default issuer,
keys, issuer settings, chains verified by openssl, and the decoded-issuer cache."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from tests.engines.conftest import Mount
from tests.engines.pki.conftest import cert, error_of, mount, openssl_verify

from strongroom.framework import Op, Request


async def test_intermediate_signed_by_root_and_imported(pki: Mount, tmp_path: Path) -> None:
    inter = await mount()
    gen = await inter.ok(Op.UPDATE, "intermediate/generate/internal", {"common_name": "Example Intermediate",
                                                                        "key_type": "ec", "key_name": "int-key"})
    csr = x509.load_pem_x509_csr(gen["csr"].encode())
    assert csr.is_signature_valid and "private_key" not in gen
    assert (await inter.ok(Op.LIST, "keys/"))["key_info"] == {gen["key_id"]: {"is_default": True, "key_name": "int-key"}}
    assert (await error_of(inter, Op.LIST, "issuers/"))[0] == 404

    resp = await pki.call(Op.UPDATE, "root/sign-intermediate", {"csr": gen["csr"], "common_name": "Example Intermediate",
                                                                 "ttl": "8760h", "max_path_length": 0})
    assert resp is not None and resp.data is not None
    signed = resp.data
    ic = cert(signed["certificate"])
    root = cert(signed["issuing_ca"])
    ic.verify_directly_issued_by(root)
    bc = ic.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert bc.ca and bc.path_length == 0
    assert signed["ca_chain"] == [signed["certificate"], signed["issuing_ca"]]
    assert signed["serial_number"] in (await pki.ok(Op.LIST, "certs/"))["keys"]

    imp = await inter.ok(Op.UPDATE, "intermediate/set-signed", {"certificate": signed["certificate"]})
    (iid,) = imp["imported_issuers"]
    assert imp["mapping"] == {iid: gen["key_id"]} and imp["existing_issuers"] is None
    again = await inter.ok(Op.UPDATE, "intermediate/set-signed", {"certificate": signed["certificate"]})
    assert again["existing_issuers"] == [iid] and again["imported_issuers"] is None
    assert (await inter.ok(Op.READ, "config/issuers"))["default"] == iid

    await inter.ok(Op.UPDATE, "roles/leaf", {"allowed_domains": "example.com", "allow_subdomains": True,
                                             "key_type": "ec"})
    leaf = await inter.ok(Op.UPDATE, "issue/leaf", {"common_name": "deep.example.com", "ttl": "1h"})
    assert leaf["issuing_ca"] == signed["certificate"]
    v = openssl_verify(tmp_path, leaf["certificate"], [signed["certificate"], signed["issuing_ca"]])
    assert v.returncode == 0, v.stderr
    # importing the root too completes the chain the intermediate reports
    await inter.ok(Op.UPDATE, "issuers/import/bundle", {"pem_bundle": signed["issuing_ca"]})
    chain = (await inter.ok(Op.READ, f"issuer/{iid}"))["ca_chain"]
    assert [c.strip() for c in chain] == [signed["certificate"], signed["issuing_ca"]]
    leaf = await inter.ok(Op.UPDATE, "issue/leaf", {"common_name": "deep.example.com", "ttl": "1h"})
    assert leaf["ca_chain"] == [signed["certificate"], signed["issuing_ca"]]
    assert (await inter.ok(Op.READ, "config/issuers"))["default"] == iid  # an issuer without a key is not default


async def test_sign_intermediate_use_csr_values_and_errors(pki: Mount) -> None:
    inter = await mount()
    gen = await inter.ok(Op.UPDATE, "intermediate/generate/exported", {"common_name": "From CSR",
                                                                        "key_type": "rsa", "organization": "Org"})
    assert gen["private_key_type"] == "rsa"
    d = await pki.ok(Op.UPDATE, "root/sign-intermediate", {"csr": gen["csr"], "use_csr_values": True, "ttl": "1h"})
    subject = cert(d["certificate"]).subject
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Org"
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "From CSR"
    assert (await error_of(pki, Op.UPDATE, "root/sign-intermediate", {"csr": gen["csr"]}))[0] == 400
    assert (await error_of(pki, Op.UPDATE, "root/sign-intermediate", {"csr": "nope", "common_name": "x"}))[0] == 400
    status, msg = await error_of(inter, Op.UPDATE, "intermediate/set-signed", {"certificate": "junk"})
    assert status == 400 and "too short" in msg
    leaf = await pki.ok(Op.UPDATE, "issue/web", {"common_name": "a.example.com"})
    assert (await error_of(inter, Op.UPDATE, "intermediate/set-signed", {"certificate": leaf["certificate"]}))[0] \
        == 400


async def test_several_issuers_default_names_and_refs(pki: Mount) -> None:
    first = (await pki.ok(Op.READ, "issuer/root"))["issuer_id"]
    second = await pki.ok(Op.UPDATE, "root/generate/internal", {"common_name": "Second", "key_type": "ed25519",
                                                                 "issuer_name": "second", "ttl": "8760h"})
    listed = await pki.ok(Op.LIST, "issuers/")
    assert set(listed["keys"]) == {first, second["issuer_id"]}
    assert listed["key_info"][first]["is_default"] and not listed["key_info"][second["issuer_id"]]["is_default"]
    assert listed["key_info"][second["issuer_id"]]["issuer_name"] == "second"
    assert await error_of(pki, Op.UPDATE, "root/generate/internal", {"common_name": "x", "issuer_name": "second"}) \
        == (400, "issuer name already in use")
    # issue from a named issuer, by path or by role
    d = await pki.ok(Op.UPDATE, "issuer/second/issue/web", {"common_name": "a.example.com"})
    assert d["issuing_ca"] == second["certificate"]
    cert(d["certificate"]).verify_directly_issued_by(cert(second["certificate"]))
    await pki.ok(Op.UPDATE, "roles/by2", {"allow_any_name": True, "key_type": "ec", "issuer_ref": "second"})
    assert (await pki.ok(Op.UPDATE, "issue/by2", {"common_name": "x"}))["issuing_ca"] == second["certificate"]
    assert (await error_of(pki, Op.UPDATE, "roles/bad", {"issuer_ref": "missing"}))[1] == \
        "unable to find PKI issuer for reference: missing"
    # default switch: the CA endpoints follow
    assert await pki.ok(Op.UPDATE, "config/issuers", {"default": "second"}) == {
        "default": second["issuer_id"], "default_follows_latest_issuer": False}
    ca = await pki.call(Op.READ, "ca/pem")
    assert ca is not None and ca.raw_body == second["certificate"].encode()
    # settings
    upd = await pki.ok(Op.UPDATE, "issuer/second", {"issuer_name": "renamed", "leaf_not_after_behavior": "truncate",
                                                     "usage": "read-only,crl-signing"})
    assert upd["issuer_name"] == "renamed" and upd["usage"] == "crl-signing,read-only"
    status, msg = await error_of(pki, Op.UPDATE, "issue/by2", {"common_name": "x"})
    assert status == 400  # the role names "second", which is gone; and renamed cannot issue
    await pki.ok(Op.UPDATE, "roles/by2", {"allow_any_name": True, "key_type": "ec", "issuer_ref": "renamed"})
    status, msg = await error_of(pki, Op.UPDATE, "issue/by2", {"common_name": "x"})
    assert status == 400 and "requested usage issuing-certificates" in msg
    assert (await error_of(pki, Op.READ, "issuer/nope"))[1] == "unable to find PKI issuer for reference: nope"
    # delete: the default goes with it
    resp = await pki.call(Op.DELETE, "issuer/renamed")
    assert resp is not None and resp.warnings[0].startswith(f"Deleted issuer {second['issuer_id']} (via issuer_ref")
    assert resp.warnings[1:] == ["1 roles reference renamed", "1 roles reference default"]  # by2; web
    assert (await pki.ok(Op.READ, "config/issuers"))["default"] == ""
    assert (await error_of(pki, Op.UPDATE, "issue/web", {"common_name": "a.example.com"}))[1] == \
        "no default issuer currently configured"
    await pki.ok(Op.UPDATE, "config/issuers", {"default": first})
    await pki.ok(Op.UPDATE, "issue/web", {"common_name": "a.example.com"})


async def test_keys_existing_key_and_delete_root() -> None:
    m = await mount()
    k = await m.ok(Op.UPDATE, "keys/generate/internal", {"key_type": "ec", "key_bits": 384, "key_name": "k1"})
    assert k["key_type"] == "ec" and "private_key" not in k
    info = await m.ok(Op.READ, "key/k1")
    assert info["key_id"] == k["key_id"] and info["key_type"] == "ec" and info["subject_key_id"].count(":") == 19
    root = await m.ok(Op.UPDATE, "root/generate/existing", {"common_name": "R", "key_ref": "k1", "ttl": "8760h"})
    assert root["key_id"] == k["key_id"] and root["key_name"] == "k1"
    pub = cert(root["certificate"]).public_key()
    assert pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).count(b"\n") > 2
    assert (await m.ok(Op.LIST, "keys/"))["key_info"][k["key_id"]] == {"is_default": True, "key_name": "k1"}
    assert await error_of(m, Op.DELETE, "key/k1") == (
        400, f"Failed to Delete Key.  Key in Use by Issuer: {root['issuer_id']}")
    assert (await m.ok(Op.UPDATE, "key/k1", {"key_name": "k2"}))["key_name"] == "k2"
    assert (await error_of(m, Op.READ, "key/k1"))[1] == "unable to find PKI key for reference: k1"
    assert (await m.ok(Op.READ, "config/keys"))["default"] == k["key_id"]
    exported = await m.ok(Op.UPDATE, "keys/generate/exported", {"key_type": "rsa"})
    assert exported["private_key"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert (await m.call(Op.DELETE, "key/" + exported["key_id"])) is None
    await m.call(Op.DELETE, "root")
    assert (await error_of(m, Op.LIST, "issuers/"))[0] == 404 and (await error_of(m, Op.LIST, "keys/"))[0] == 404
    ca = await m.call(Op.READ, "ca")
    assert ca is not None and ca.raw_status == 204


async def test_issuer_cache_follows_writes_from_elsewhere(pki: Mount) -> None:
    """The decoded issuers are cached; a write another node makes reaches us via invalidate()."""
    d1 = await pki.ok(Op.READ, "issuer/root")
    other = await mount(storage=pki.storage)  # a second backend over the same storage: "another node"
    await other.ok(Op.UPDATE, "issuer/root", {"issuer_name": "renamed"})
    assert (await pki.ok(Op.READ, "issuer/root"))["issuer_id"] == d1["issuer_id"]  # still cached here
    await pki.backend.invalidate("config/issuer/" + d1["issuer_id"])
    assert (await error_of(pki, Op.READ, "issuer/root"))[0] == 400
    assert (await pki.ok(Op.READ, "issuer/renamed"))["issuer_id"] == d1["issuer_id"]


async def test_role_cache_follows_writes(pki: Mount) -> None:
    await pki.ok(Op.UPDATE, "issue/web", {"common_name": "a.example.com"})  # role now cached
    await pki.ok(Op.UPDATE, "roles/web", {"allowed_domains": "example.org", "allow_subdomains": True,
                                          "key_type": "ec"})
    assert (await error_of(pki, Op.UPDATE, "issue/web", {"common_name": "a.example.com"}))[0] == 400
    other = await mount(storage=pki.storage)
    await other.ok(Op.UPDATE, "roles/web", {"allowed_domains": "example.com", "allow_subdomains": True,
                                            "key_type": "ec"})
    assert (await error_of(pki, Op.UPDATE, "issue/web", {"common_name": "a.example.com"}))[0] == 400  # cached
    await pki.backend.invalidate("role/web")
    await pki.ok(Op.UPDATE, "issue/web", {"common_name": "a.example.com"})
    await other.call(Op.DELETE, "roles/web")
    await pki.backend.invalidate("role/web")
    assert await error_of(pki, Op.UPDATE, "issue/web", {"common_name": "a.example.com"}) == (400, "unknown role: web")


async def test_import_key_and_cert_bundle_then_issue(pki: Mount, tmp_path: Path) -> None:
    exported = await pki.ok(Op.UPDATE, "root/generate/exported", {"common_name": "Portable", "key_type": "rsa",
                                                                   "ttl": "8760h", "format": "pem",
                                                                   "private_key_format": "pem"})
    other = await mount()
    bundle = exported["private_key"] + "\n" + exported["certificate"]
    imp = await other.ok(Op.UPDATE, "config/ca", {"pem_bundle": bundle})
    (iid,) = imp["imported_issuers"]
    (kid,) = imp["imported_keys"]
    assert imp["mapping"] == {iid: kid}
    await other.ok(Op.UPDATE, "roles/r", {"allow_any_name": True, "key_type": "ec"})
    leaf = await other.ok(Op.UPDATE, "issue/r", {"common_name": "imported", "ttl": "1h"})
    assert openssl_verify(tmp_path, leaf["certificate"], [exported["certificate"]]).returncode == 0
    again = await other.ok(Op.UPDATE, "config/ca", {"pem_bundle": bundle})
    assert again["existing_keys"] == [kid] and again["existing_issuers"] == [iid]


async def test_manual_chain_follow_latest_and_issuer_crls(pki: Mount) -> None:
    root_id = (await pki.ok(Op.READ, "issuer/root"))["issuer_id"]
    await pki.ok(Op.UPDATE, "config/issuers", {"default": "root", "default_follows_latest_issuer": True})
    new = await pki.ok(Op.UPDATE, "root/generate/internal", {"common_name": "Newer", "key_type": "ec",
                                                              "ttl": "8760h", "issuer_name": "newer"})
    assert (await pki.ok(Op.READ, "config/issuers"))["default"] == new["issuer_id"]
    upd = await pki.ok(Op.UPDATE, "issuer/newer", {"manual_chain": "self,root"})
    assert upd["manual_chain"] == [new["issuer_id"], root_id] and len(upd["ca_chain"]) == 2
    assert (await error_of(pki, Op.UPDATE, "issuer/newer", {"manual_chain": "root"}))[0] == 400
    # per-issuer CRLs, PEM and DER, and crl/rotate bumps every CRL number
    for ref, issuer_id in (("root", root_id), ("newer", new["issuer_id"])):
        resp = await pki.call(Op.READ, f"issuer/{ref}/crl/der")
        assert resp is not None and resp.raw_body is not None
        crl = x509.load_der_x509_crl(resp.raw_body)
        issuer = cert((await pki.ok(Op.READ, f"issuer/{issuer_id}"))["certificate"])
        assert crl.issuer == issuer.subject and crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
        pem = await pki.call(Op.READ, f"issuer/{ref}/crl/pem")
        assert pem is not None and pem.raw_body is not None and pem.raw_body.startswith(b"-----BEGIN X509 CRL")
    as_json = await pki.ok(Op.READ, "issuer/root/crl")
    assert as_json["crl"].startswith("-----BEGIN X509 CRL")
    before = x509.load_der_x509_crl((await pki.call(Op.READ, "issuer/root/crl/der")).raw_body)  # type: ignore[union-attr, arg-type]
    assert (await pki.ok(Op.READ, "crl/rotate")) == {"success": True}
    after = x509.load_der_x509_crl((await pki.call(Op.READ, "issuer/root/crl/der")).raw_body)  # type: ignore[union-attr, arg-type]
    assert after.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number > \
        before.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert (await pki.ok(Op.READ, "cert/crl"))["certificate"].startswith("-----BEGIN X509 CRL")



class GatedStorage:
    """Storage whose reads of one key wait for a gate: to interleave a write with a cache fill."""

    def __init__(self, inner: Any, key: str) -> None:
        self.inner, self.key = inner, key
        self.gate = asyncio.Event()
        self.waiting = asyncio.Event()

    async def get(self, key: str) -> bytes | None:
        value = await self.inner.get(key)
        if key == self.key and not self.gate.is_set():
            self.waiting.set()
            await self.gate.wait()
        return value

    async def put(self, key: str, value: bytes) -> None:
        await self.inner.put(key, value)

    async def delete(self, key: str) -> None:
        await self.inner.delete(key)

    async def list(self, prefix: str) -> list[str]:
        return list(await self.inner.list(prefix))


async def test_a_cache_fill_racing_a_write_is_not_kept(pki: Mount) -> None:
    """A role or issuer read that began before a write and ends after it must not stay cached."""
    b = pki.backend
    gated = GatedStorage(pki.storage, "role/web")
    b.roles.clear()  # type: ignore[attr-defined]
    slow = asyncio.create_task(b.handle(Request(Op.UPDATE, "issue/web", {"common_name": "a.example.com"},
                                                storage=gated)))  # type: ignore[arg-type]
    await gated.waiting.wait()  # the issue has read the old role and is paused
    await pki.ok(Op.UPDATE, "roles/web", {"allowed_domains": "example.org", "allow_subdomains": True,
                                          "key_type": "ec"})
    gated.gate.set()
    await slow  # issued under the role it read
    status, _ = await error_of(pki, Op.UPDATE, "issue/web", {"common_name": "a.example.com"})
    assert status == 400  # the new role applies: the old one was not cached

    root_id = (await pki.ok(Op.READ, "issuer/root"))["issuer_id"]
    gated = GatedStorage(pki.storage, "config/issuer/" + root_id)
    b.forget()  # type: ignore[attr-defined]
    slow_read = asyncio.create_task(b.handle(Request(Op.READ, "issuer/root", storage=gated)))  # type: ignore[arg-type]
    await gated.waiting.wait()
    await pki.ok(Op.UPDATE, "issuer/root", {"issuer_name": "renamed"})
    gated.gate.set()
    await slow_read
    assert (await pki.ok(Op.READ, "issuer/renamed"))["issuer_id"] == root_id


async def test_revoke_issuer(pki: Mount) -> None:
    gen = await pki.ok(Op.UPDATE, "intermediate/generate/internal", {"common_name": "Int", "key_type": "ec"})
    signed = await pki.ok(Op.UPDATE, "root/sign-intermediate", {"csr": gen["csr"], "common_name": "Int",
                                                                 "ttl": "8760h"})
    (iid,) = (await pki.ok(Op.UPDATE, "intermediate/set-signed", {"certificate": signed["certificate"]}))[
        "imported_issuers"]
    await pki.ok(Op.UPDATE, f"issuer/{iid}", {"issuer_name": "int"})
    await pki.ok(Op.UPDATE, "issuer/int/issue/web", {"common_name": "a.example.com"})
    resp = await pki.call(Op.UPDATE, "issuer/int/revoke")
    assert resp is not None and resp.data is not None
    assert resp.data["revoked"] is True and resp.data["revocation_time"] > 0
    assert "issuing-certificates" not in resp.data["usage"] and not resp.warnings  # has a parent, not default
    status, msg = await error_of(pki, Op.UPDATE, "issuer/int/issue/web", {"common_name": "a.example.com"})
    assert status == 400 and "requested usage issuing-certificates" in msg
    crl_resp = await pki.call(Op.READ, "issuer/root/crl/der")
    assert crl_resp is not None and crl_resp.raw_body is not None
    crl = x509.load_der_x509_crl(crl_resp.raw_body)
    assert crl.get_revoked_certificate_by_serial_number(cert(signed["certificate"]).serial_number) is not None
    assert (await pki.ok(Op.READ, "issuer/int"))["revoked"] is True
    root = await pki.call(Op.UPDATE, "issuer/root/revoke")
    assert root is not None and len(root.warnings) == 3  # self-signed, no parent, the default



async def test_deactivate_drops_decoded_keys(pki: Mount) -> None:
    from strongroom.engines.pki import PkiBackend

    b = pki.backend
    assert isinstance(b, PkiBackend)
    await pki.ok(Op.UPDATE, "issue/web", {"common_name": "a.example.com"})
    assert b.state._snap is not None and b.roles
    await b.deactivate()
    assert b.state._snap is None and not b.roles
    await b.setup()
    await pki.ok(Op.UPDATE, "issue/web", {"common_name": "a.example.com"})  # and it comes back from storage


async def test_root_rotate_replace_and_aliases(pki: Mount) -> None:
    first = (await pki.ok(Op.READ, "config/issuers"))["default"]
    nxt = await pki.ok(Op.UPDATE, "root/rotate/internal", {"common_name": "Next Root", "key_type": "ec",
                                                            "issuer_name": "next", "ttl": "8760h"})
    assert (await pki.ok(Op.READ, "config/issuers"))["default"] == first  # rotate does not move the default
    assert (await pki.ok(Op.UPDATE, "root/replace", {}))["default"] == nxt["issuer_id"]  # "next" by default
    assert (await pki.ok(Op.UPDATE, "root/replace", {"default": first}))["default"] == first
    alias = await pki.ok(Op.UPDATE, "issuers/generate/root/internal", {"common_name": "Alias", "key_type": "ec"})
    assert alias["issuer_id"] in (await pki.ok(Op.LIST, "issuers/"))["keys"]
    csr = await pki.ok(Op.UPDATE, "issuers/generate/intermediate/internal", {"common_name": "I", "key_type": "ec"})
    assert csr["csr"].startswith("-----BEGIN CERTIFICATE REQUEST-----")
    assert (await pki.ok(Op.READ, "crl/rotate-delta")) == {"success": True}


async def test_permitted_dns_domains_constrain_the_ca(pki: Mount, tmp_path: Path) -> None:
    inter = await mount()
    gen = await inter.ok(Op.UPDATE, "intermediate/generate/internal", {"common_name": "Constrained", "key_type": "ec"})
    signed = await pki.ok(Op.UPDATE, "root/sign-intermediate", {
        "csr": gen["csr"], "common_name": "Constrained", "ttl": "8760h", "permitted_dns_domains": "example.com"})
    nc = cert(signed["certificate"]).extensions.get_extension_for_class(x509.NameConstraints)
    assert nc.critical and [n.value for n in nc.value.permitted_subtrees or []] == ["example.com"]
    await inter.ok(Op.UPDATE, "intermediate/set-signed", {"certificate": signed["certificate"]})
    # the intermediate itself may sign anything; openssl refuses what falls outside its subtree
    await inter.ok(Op.UPDATE, "roles/any", {"allow_any_name": True, "key_type": "ec"})
    chain = [signed["certificate"], signed["issuing_ca"]]
    inside = await inter.ok(Op.UPDATE, "issue/any", {"common_name": "a.example.com", "ttl": "1h"})
    outside = await inter.ok(Op.UPDATE, "issue/any", {"common_name": "a.example.org", "ttl": "1h"})
    assert openssl_verify(tmp_path, inside["certificate"], chain).returncode == 0
    bad = openssl_verify(tmp_path, outside["certificate"], chain)
    assert bad.returncode != 0 and "permitted subtree violation" in bad.stdout + bad.stderr


async def test_default_specifications_as_openbao(pki: Mount) -> None:
    for body in ({}, {"default": "default"}, {"default": ""}):
        assert await error_of(pki, Op.UPDATE, "config/issuers", body) == (
            400, "Invalid issuer specification; must be non-empty and can't be 'default'.")
        assert await error_of(pki, Op.UPDATE, "config/keys", body) == (
            400, "Invalid key specification; must be non-empty and can't be 'default'.")

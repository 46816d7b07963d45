"""CA keys as OpenBao keeps them: several issuers, one of them the default.

    config/ca                    POST: a new issuer (generated or imported) made the default;
                                 GET: the default issuer; DELETE: every issuer
    public_key                   GET, unauthenticated: the default issuer's public key, text/plain
    issuers                      LIST with key_info (name, is_default, public_key)
    issuers/import[/<name>]      POST: a new issuer; set_default makes it the default
    issuer/<ref>                 GET, POST (rename), DELETE; <ref> is an id, a name or "default"
    issuer/<ref>/public_key      GET, unauthenticated, text/plain
    config/issuers               GET/POST {"default": <ref>}

Every change of issuers happens under one lock (``SSHBackend.issuers_lock``) so that names stay
unique and the default never points at an issuer being deleted.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import TYPE_CHECKING

from strongroom.engines.ssh import wire
from strongroom.engines.ssh.store import DEFAULT_REF, Issuer, SSHStore
from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response, name_regex

if TYPE_CHECKING:
    from strongroom.engines.ssh import SSHBackend

_KEY_FIELDS: dict[str, Field] = {
    "generate_signing_key": Field(FieldType.BOOL, "Generate the CA key pair when none is given.", default=True),
    "key_type": Field(FieldType.STRING, "ssh-rsa, ssh-ed25519, ecdsa-sha2-nistp256/384/521, ec.", default="ssh-rsa"),
    "key_bits": Field(FieldType.INT, "Key size for RSA (default 4096) or EC (default 256) keys."),
    "private_key": Field(FieldType.STRING, "Private half of an imported CA key (PEM).", sensitive=True),
    "public_key": Field(FieldType.STRING, "Public half of an imported CA key (OpenSSH format)."),
}
_REF = Field(FieldType.STRING, "An issuer's id, its name, or \"default\".")
_NAME_RE = re.compile(r"^[\w\-.@]{0,128}$")


def paths() -> list[Path[SSHBackend]]:
    ref = f"issuer/{name_regex('issuer_ref')}"
    return [
        Path("config/ca", fields=_KEY_FIELDS,
             operations={Op.UPDATE: write_config_ca, Op.READ: read_config_ca, Op.DELETE: delete_config_ca},
             synopsis="Set up, read or delete the CA keys."),
        Path("public_key", operations={Op.READ: read_public_key}, unauthenticated=True,
             synopsis="The default issuer's public key."),
        Path("issuers/?", operations={Op.LIST: list_issuers}, synopsis="List the issuers.",
             fields={"after": Field(FieldType.STRING, "List the issuers after this id.", query=True),
                     "limit": Field(FieldType.INT, "At most this many issuers (0: all).", query=True)}),
        Path(rf"issuers/import(?:/{name_regex('issuer_name')})?",
             fields={**_KEY_FIELDS, "issuer_name": Field(FieldType.STRING, "Name of the new issuer."),
                     "set_default": Field(FieldType.BOOL, "Make the new issuer the default.")},
             operations={Op.UPDATE: import_issuer}, synopsis="Generate or import a new issuer."),
        Path(f"{ref}/public_key", fields={"issuer_ref": _REF}, operations={Op.READ: read_issuer_public_key},
             unauthenticated=True, synopsis="An issuer's public key."),
        Path(ref, fields={"issuer_ref": _REF, "issuer_name": Field(FieldType.STRING, "New name of the issuer.")},
             operations={Op.READ: read_issuer, Op.UPDATE: update_issuer, Op.DELETE: delete_issuer},
             synopsis="Read, rename or delete an issuer."),
        Path("config/issuers", fields={"default": Field(FieldType.STRING, "Reference of the default issuer.")},
             operations={Op.READ: read_issuers_config, Op.UPDATE: write_issuers_config},
             synopsis="Read or set the default issuer."),
    ]


async def _key_pair(d: FieldData) -> tuple[str, str]:
    """(public_key line, private key PEM) from the request: imported or generated."""
    pub, priv = d.get("public_key").strip(), d.get("private_key").strip()
    if bool(pub) != bool(priv):
        raise InvalidRequest("only one of public_key and private_key set; both must be set to use, "
                             "or both must be blank to auto-generate")
    if pub:
        key = wire.load_private_key(priv)
        line = wire.public_key_line(key)
        if pub.split()[:2] != line.split()[:2]:
            raise InvalidRequest("public_key failed to match private_key")
        return line, wire.private_key_pem(key)
    if not d.get("generate_signing_key"):
        raise InvalidRequest("missing public_key")
    # In a thread: an RSA key takes up to seconds of CPU, the event loop must not wait for it.
    key = await asyncio.to_thread(wire.generate_ca_key, d.get("key_type"), d.get("key_bits"))
    return wire.public_key_line(key), wire.private_key_pem(key)


def _check_name(name: str) -> None:
    if name == DEFAULT_REF:
        raise InvalidRequest("reserved keyword 'default' can not be used as issuer name")
    if not _NAME_RE.match(name):
        raise InvalidRequest("issuer name contained invalid characters")


async def _new_issuer(b: SSHBackend, req: Request, d: FieldData, name: str, make_default: bool) -> Response:
    if name:
        _check_name(name)
    public, private = await _key_pair(d)  # outside the lock: RSA generation takes a while
    async with b.issuers_lock:
        store = b.store(req)
        issuer = Issuer(str(uuid.uuid4()), name, public, private)
        await store.put_issuer(issuer)
        if make_default:
            await store.set_default(issuer.id)
    return Response(data=issuer.to_response())


# -- handlers -----------------------------------------------------------------------------------
async def write_config_ca(b: SSHBackend, req: Request, d: FieldData) -> Response | None:
    return await _new_issuer(b, req, d, "", True)


async def import_issuer(b: SSHBackend, req: Request, d: FieldData) -> Response | None:
    return await _new_issuer(b, req, d, d.get("issuer_name"), d.get("set_default"))


async def read_config_ca(b: SSHBackend, req: Request, d: FieldData) -> Response | None:
    issuer = await b.store(req).resolve(DEFAULT_REF)
    return Response(data=issuer.to_response())


async def delete_config_ca(b: SSHBackend, req: Request, d: FieldData) -> Response | None:
    async with b.issuers_lock:
        store = b.store(req)
        ids = await store.issuer_ids()
        for issuer_id in ids:
            issuer = await store.issuer(issuer_id)
            if issuer is not None:
                await store.delete_issuer(issuer)
    if not ids:
        return None
    return Response(warnings=[f"Deleted {len(ids)} issuers, including default issuer if configured."])


def _raw_key(text: str) -> Response:
    return Response(raw_body=text.encode(), raw_content_type="text/plain", raw_status=200)


async def read_public_key(b: SSHBackend, req: Request, d: FieldData) -> Response | None:
    return _raw_key((await b.store(req).resolve(DEFAULT_REF)).public_key)


async def read_issuer_public_key(b: SSHBackend, req: Request, d: FieldData) -> Response | None:
    return _raw_key((await b.store(req).resolve(d.get("issuer_ref"))).public_key)


async def list_issuers(b: SSHBackend, req: Request, d: FieldData) -> Response | None:
    store = b.store(req)
    ids = await store.issuer_ids()
    after, limit = d.get("after"), d.get("limit")
    if after:
        ids = [i for i in ids if i > after]
    if limit > 0:
        ids = ids[:limit]
    if not ids:
        raise NotFound()
    default = await store.default_issuer_id()
    info = {}
    for issuer_id in ids:
        issuer = await store.issuer(issuer_id)
        if issuer is not None:
            info[issuer_id] = {"issuer_name": issuer.name, "is_default": issuer_id == default,
                               "public_key": issuer.public_key}
    return Response(data={"keys": list(info), "key_info": info})


async def read_issuer(b: SSHBackend, req: Request, d: FieldData) -> Response | None:
    return Response(data=(await b.store(req).resolve(d.get("issuer_ref"))).to_response())


async def update_issuer(b: SSHBackend, req: Request, d: FieldData) -> Response | None:
    name = d.get("issuer_name")
    if name:
        _check_name(name)
    async with b.issuers_lock:
        store = b.store(req)
        issuer = await store.resolve(d.get("issuer_ref"))
        old = issuer.name
        issuer.name = name
        await store.put_issuer(issuer, old_name=old)
    return Response(data=issuer.to_response())


async def delete_issuer(b: SSHBackend, req: Request, d: FieldData) -> Response | None:
    ref = d.get("issuer_ref")
    async with b.issuers_lock:
        store = b.store(req)
        try:
            issuer = await store.resolve(ref)
        except InvalidRequest:
            return None  # as OpenBao: deleting what is not there succeeds
        if await store.delete_issuer(issuer):
            return Response(warnings=[(
                f"Deleted issuer {issuer.id} (via issuer_ref {ref}); this was configured as the default "
                "issuer. Operations without an explicit issuer will not work until a new default is configured.")])
    return None


async def read_issuers_config(b: SSHBackend, req: Request, d: FieldData) -> Response | None:
    return Response(data={"default": await b.store(req).default_issuer_id()})


async def write_issuers_config(b: SSHBackend, req: Request, d: FieldData) -> Response | None:
    ref = d.get("default")
    if not ref or ref == DEFAULT_REF:
        raise InvalidRequest("invalid issuer specification; must be non-empty and can't be 'default'.")
    async with b.issuers_lock:
        store = b.store(req)
        try:
            issuer = await store.resolve(ref)
        except InvalidRequest as e:
            raise InvalidRequest(f"error resolving issuer reference: {e.message}") from None
        previous = await store.default_issuer_id()
        await store.set_default(issuer.id)
    resp = Response(data={"default": issuer.id})
    if previous and previous != issuer.id:
        resp.warnings.append(f"Previous default ({previous}) has been updated with the issuer '{ref}' "
                             f"(resolved to {issuer.id})")
    return resp


__all__ = ["SSHStore", "paths"]

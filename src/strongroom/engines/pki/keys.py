"""Keys: LIST keys, keys/generate, key/<ref> (read, rename, delete unless an issuer uses it) and
config/keys (the default key). Every write drops the mount's decoded cache (state.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from strongroom.engines.pki import crypto, subject
from strongroom.engines.pki.provision import check_names, new_key, store_key
from strongroom.engines.pki.state import Snapshot
from strongroom.engines.pki.store import KEY_PREFIX, KEYS_CONFIG, KeyEntry, put_json
from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response

if TYPE_CHECKING:
    from strongroom.engines.pki import PkiBackend

_S = Field(FieldType.STRING)
_KREF = r"(?P<key_ref>\w(?:[\w\-.]*\w)?)"


def paths() -> list[Path[PkiBackend]]:
    gen = subject.CA_FIELDS
    return [
        Path(r"keys/?", operations={Op.LIST: list_keys}, synopsis="List keys."),
        Path(r"keys/generate/(?P<exported>internal|exported)",
             fields={"exported": _S, "key_type": gen["key_type"], "key_bits": gen["key_bits"],
                     "key_name": gen["key_name"]},
             operations={Op.UPDATE: generate_key}, synopsis="Generate a key."),
        Path(f"key/{_KREF}", fields={"key_ref": _S, "key_name": Field(FieldType.STRING, "The key's name.")},
             operations={Op.READ: read_key, Op.UPDATE: update_key, Op.DELETE: delete_key}, synopsis="A key."),
        Path("config/keys", fields={"default": Field(FieldType.STRING, "The default key.")},
             operations={Op.READ: read_keys_config, Op.UPDATE: write_keys_config}, synopsis="The default key."),
    ]


# -- keys ---------------------------------------------------------------------------------------

async def list_keys(b: PkiBackend, req: Request, d: FieldData) -> Response:
    snap = await b.snapshot(req)
    ids = sorted(snap.keys)
    if not ids:
        raise NotFound()  # an empty LIST is a 404, as in OpenBao
    return Response(data={"keys": ids, "key_info": {
        k: {"is_default": k == snap.default_key, "key_name": snap.keys[k].entry.name} for k in ids}})


async def generate_key(b: PkiBackend, req: Request, d: FieldData) -> Response:
    async with b.write_lock:
        snap = await b.snapshot(req)
        check_names(snap, "", d.get("key_name"))
        key, key_id, _ = await new_key(b, d, snap, "internal")
        await store_key(b, req, snap, key, key_id, d.get("key_name"))
        b.forget()
    data = {"key_id": key_id, "key_name": d.get("key_name"), "key_type": crypto.key_type_of(key)}
    if d.get("exported") == "exported":
        data["private_key"] = crypto.key_to_pem(key)
    return Response(data=data)


def _key_body(snap: Snapshot, key_id: str) -> dict[str, Any]:
    lk = snap.keys[key_id]
    ski = crypto.subject_key_id(crypto.public_key_of_key(lk.key))
    return {"key_id": key_id, "key_name": lk.entry.name, "key_type": lk.entry.private_key_type,
            "subject_key_id": crypto.key_id_hex(ski)}


async def read_key(b: PkiBackend, req: Request, d: FieldData) -> Response:
    snap = await b.snapshot(req)
    return Response(data=_key_body(snap, snap.key(d.get("key_ref")).entry.id))


async def update_key(b: PkiBackend, req: Request, d: FieldData) -> Response:
    async with b.write_lock:
        snap = await b.snapshot(req)
        lk = snap.key(d.get("key_ref"))
        name = d.get("key_name")
        if not name:
            raise InvalidRequest("missing required parameter 'key_name'")
        if any(k.entry.name == name and k.entry.id != lk.entry.id for k in snap.keys.values()):
            raise InvalidRequest("key name already in use")
        entry = KeyEntry.from_json(lk.entry.to_json())
        entry.name = name
        await b.storage(req).put(KEY_PREFIX + entry.id, entry.to_json())
        b.forget()
    return Response(data={"key_id": entry.id, "key_name": entry.name, "key_type": entry.private_key_type})


async def delete_key(b: PkiBackend, req: Request, d: FieldData) -> Response | None:
    async with b.write_lock:
        snap = await b.snapshot(req)
        try:
            lk = snap.key(d.get("key_ref"))
        except InvalidRequest:
            return None
        users = [i.id for i in snap.issuers.values() if i.entry.key_id == lk.entry.id]
        if users:
            raise InvalidRequest(f"Failed to Delete Key.  Key in Use by Issuer: {users[0]}")
        st = b.storage(req)
        await st.delete(KEY_PREFIX + lk.entry.id)
        if snap.default_key == lk.entry.id:
            await put_json(st, KEYS_CONFIG, {"default": ""})
        b.forget()
    return None


async def read_keys_config(b: PkiBackend, req: Request, d: FieldData) -> Response:
    return Response(data={"default": (await b.snapshot(req)).default_key})


async def write_keys_config(b: PkiBackend, req: Request, d: FieldData) -> Response:
    async with b.write_lock:
        snap = await b.snapshot(req)
        if d.get("default") in ("", "default"):
            raise InvalidRequest("Invalid key specification; must be non-empty and can't be 'default'.")
        default = snap.key(d.get("default")).entry.id
        await put_json(b.storage(req), KEYS_CONFIG, {"default": default})
        b.forget()
    return Response(data={"default": default})

"""Login MFA (Vault 1.10+): TOTP methods, login enforcements, entities' TOTP secrets, and the
gate a login passes before it gets a token (core/pipeline.py ``register``).

Barrier layout (relative to the part's view, core/login-mfa/)::

    method/<method_id>              a TOTP method's configuration (config.TOTPMethod)
    enforcement/<name>              a login enforcement (config.Enforcement)
    totp/<method_id>/<entity_id>    an entity's TOTP secret for a method (config.TOTPSecret):
                                    the key, shown once at generation and never again

A login that an enforcement matches (by entity, group, mount accessor or mount type) gets no token:
either the X-Vault-MFA header satisfies every matching enforcement there and then (single phase),
or the computed Auth waits in memory (pending.py) for sys/mfa/validate (two phase).
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson

from strongroom.core.identity.mfa.config import (
    Enforcement,
    TOTPMethod,
    TOTPSecret,
    go_list,
    multierror,
    parse_factors,
    parse_header,
)
from strongroom.core.identity.mfa.pending import PendingLogin, PendingLogins
from strongroom.core.identity.mfa.totp import MFAFailure, TOTPGuard
from strongroom.errors import Internal, InvalidRequest, PermissionDenied
from strongroom.framework import otp
from strongroom.lifecycle import Part
from strongroom.logical import Auth, Connection, Operation, Request, Response, Storage

if TYPE_CHECKING:
    from strongroom.core.identity.records import EntityRecord
    from strongroom.core.identity.store import IdentityStore
    from strongroom.core.mounts import MountEntry, MountTable

METHOD_PREFIX = "method/"
ENFORCEMENT_PREFIX = "enforcement/"
TOTP_PREFIX = "totp/"
HELD_WARNING = ("A login request was issued that is subject to MFA validation. Please make sure to validate the "
                "login by sending another request to mfa/validate endpoint.")

#: Mints the token of a login whose MFA is satisfied: (login request facts, mount, response with auth).
Issue = Callable[[Request, "MountEntry", Response], Awaitable[None]]


class LoginMFA(Part):
    def __init__(self, storage: Storage, identity: IdentityStore, mounts: MountTable) -> None:
        self._storage = storage
        self._identity = identity
        self._mounts = mounts
        self._lock = asyncio.Lock()
        self.methods: dict[str, TOTPMethod] = {}
        self.enforcements: dict[str, Enforcement] = {}
        self.pending = PendingLogins()
        self.guard = TOTPGuard()
        self.issue: Issue | None = None  # set by core: pipeline.issue_login

    # -- lifecycle ------------------------------------------------------------------------------
    async def setup(self) -> None:
        await self.deactivate()
        for key in await self._storage.list(METHOD_PREFIX):
            await self.invalidate(METHOD_PREFIX + key)
        for key in await self._storage.list(ENFORCEMENT_PREFIX):
            await self.invalidate(ENFORCEMENT_PREFIX + key)

    async def deactivate(self) -> None:
        self.methods.clear()
        self.enforcements.clear()
        self.pending.clear()
        self.guard.clear()

    async def invalidate(self, key: str) -> None:
        """A key under core/login-mfa/ changed behind this node: re-read that one record (secrets
        are read from storage at each use, so nothing of them is cached)."""
        if key.startswith(METHOD_PREFIX):
            raw = await self._storage.get(key)
            if raw is None:
                self.methods.pop(key[len(METHOD_PREFIX):], None)
            else:
                m = TOTPMethod.from_json(orjson.loads(raw))
                self.methods[m.id] = m
        elif key.startswith(ENFORCEMENT_PREFIX):
            raw = await self._storage.get(key)
            if raw is None:
                self.enforcements.pop(key[len(ENFORCEMENT_PREFIX):], None)
            else:
                e = Enforcement.from_json(orjson.loads(raw))
                self.enforcements[e.name] = e

    async def periodic(self, now: float) -> None:
        self.pending.prune()
        self.guard.prune()

    # -- methods --------------------------------------------------------------------------------
    def method_by_name(self, name: str) -> TOTPMethod | None:
        return next((m for m in self.methods.values() if m.name == name), None)

    async def write_method(self, method_id: str, name: str, fields: dict[str, Any]) -> TOTPMethod | None:
        """Create (no id) or update a TOTP method; None: ``method_id`` names no method (Vault: no-op)."""
        async with self._lock:
            method = self.methods.get(method_id) if method_id else None
            if method_id and method is None:
                return None
            if name:
                named = self.method_by_name(name)
                if named is not None and method is not None and named.id != method.id:
                    raise InvalidRequest(f"a login MFA method configuration with the method name {name} already exists")
                method = method or named
            fresh = TOTPMethod(id=method.id if method else str(uuid.uuid4()), name=name or (method.name if method else ""))
            fresh.configure(fields)
            await self._storage.put(METHOD_PREFIX + fresh.id, orjson.dumps(fresh.to_json()))
            self.methods[fresh.id] = fresh
            return fresh

    async def delete_method(self, method_id: str) -> None:
        async with self._lock:
            for e in self.enforcements.values():
                if method_id in e.mfa_method_ids:
                    raise InvalidRequest(f"methodID is still used by an enforcement configuration with ID: {e.id}")
            if method_id not in self.methods:
                return
            for entity_id in await self._storage.list(f"{TOTP_PREFIX}{method_id}/"):
                await self._storage.delete(f"{TOTP_PREFIX}{method_id}/{entity_id}")
            await self._storage.delete(METHOD_PREFIX + method_id)
            self.methods.pop(method_id, None)

    # -- secrets --------------------------------------------------------------------------------
    def _method_and_entity(self, method_id: str, entity_id: str) -> tuple[TOTPMethod, EntityRecord]:
        method = self.methods.get(method_id)
        if method is None:
            raise InvalidRequest(f'configuration for method ID "{method_id}" does not exist')
        entity = self._identity.resolve(entity_id)
        if entity is None:
            raise InvalidRequest("invalid entity ID")
        return method, entity

    async def secret(self, method_id: str, entity_id: str) -> TOTPSecret | None:
        raw = await self._storage.get(f"{TOTP_PREFIX}{method_id}/{entity_id}")
        return TOTPSecret.from_json(orjson.loads(raw)) if raw is not None else None

    async def generate(self, method_id: str, entity_id: str) -> Response:
        """A new TOTP secret for an entity: its otpauth URL and QR code, shown this once."""
        async with self._lock:
            method, entity = self._method_and_entity(method_id, entity_id)
            if await self.secret(method.id, entity.id) is not None:
                return Response(warnings=[f'Entity already has a secret for MFA method "{method.name}"'])
            key = otp.new_key(method.key_size)
            url = otp.key_url(method.issuer, entity.id, key, method.period, method.digits, method.algorithm)
            barcode = base64.b64encode(otp.barcode_png(url, method.qr_size)).decode() if method.qr_size else ""
            secret = TOTPSecret(key=key, issuer=method.issuer, period=method.period, digits=method.digits,
                                algorithm=method.algorithm, skew=method.skew)
            await self._storage.put(f"{TOTP_PREFIX}{method.id}/{entity.id}", orjson.dumps(secret.to_json()))
            return Response(data={"url": url, "barcode": barcode})

    async def destroy(self, method_id: str, entity_id: str) -> None:
        async with self._lock:
            if self._identity.resolve(entity_id) is None:
                raise InvalidRequest("invalid entity ID")
            method, entity = self._method_and_entity(method_id, entity_id)
            await self._storage.delete(f"{TOTP_PREFIX}{method.id}/{entity.id}")

    # -- enforcements ---------------------------------------------------------------------------
    async def write_enforcement(self, name: str, given: dict[str, list[str] | None]) -> None:
        """Vault's handleMFALoginEnforcementUpdate: fields not given keep their values."""
        async with self._lock:
            old = self.enforcements.get(name)
            e = Enforcement.from_json(old.to_json()) if old else Enforcement(id=str(uuid.uuid4()), name=name)
            ids = given.get("mfa_method_ids")
            if ids is None:
                raise InvalidRequest("missing method ids")
            if any(i not in self.methods for i in ids):
                raise InvalidRequest("one of the provided method ids doesn't exist")
            e.mfa_method_ids = list(ids)
            auth_mounts = [m for m in self._mounts.entries() if m.table == "auth"]
            checks: list[tuple[str, Callable[[str], bool], str]] = [
                ("auth_method_accessors", lambda a: any(m.accessor == a for m in auth_mounts),
                 "one of the auth method accessors provided is invalid"),
                ("auth_method_types", lambda t: any(m.type == t for m in auth_mounts),
                 "one of the auth method types provided is invalid"),
                ("identity_group_ids", lambda g: g in self._identity.groups,
                 "one of the provided group ids doesn't exist"),
                ("identity_entity_ids", lambda i: self._identity.resolve(i) is not None,
                 "one of the provided entity ids doesn't exist"),
            ]
            any_given = False
            for field_name, exists, message in checks:
                values = given.get(field_name)
                if values is None:
                    continue
                if not all(exists(v) for v in values):
                    raise InvalidRequest(message)
                setattr(e, field_name, list(values))
                any_given = True
            if not any_given:
                raise InvalidRequest("One of auth_method_accessors, auth_method_types, identity_group_ids, "
                                     "identity_entity_ids must be specified")
            await self._storage.put(ENFORCEMENT_PREFIX + name, orjson.dumps(e.to_json()))
            self.enforcements[name] = e

    async def delete_enforcement(self, name: str) -> None:
        async with self._lock:
            await self._storage.delete(ENFORCEMENT_PREFIX + name)
            self.enforcements.pop(name, None)

    def matching(self, entity: EntityRecord | None, mount: MountEntry) -> list[Enforcement]:
        """The enforcements a login through ``mount`` by ``entity`` is subject to (sorted by id)."""
        if not self.enforcements:
            return []
        groups = (self._identity.direct_groups(entity.id) + self._identity.inherited_groups(entity.id)
                  if entity is not None else [])
        return sorted((e for e in self.enforcements.values()
                       if e.matches(entity_id=entity.id if entity else "", group_ids=groups,
                                    accessor=mount.accessor, mount_type=mount.type)), key=lambda e: e.id)

    # -- the login gate -------------------------------------------------------------------------
    async def hold_login(self, req: Request, mount: MountEntry, resp: Response, entity: EntityRecord | None) -> bool:
        """Whether the login in ``resp`` is held for its second factor (``resp`` then carries Vault's
        mfa_requirement in place of the auth). Raises 403 when MFA is required and the X-Vault-MFA
        header fails it, or when there is no entity to check it for; False: issue the token."""
        header = req.headers.get("x-vault-mfa", "") if req.headers else ""
        creds = parse_header(header)
        matched = self.matching(entity, mount)
        if not matched:
            if creds:
                resp.warnings.append("Found MFA header but failed to find MFA Enforcement Config")
            return False
        if entity is None:
            raise PermissionDenied()  # MFA needs an entity to check the factor against
        assert resp.auth is not None
        if creds:  # single phase
            for e in matched:
                try:
                    await self.satisfy(e, entity, creds)
                except MFAFailure:
                    raise PermissionDenied() from None
            return False
        request_id = str(uuid.uuid4())
        self.pending.put(PendingLogin(request_id=request_id, auth=resp.auth, path=req.full_path or req.path,
                                      mount_point=req.mount_point, mount_accessor=mount.accessor,
                                      remote_addr=req.connection.remote_addr, created=self.pending.now()))
        resp.auth = Auth(renewable=False, token_type="default", mfa_requirement={
            "mfa_request_id": request_id,
            "mfa_constraints": {e.name: {"any": [self._constraint(i) for i in e.mfa_method_ids]} for e in matched},
        })
        resp.warnings.append(HELD_WARNING)
        return True

    def _constraint(self, method_id: str) -> dict[str, Any]:
        m = self.methods.get(method_id)
        return {"type": m.type if m else "", "id": method_id, "uses_passcode": m is not None, "name": m.name if m else ""}

    async def validate(self, req: Request, request_id: str, creds: dict[str, list[str]]) -> Response:
        """sys/mfa/validate: the held login's token once every matching enforcement is satisfied.
        A failure puts the login back (until it expires), as Vault does; success spends it."""
        login = self.pending.take(request_id)
        if login is None:
            raise InvalidRequest("invalid request ID")
        try:
            entity = self._identity.resolve(login.auth.entity_id)
            if entity is None:
                raise Internal("MFA validation failed. entity not found: <nil>")
            if entity.disabled:
                raise PermissionDenied()
            mount = self._mounts.by_accessor(login.mount_accessor)
            if mount is None:
                raise Internal("failed to find MFAEnforcement configuration")
            matched = self.matching(entity, mount)
            if not matched:
                raise Internal("found nil or empty MFAEnforcement configuration")
            for e in matched:
                try:
                    await self.satisfy(e, entity, creds)
                except MFAFailure as f:
                    raise PermissionDenied(f"failed to satisfy enforcement {e.name}. error: {f}") from None
            assert self.issue is not None
            resp = Response(auth=login.auth)
            facts = Request(Operation.UPDATE, login.path, full_path=login.path, mount_point=login.mount_point,
                            mount_accessor=login.mount_accessor, mount_type=mount.type,
                            connection=Connection(remote_addr=login.remote_addr), id=req.id)
            await self.issue(facts, mount, resp)
            return resp
        except BaseException:
            self.pending.put_back(login)
            raise

    async def satisfy(self, e: Enforcement, entity: EntityRecord, creds: dict[str, list[str]]) -> None:
        """Vault's validateLoginMFA: credentials by method id or name; any one method passing
        satisfies the enforcement. MFAFailure carries Vault's text."""
        given: dict[str, list[str]] = {}
        errors: list[str] = []
        for mid in e.mfa_method_ids:
            if mid in creds:
                given[mid] = creds[mid]
                continue
            m = self.methods.get(mid)
            if m is None:
                errors.append(f"failed to find MFA config for method ID {mid}")
            elif m.name in creds:
                given[mid] = creds[m.name]
            else:
                errors.append(f"failed to find MFA credentials associated with an MFA method ID {mid}, "
                              f"method name {m.name}")
        if not given and e.mfa_method_ids:
            raise MFAFailure("failed to sanitize MFA creds, " + multierror(errors))
        failures: list[str] = []
        for mid in e.mfa_method_ids:
            if mid not in given:
                continue
            try:
                await self._check(mid, entity, given[mid])
                return
            except MFAFailure as f:
                failures.append(str(f))
        failures.append(f"login MFA validation failed for methodID: {go_list(e.mfa_method_ids)}")
        raise MFAFailure(multierror(failures))

    async def _check(self, method_id: str, entity: EntityRecord, creds: list[str]) -> None:
        method = self.methods.get(method_id)
        if method is None:
            raise MFAFailure("MFA method configuration not present")
        try:
            passcode = parse_factors(creds)
        except ValueError as e:
            raise MFAFailure(f"failed to parse MFA factor, {e}") from None
        secret = await self.secret(method_id, entity.id)
        if secret is None:
            raise MFAFailure(f'MFA secret for method name "{method.name}" not present in entity "{entity.id}"')
        self.guard.check(passcode, secret, method_id, entity.id, method.max_validation_attempts)

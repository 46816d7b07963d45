"""AWS: IAM principals (and EC2 instances) log in with proof AWS itself vouches for.

Paths (the table of contents; handlers live in the sibling modules)::

    config/client   credentials and endpoints (EC2, IAM, STS), server id header     config.py
    role/<name>     auth_type iam (bound principal ARNs) or ec2 (bounds), token_*    roles.py
    roles/          LIST roles (also role/)                                          roles.py
    config/certificate/<name>  certificates verifying EC2 identity documents      certs.py
    config/certificates/       LIST them                                          certs.py
    login           iam: a signed sts:GetCallerIdentity request -> token            login.py, iam.py
                    ec2: a PKCS#7-signed instance identity document + nonce -> token  ec2.py, pkcs7.py
    identity-accesslist/<id>   READ/DELETE/LIST instances that logged in (also identity-whitelist/)
    tidy/identity-accesslist   remove expired entries                         accesslist.py

Renewal re-checks: renew.py. Storage layout: store.py.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from strongroom.auth.aws import accesslist, certs, config, login, renew, roles
from strongroom.framework import Backend, BackendConfig, Path
from strongroom.framework.http_client import PooledClient
from strongroom.logical import Auth, Storage


def paths() -> list[Path[AwsBackend]]:
    return [*config.paths(), *certs.paths(), *roles.paths(), *login.paths(), *accesslist.paths()]


class AwsBackend(Backend):
    backend_type = "credential"
    help = ("The aws auth method lets AWS IAM principals log in with a signed sts:GetCallerIdentity request,\n"
            "which is replayed to the configured STS endpoint, and EC2 instances with their PKCS#7-signed\n"
            "instance identity document, checked against the EC2 API.")

    #: Seconds a login waits for the STS answer before failing.
    sts_timeout: float = 10.0

    def __init__(self, cfg: BackendConfig) -> None:
        super().__init__(cfg, paths())
        self._http = PooledClient(max_connections=20)
        self._instance_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    @asynccontextmanager
    async def instance_lock(self, instance_id: str) -> AsyncIterator[None]:
        """Serializes the logins of one EC2 instance (its access-list entry is read, checked, written)."""
        lock = self._instance_locks.get(instance_id)
        if lock is None:
            lock = self._instance_locks[instance_id] = asyncio.Lock()
        async with lock:
            yield

    def http_client(self) -> httpx.AsyncClient:
        """One pooled client per mount (no redirects are followed: the endpoint is the only target)."""
        return self._http.get()

    async def renew_auth(self, storage: Storage, auth: Auth) -> None:
        """Core asks before renewing a token this mount issued; raises to refuse (see renew.py)."""
        await renew.renew_auth(self, storage, auth)

    def forget_clients(self) -> None:
        """The config changed; the pool has no per-endpoint state, so nothing to drop."""

    async def deactivate(self) -> None:
        await self._http.close()
        await super().deactivate()


__all__ = ["AwsBackend", "paths"]

"""The aws secrets engine: IAM users and STS credentials on demand, with Vault's paths and fields.

    config/root        root credentials, region, custom IAM/STS endpoints, retries, username template
    config/lease       lease and lease_max of iam_user credentials
    roles/<name>       credential_type iam_user | assumed_role | federation_token, policies, groups
    creds/<name>       GET or POST (ttl, role_arn, role_session_name): credentials for the role
    sts/<name>         the same (Vault keeps both; only legacy roles tell them apart)

iam_user credentials are leased: issuing one creates an IAM user (write-ahead entry first, see
framework/wal.py), attaches the role's policies, groups and tags, and creates its access key;
revoking the lease deletes the keys, inline and attached policies, group memberships and the user.
A failure half-way deletes the user at once and answers with a 4xx naming the AWS error; if even
that cleanup fails, the write-ahead entry stays and the framework's rollback retries it.
assumed_role and federation_token answer STS credentials: leased for the STS lifetime, not
renewable, nothing to revoke (AWS expires them). Talking to AWS: client.py (SigV4, one pooled
``httpx.AsyncClient`` per mount, created on first use and closed on deactivate).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from strongroom.engines.aws import config, creds, roles
from strongroom.engines.aws.client import AWSClient, iam_endpoint, sts_endpoint
from strongroom.engines.aws.sigv4 import Credentials
from strongroom.engines.aws.store import LEASE_KEY, ROOT_KEY, LeaseConfig, RootConfig
from strongroom.errors import InvalidRequest
from strongroom.engines._request import warn_ignored_params
from strongroom.framework import Backend, BackendConfig, Path, Request, Response

_POOL = httpx.Limits(max_connections=32, max_keepalive_connections=16)


def paths() -> list[Path[AWSBackend]]:
    return [*config.paths(), *roles.paths(), *creds.paths()]


class AWSBackend(Backend):
    help = (
        "The AWS backend dynamically generates AWS access keys for a set of IAM policies.\n"
        "The AWS access keys have a configurable lease set and are automatically revoked\n"
        "at the end of the lease. After mounting this backend, credentials to generate\n"
        "IAM keys must be configured with the \"root\" path and policies must be written\n"
        "using the \"roles/\" endpoints before any access keys can be generated."
    )

    def __init__(self, config_: BackendConfig) -> None:
        super().__init__(config_, paths(), [creds.ACCESS_KEYS])
        self._http: httpx.AsyncClient | None = None
        self._root: RootConfig | None = None
        self._root_loaded = False
        self._client: AWSClient | None = None
        self.roles_lock = asyncio.Lock()

    # -- configuration, cached until written or invalidated ------------------------------------
    async def root_config(self) -> RootConfig | None:
        if not self._root_loaded:
            raw = await self.system.storage.get(ROOT_KEY)
            self._root = RootConfig.from_json(raw) if raw is not None else None
            self._root_loaded = True
            self._client = None
        return self._root

    def forget_root(self) -> None:
        self._root_loaded = False
        self._root = None
        self._client = None

    async def lease_config(self) -> LeaseConfig | None:
        raw = await self.system.storage.get(LEASE_KEY)
        return LeaseConfig.from_json(raw) if raw is not None else None

    async def client(self) -> AWSClient:
        """The IAM/STS client for the current root configuration."""
        root = await self.root_config()
        if root is None or not root.access_key or not root.secret_key:
            raise InvalidRequest("no AWS root credentials configured: write them to config/root first")
        if self._client is None:
            if self._http is None:
                self._http = httpx.AsyncClient(limits=_POOL, timeout=httpx.Timeout(10.0), follow_redirects=False)
            region = root.region or "us-east-1"
            self._client = AWSClient(self._http, Credentials(root.access_key, root.secret_key),
                                     iam_endpoint(region, root.iam_endpoint), sts_endpoint(region, root.sts_endpoint),
                                     max_retries=root.max_retries)
        return self._client

    async def handle(self, req: Request) -> Response | None:
        return warn_ignored_params(self, req, await super().handle(req))

    # -- lifecycle -------------------------------------------------------------------------------
    async def setup(self) -> None:
        self.forget_root()

    async def invalidate(self, key: str) -> None:
        if key == ROOT_KEY:
            self.forget_root()

    async def deactivate(self) -> None:
        await super().deactivate()
        http, self._http = self._http, None
        self._client = None
        if http is not None:
            await http.aclose()

    async def rollback(self, kind: str, data: Any) -> bool | None:
        """A write-ahead "user" entry whose lease was never written: delete that IAM user."""
        if kind != "user":
            return True  # nothing this engine knows how to undo; keeping it would retry forever
        username = str((data or {}).get("username", ""))
        if username:
            await creds.delete_user(await self.client(), username)
        return True


def aws_backend(config_: BackendConfig) -> AWSBackend:
    return AWSBackend(config_)


__all__ = ["AWSBackend", "aws_backend"]

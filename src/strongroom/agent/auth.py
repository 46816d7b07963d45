"""Auto-auth methods: how the agent gets a token, by Vault Agent's method names and config keys.

Each method is one ``login(client)`` returning Vault's ``auth`` object (client_token,
lease_duration, renewable, ...). Credentials read from files stay in memory only.

* ``token_file``: ``token_file_path``; the token is used as it is (looked up for its TTL).
* ``approle``: ``role_id_file_path``, ``secret_id_file_path`` (optional: bind_secret_id=false
  roles), ``remove_secret_id_file_after_reading`` (default true, as Vault), and
  ``secret_id_response_wrapping_path``: the secret-id file then holds a wrapping token, which is
  looked up first and refused unless it was created at that path (a token wrapped anywhere else
  was swapped in transit), then unwrapped. A spent token fails the unwrap, and the server raises
  its tamper alarm. The last secret id read is kept (in memory) for re-authentication once the
  file is gone, as Vault Agent does.
* ``userpass``: ``username`` and ``password`` (or ``password_file_path``).
* ``jwt``: ``path`` (a file holding the JWT, read at each login), ``role``,
  ``remove_jwt_after_reading`` (default true, as Vault's; the last JWT read is kept in memory).
* ``kubernetes``: ``role`` and ``token_path`` (default: the pod's service account token).
* ``cert``: ``POST {mount}/login {name}`` over mutual TLS. The certificate is the method's
  ``client_cert``/``client_key`` (with its ``ca_cert`` for the server), or else the ``vault``
  stanza's, as Vault Agent does; ``reload = true`` reads the files again at each login (a renewed
  certificate is used without restarting the agent).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

from strongroom.agent.config import ConfigError, Method, VaultConfig
from strongroom.api import Client
from strongroom.api.errors import APIError, ClientError

__all__ = ["AuthError", "LoginMethod", "method_for"]


class AuthError(Exception):
    """Logging in failed in a way retrying will not fix without a change (config, credentials)."""


class LoginMethod(Protocol):
    async def login(self, client: Client) -> dict[str, Any]: ...


def method_for(m: Method, vault: VaultConfig | None = None) -> LoginMethod:
    kinds: dict[str, type[AppRole] | type[TokenFile] | type[UserPass] | type[RoleJWT]] = {
        "approle": AppRole, "token_file": TokenFile, "userpass": UserPass, "jwt": RoleJWT, "kubernetes": RoleJWT}
    if m.type == "cert":
        return Cert(m, vault or VaultConfig())
    kind = kinds.get(m.type)
    if kind is None:
        supported = ", ".join(sorted([*kinds, "cert"]))
        raise ConfigError(f'auto_auth method "{m.type}" is not supported (supported: {supported})')
    return kind(m)


def _read(path: str, what: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as e:
        raise AuthError(f"error reading {what} file {path}: {e.strerror or e}") from None


def _auth_of(body: Any, where: str) -> dict[str, Any]:
    auth = body.get("auth") if isinstance(body, dict) else None
    if not isinstance(auth, dict) or not auth.get("client_token"):
        raise AuthError(f"no token in the answer from {where}")
    return auth


async def _login(client: Client, kind: str, mount: str, data: dict[str, Any], *,
                 path: str = "") -> dict[str, Any]:
    """POST a login (``path``, by default ``{mount}/login``) without a token and take its ``auth``; the
    server refusing the credentials (400, 403) is an AuthError, anything else the caller's to retry."""
    try:
        body = await client.request("POST", path or f"{mount}/login", json=data,
                                    headers={"X-Vault-Token": ""})
    except APIError as e:
        if e.status in (400, 403):
            raise AuthError(f"{kind} login failed: {'; '.join(e.errors) or e.status}") from None
        raise
    return _auth_of(body, f"{mount}/login")


def _flag(config: dict[str, Any], key: str, default: bool) -> bool:
    """A boolean option as Vault Agent reads it: a bool, or a string "true"/"1"."""
    value = config.get(key, default)
    return value if isinstance(value, bool) else str(value).lower() in ("true", "1")


def _remove(path: str, what: str) -> None:
    try:
        os.remove(path)
    except OSError as e:
        raise AuthError(f"error removing {what} file {path}: {e.strerror or e}") from None


class TokenFile:
    def __init__(self, m: Method) -> None:
        self.path = str(m.config.get("token_file_path") or "")
        if not self.path:
            raise ConfigError("token_file: token_file_path is required")

    async def login(self, client: Client) -> dict[str, Any]:
        token = _read(self.path, "token")
        body = await client.request("GET", "auth/token/lookup-self", headers={"X-Vault-Token": token})
        data = body.get("data", {}) if isinstance(body, dict) else {}
        return {"client_token": token, "lease_duration": int(data.get("ttl") or 0),
                "renewable": bool(data.get("renewable")), "accessor": data.get("accessor", ""),
                "policies": data.get("policies") or []}


class AppRole:
    def __init__(self, m: Method) -> None:
        c = m.config
        self.mount = m.mount_path
        self.role_id_file = str(c.get("role_id_file_path") or "")
        if not self.role_id_file:
            raise ConfigError("approle: role_id_file_path is required")
        self.secret_id_file = str(c.get("secret_id_file_path") or "")
        self.remove = _flag(c, "remove_secret_id_file_after_reading", True)
        self.wrapping_path = str(c.get("secret_id_response_wrapping_path") or "").strip("/")
        self._secret_id = ""  # the last one read: the file may be gone by the next login

    async def login(self, client: Client) -> dict[str, Any]:
        role_id = _read(self.role_id_file, "role ID")
        data = {"role_id": role_id}
        if self.secret_id_file:
            secret_id = await self._secret_id_now(client)
            if secret_id:
                data["secret_id"] = secret_id
        return await _login(client, "approle", self.mount, data)

    async def _secret_id_now(self, client: Client) -> str:
        if not os.path.exists(self.secret_id_file):
            if self._secret_id:
                return self._secret_id
            raise AuthError(f"secret ID file {self.secret_id_file} does not exist")
        raw = _read(self.secret_id_file, "secret ID")
        if not raw:
            return self._secret_id
        secret_id = await self._unwrap(client, raw) if self.wrapping_path else raw
        self._secret_id = secret_id
        if self.remove:
            _remove(self.secret_id_file, "secret ID")
        return secret_id

    async def _unwrap(self, client: Client, wrapping_token: str) -> str:
        try:
            info = await client.request("POST", "sys/wrapping/lookup", json={"token": wrapping_token},
                                        headers={"X-Vault-Token": ""})
        except APIError as e:
            raise AuthError(f"error looking up the wrapped secret ID: {'; '.join(e.errors) or e.status}") from None
        created = str((info or {}).get("data", {}).get("creation_path", "")).strip("/") if isinstance(info, dict) else ""
        if created != self.wrapping_path:
            raise AuthError(f"unexpected creation path of the wrapped secret ID: {created!r}"
                            f" (expected {self.wrapping_path!r}); refusing to unwrap it")
        try:
            body = await client.request("POST", "sys/wrapping/unwrap", json={},
                                        headers={"X-Vault-Token": wrapping_token})
        except APIError as e:
            raise AuthError(f"error unwrapping the secret ID: {'; '.join(e.errors) or e.status}") from None
        secret_id = body.get("data", {}).get("secret_id") if isinstance(body, dict) else None
        if not secret_id:
            raise AuthError("the unwrapped response holds no secret_id")
        return str(secret_id)


class UserPass:
    def __init__(self, m: Method) -> None:
        c = m.config
        self.mount = m.mount_path
        self.username = str(c.get("username") or "")
        self.password = str(c.get("password") or "")
        self.password_file = str(c.get("password_file_path") or "")
        if not self.username or not (self.password or self.password_file):
            raise ConfigError("userpass: username and password (or password_file_path) are required")

    async def login(self, client: Client) -> dict[str, Any]:
        password = self.password or _read(self.password_file, "password")
        return await _login(client, "userpass", self.mount, {"password": password},
                            path=f"{self.mount}/login/{self.username}")


K8S_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"


class RoleJWT:
    """``jwt`` and ``kubernetes``: ``POST {mount}/login {role, jwt}`` with a JWT read from a file."""

    def __init__(self, m: Method) -> None:
        c = m.config
        self.mount = m.mount_path
        self.kind = m.type
        self.role = str(c.get("role") or "")
        if m.type == "kubernetes":
            self.path, self.remove = str(c.get("token_path") or K8S_TOKEN), False
        else:
            self.path = str(c.get("path") or "")
            self.remove = _flag(c, "remove_jwt_after_reading", True)
        if not self.role or not self.path:
            raise ConfigError(f"{m.type}: role and {'token_path' if m.type == 'kubernetes' else 'path'} are required")
        self._jwt = ""

    async def login(self, client: Client) -> dict[str, Any]:
        if os.path.exists(self.path):
            self._jwt = _read(self.path, "JWT")
            if self.remove:
                _remove(self.path, "JWT")
        if not self._jwt:
            raise AuthError(f"JWT file {self.path} does not exist")
        return await _login(client, self.kind, self.mount, {"role": self.role, "jwt": self._jwt})


class Cert:
    """``cert``: the TLS client certificate is the credential; ``name`` picks one of the method's
    certificate roles (all are tried when it is empty, as the server does)."""

    def __init__(self, m: Method, vault: VaultConfig) -> None:
        c = m.config
        self.mount = m.mount_path
        self.name = str(c.get("name") or "")
        self.ca_cert = str(c.get("ca_cert") or "")
        self.client_cert = str(c.get("client_cert") or "")
        self.client_key = str(c.get("client_key") or "")
        if bool(self.client_cert) != bool(self.client_key):
            raise ConfigError("cert: client_cert and client_key must be given together")
        if not self.client_cert and not vault.client_cert:
            raise ConfigError("cert: a client certificate is required (client_cert and client_key in the method's"
                              " config, or in the vault stanza)")
        self.reload = _flag(c, "reload", False)
        # As Vault Agent: a CA or a certificate of the method's own means a client of its own for the
        # login; otherwise the agent's client, which presents the vault stanza's certificate.
        self.own = bool(self.ca_cert or self.client_cert)
        self.vault = vault
        self._client: Client | None = None

    async def _login_client(self, client: Client) -> Client:
        if not self.own:
            return client
        if self._client is None or self.reload:
            cert, key = (self.client_cert, self.client_key) if self.client_cert else (
                self.vault.client_cert, self.vault.client_key)
            try:
                fresh = Client(client.address, cacert=self.ca_cert or self.vault.ca_cert or None,
                               client_cert=cert or None, client_key=key or None,
                               tls_skip_verify=self.vault.tls_skip_verify)
            except ClientError as e:
                raise AuthError(f"cert: {e}") from None
            self._client, old = fresh, self._client
            if old is not None:  # logins run one at a time: nothing else uses it
                await old.aclose()
        return self._client

    async def login(self, client: Client) -> dict[str, Any]:
        login_client = await self._login_client(client)
        return await _login(login_client, "cert", self.mount, {"name": self.name} if self.name else {})

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

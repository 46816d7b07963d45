"""login/<username>: Okta checks the password (Authentication API); the token gets the config's
token_policies plus the policies of the user's Okta groups (asked with the API token, when one is
configured), of the local groups listed at users/<name>, and of users/<name>.

Okta's transaction states, as Vault handles them: SUCCESS and PASSWORD_WARN (with a warning) log
in; LOCKED_OUT, PASSWORD_EXPIRED and anything unknown answer "okta authentication failed";
MFA_ENROLL(_ACTIVATE) are refused unless ``bypass_okta_mfa``; MFA_REQUIRED is bypassed when
``bypass_okta_mfa``, else completed with a TOTP factor (when ``totp`` is sent) or an Okta Verify
push (polled once a second until Okta says SUCCESS, REJECTED or TIMEOUT, within ``login_timeout``).

Renewal (:func:`renew_auth`) logs in again with the password of the login (kept, as in Vault, in
the token's internal data: stored with the token entry through the barrier, never shown) and refuses when the policies changed ("policies have changed, not
renewing"). Okta refusing answers 400 with Okta's summary and code; Okta unreachable or slow, 500.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any


from strongroom.auth.okta.api import Okta, OktaError, Unavailable
from strongroom.auth.okta.config import Config, load_config, storage
from strongroom.auth.okta.mapping import policies_for
from strongroom.errors import Internal, InvalidRequest
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response
from strongroom.logical import Alias, Auth, Storage

if TYPE_CHECKING:
    from strongroom.auth.okta import OktaBackend

PROVIDERS = ("GOOGLE", "OKTA")
TOTP, PUSH = "token:software:totp", "push"
_FAILED = "okta authentication failed"


def paths() -> list[Path[OktaBackend]]:
    return [Path("login/(?P<username>.+)", fields={
        "username": Field(FieldType.STRING, "Username to be used for login."),
        "password": Field(FieldType.STRING, "Password for this user.", sensitive=True),
        "totp": Field(FieldType.STRING, "TOTP passcode.", sensitive=True),
        "nonce": Field(FieldType.STRING, "Nonce provided if performing login that requires number verification "
                       "challenge."),
        "provider": Field(FieldType.STRING, "Preferred factor provider."),
    }, operations={Op.UPDATE: login}, unauthenticated=True, synopsis="Log in with a username and password.")]


@dataclass(slots=True)
class Verified:
    policies: list[str]
    config: Config
    warnings: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)  # Okta's, then users/<name>'s (Vault's group aliases)


def _factor(factors: Any, provider: str, kind: str) -> dict[str, Any] | None:
    for f in factors if isinstance(factors, list) else []:
        if not isinstance(f, dict) or f.get("factorType") != kind or f.get("provider") not in PROVIDERS:
            continue
        if provider and f.get("provider") != provider:
            continue
        return f
    return None


async def _mfa(api: Okta, result: dict[str, Any], totp: str, provider: str) -> dict[str, Any]:
    factors = (result.get("_embedded") or {}).get("factors")
    totp_f, push_f = _factor(factors, provider, TOTP), _factor(factors, provider, PUSH)
    state = str(result.get("stateToken") or "")
    if totp_f is not None and totp:
        return await api.verify_factor(str(totp_f.get("id")), state, totp)
    if push_f is not None and push_f.get("provider") == "OKTA":
        result = await api.verify_factor(str(push_f.get("id")), state, None)
        while result.get("status") == "MFA_CHALLENGE":
            outcome = result.get("factorResult")
            if outcome == "REJECTED":
                raise InvalidRequest("multi-factor authentication denied")
            if outcome == "TIMEOUT":
                raise InvalidRequest("failed to complete multi-factor authentication")
            if outcome != "WAITING":
                raise InvalidRequest(_FAILED)
            await asyncio.sleep(api.poll_interval)
            result = await api.verify_factor(str(push_f.get("id")), state, None)
        return result
    if totp_f is not None:
        raise InvalidRequest("'totp' passcode parameter is required to perform MFA")
    raise InvalidRequest("Okta Verify Push or TOTP or Google TOTP factor is required in order to perform MFA")


async def _verify(b: OktaBackend, st: Storage, username: str, password: str, totp: str, provider: str,
                  remote_addr: str | None) -> Verified:
    cfg = await load_config(st)
    if cfg is None:
        raise InvalidRequest("Okta auth method not configured")
    if remote_addr is not None:
        cfg.token.check_source(remote_addr)
    if not username:
        raise InvalidRequest("missing username")
    api = Okta(b.client(), cfg.org_url, cfg.api_token, b.api_timeout)
    api.poll_interval = b.poll_interval
    warnings: list[str] = []
    try:
        async with asyncio.timeout(b.login_timeout):
            result = await api.authn(username, password)
            status = result.get("status")
            if status == "PASSWORD_WARN":
                warnings.append("Your Okta password is in warning state and needs to be changed soon.")
            elif status in ("MFA_ENROLL", "MFA_ENROLL_ACTIVATE"):
                if not cfg.bypass_okta_mfa:
                    raise InvalidRequest("okta authentication failed: you must complete MFA enrollment to continue")
            elif status == "MFA_REQUIRED" and not cfg.bypass_okta_mfa:
                result = await _mfa(api, result, totp, provider)
                if result.get("status") != "SUCCESS":
                    raise InvalidRequest(_FAILED)
            elif status not in ("SUCCESS", "MFA_REQUIRED"):
                raise InvalidRequest(_FAILED)
            groups: list[str] = []
            if cfg.api_token:
                user = (result.get("_embedded") or {}).get("user")
                user_id = user.get("id") if isinstance(user, dict) else None
                if not isinstance(user_id, str) or not user_id:
                    raise InvalidRequest(_FAILED)
                try:
                    groups = await api.user_groups(user_id)
                except OktaError as e:
                    raise InvalidRequest(f"okta failure retrieving groups: {e.summary} (code={e.code})") from None
                if not groups:
                    warnings.append("no Okta groups found; only policies from locally-defined groups available")
    except TimeoutError:
        raise Internal(f"Okta ({cfg.org_url}) did not answer within {b.login_timeout:g}s") from None
    except OktaError as e:
        raise InvalidRequest(f"Okta auth failed: the API returned an error: {e.summary} (code={e.code})") from None
    except Unavailable as e:
        b.system.logger.warning("okta login: %s", e)
        raise Internal(f"Okta auth failed: {e}") from None
    policies, all_groups = await policies_for(st, username, groups)
    return Verified(policies=policies, config=cfg, warnings=warnings, groups=all_groups)








async def login(b: OktaBackend, req: Request, d: FieldData) -> Response | None:
    username: str = d.get("username")
    password: str = d.get("password") or ""
    provider = (d.get("provider") or "").upper()
    if provider and provider not in PROVIDERS:
        raise InvalidRequest(f"provider {provider} is not among the supported ones [{' '.join(PROVIDERS)}]")
    st = storage(req)
    addr = req.connection.remote_addr
    v = await _verify(b, st, username, password, d.get("totp") or "", provider, addr)
    metadata = {"username": username, "policies": ",".join(v.policies)}
    auth = v.config.token.fill_auth(Auth(metadata=metadata, display_name=username,
                                         internal_data={"password": password}, alias=Alias(name=username)), addr)
    auth.policies = list(dict.fromkeys([*auth.policies, *v.policies]))
    # As Vault: the user's Okta groups (and users/<name>'s local ones) are the entity's external
    # groups on this mount (identity groups with a group alias of that name).
    auth.group_aliases = list(dict.fromkeys(g for g in v.groups if g))
    return Response(auth=auth, warnings=v.warnings)


async def renew_auth(b: OktaBackend, st: Storage, auth: Auth) -> None:
    username = auth.metadata.get("username", "")
    password = auth.internal_data.get("password")
    if not isinstance(password, str):
        raise InvalidRequest("okta token cannot be validated at renewal time")
    v = await _verify(b, st, username, password, "", "", None)
    want = {*v.config.token.token_policies, *v.policies} - {"default"}
    if want != set(auth.policies) - {"default"}:
        raise InvalidRequest("policies have changed, not renewing")

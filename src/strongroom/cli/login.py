"""``login``: authenticate, and keep the token in the token helper (``~/.vault-token``)."""

from __future__ import annotations

import getpass
import os
import sys
from typing import Any

from strongroom.api import Client, ClientError
from strongroom.cli.context import (
    ENV_PREFIXES,
    CLIError,
    Context,
    UsageError,
    api_errors,
    err,
    out,
    out_raw,
    store_token,
    token_path,
)
from strongroom.cli.input import parse_data
from strongroom.cli.output import as_dict, kv_table, secret_json, secret_pairs
from strongroom.cli.paths import print_secret

LOGIN_HELP = """\
Usage: strongroom login [options] [AUTH K=V...]

  Authenticates to the server and stores the resulting token with the token
  helper, in ~/.vault-token, where later commands find it.

  With the default token method, the argument is an existing token, which is
  checked with auth/token/lookup-self; without it the token is prompted for.

      $ strongroom login s.3Xb9...

  Other methods take their login fields as K=V arguments:

      $ strongroom login -method=userpass username=alice password=...
      $ strongroom login -method=approle role_id=... secret_id=...
      $ strongroom login -method=aws role=dev-role-iam

{aws}

  -path selects where the method is mounted if not at its default path."""

METHODS = ("token", "userpass", "ldap", "approle", "cert", "jwt", "oidc", "radius", "okta", "aws")

# The aws method's help, kept here so that `login -help` needs no import of the aws login module.
AWS_HELP = """\
  -method=aws signs an sts:GetCallerIdentity request with your AWS credentials
  for the aws auth method's iam login (the request is sent to STS by the server,
  not from here). Credentials come, in this order, from the arguments
  aws_access_key_id=, aws_secret_access_key= (and aws_security_token=), the
  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) variables, or
  the shared credentials file (~/.aws/credentials, profile AWS_PROFILE).
  role= is the role to log in with (default: the IAM principal's name);
  header_value= the server's iam_server_id_header_value; region= the region to
  sign for (default us-east-1); sts_endpoint= the STS URL to sign for (default
  https://sts.amazonaws.com/, or https://sts.REGION.amazonaws.com/ with
  region=); mount= overrides -path."""
LOGIN_HELP = LOGIN_HELP.replace("{aws}", AWS_HELP)


def _token_secret(lookup: dict[str, Any]) -> dict[str, Any]:
    """A token lookup reshaped as the login response a token would have had."""
    d = as_dict(lookup.get("data"))
    return {
        "request_id": "", "lease_id": "", "lease_duration": 0, "renewable": False, "data": None,
        "warnings": lookup.get("warnings"),
        "auth": {
            "client_token": d.get("id", ""), "accessor": d.get("accessor", ""),
            "policies": d.get("policies"), "token_policies": d.get("policies"),
            "identity_policies": d.get("identity_policies"), "metadata": d.get("meta"),
            "orphan": d.get("orphan", False), "entity_id": d.get("entity_id", ""),
            "lease_duration": d.get("ttl", 0), "renewable": d.get("renewable", False),
            "mfa_requirement": None,
        },
    }


def _prompt(what: str, non_interactive: bool) -> str:
    if non_interactive or not sys.stdin.isatty():
        raise UsageError(f"No {what} given, and stdin is not a terminal to prompt on.")
    return getpass.getpass(f"{what.capitalize()} (will be hidden): ").strip()


def login(argv: list[str]) -> int:
    ctx = Context("login", LOGIN_HELP, field=True)
    fs = ctx.fs
    method = fs.string("method", "token",
                       "The auth method: token, userpass, ldap, approle, aws, cert, jwt, ...")
    mount = fs.string("path", "", "Where the auth method is mounted. The default is the method's name.")
    no_store = fs.boolean("no-store", False, "Do not store the token in the token helper.")
    token_only = fs.boolean("token-only", False, "Print only the token, implying -no-store.")
    no_print = fs.boolean("no-print", False, "Print nothing on success.")
    args = ctx.parse(argv, 0, None)
    kind = method.value.lower()
    if kind not in METHODS:
        raise UsageError(f'Unknown auth method: {method.value}. Use "strongroom auth list" to see the\n'
                         "enabled auth methods. Some methods can only be used through the HTTP API.")
    path = (mount.value or kind).strip("/")
    store = not (no_store.value or token_only.value)

    if kind == "token":
        fields = parse_data(args[1:]) if args and "=" not in args[0] else parse_data(args)
        token = args[0] if args and "=" not in args[0] else str(fields.get("token", ""))
        if not token:
            token = _prompt("token", ctx.non_interactive.value)
        if not token:
            raise UsageError("No token given.")
    elif kind == "aws":
        from strongroom.cli.aws_login import login_fields  # stdlib and the SigV4 signer only

        fields, mount_arg = login_fields(parse_data(args))
        path = mount_arg or path  # as Vault: mount= takes precedence over -path
    else:
        fields = parse_data(args)
        if kind in ("userpass", "ldap", "okta", "radius") and not fields.get("username"):
            raise CLIError("Error authenticating: 'username' must be specified")
        if kind in ("userpass", "ldap", "okta", "radius") and not fields.get("password"):
            fields["password"] = _prompt("password", ctx.non_interactive.value)

    async def go(c: Client) -> int:
        if kind == "token":
            c.token = token
            try:
                lookup = await c.request("GET", "auth/token/lookup-self")
            except ClientError as e:
                raise CLIError(f"Error authenticating: error looking up token: {e}") from e
            secret = _token_secret(lookup if isinstance(lookup, dict) else {})
        else:
            login_path = f"auth/{path}/login"
            body = dict(fields)
            if kind in ("userpass", "ldap", "okta", "radius"):
                login_path += f"/{body.pop('username')}"
            with api_errors("Error authenticating"):
                resp = await c.request("PUT", login_path, json=body)
            secret = resp if isinstance(resp, dict) else {}
        auth = secret.get("auth")
        if not isinstance(auth, dict) or not auth.get("client_token"):
            raise CLIError("Error authenticating: the server returned no token")
        return _finish(ctx, secret, str(auth["client_token"]), store, token_only.value, no_print.value)

    return ctx.run(go, token="" if kind != "token" else None)


def _finish(ctx: Context, secret: dict[str, Any], token: str, store: bool, token_only: bool,
            no_print: bool) -> int:
    if store:
        try:
            store_token(token)
        except OSError as e:
            raise CLIError(f"Error storing token in {token_path()}: {e}") from e
    variable = next((p + "TOKEN" for p in ENV_PREFIXES if os.environ.get(p + "TOKEN")), None)
    if store and variable:
        err(f"WARNING! The {variable} environment variable is set, and it takes precedence\n"
            "over the token stored by this login. Unset it to use the stored token.\n")
    if no_print:
        return 0
    if token_only:
        out_raw(token)
        return 0
    if ctx.field or ctx.format != "table":
        if ctx.format != "table" and not ctx.field:
            ctx.print_data(secret_json(secret), lambda: "")
            return 0
        return print_secret(ctx, secret)
    if store:
        out("Success! You are now authenticated. The token below is now stored in the\n"
            "token helper, and later commands use it automatically: there is no need to\n"
            "log in again until it expires.\n")
    else:
        out("Success! You are now authenticated.\n")
        err("The token was not stored in the token helper. Set VAULT_TOKEN to it, or\n"
            "pass it with each request.\n")
    out(kv_table(secret_pairs(secret)))
    return 0

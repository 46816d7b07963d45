"""``operator``: initialize, unseal, seal, and rotate the barrier key."""

from __future__ import annotations

import getpass
import sys
from typing import Any

from strongroom.api import Client, ClientError
from strongroom.cli.context import CLIError, Context, UsageError, api_errors, out
from strongroom.cli.output import as_dict, kv_table, short_time
from strongroom.cli.status import print_status, seal_and_leader

INIT_HELP = """\
Usage: strongroom operator init [options]

  Initializes a new server: generates the root key, splits it into key shares
  with Shamir's secret sharing, and creates the initial root token. This runs
  once per cluster; the key shares and root token are shown only here.

      $ strongroom operator init -key-shares=5 -key-threshold=3

  With -status, only reports whether the server is initialized (exit code 0
  if it is, 2 if it is not)."""

UNSEAL_HELP = """\
Usage: strongroom operator unseal [options] [KEY]

  Provides one unseal key share. Once the threshold of shares has been given,
  the server unseals. Without KEY, the share is read from the terminal without
  echo, which keeps it out of shell history.

      $ strongroom operator unseal
      $ strongroom operator unseal -reset"""

SEAL_HELP = """\
Usage: strongroom operator seal [options]

  Seals the server: it drops its decryption key from memory and stops serving
  requests until it is unsealed again. Requires a token with sudo on sys/seal.

      $ strongroom operator seal"""

KEY_STATUS_HELP = """\
Usage: strongroom operator key-status [options]

  Shows the term of the barrier encryption key in use, when it was installed,
  and how many encryptions it has performed."""

ROTATE_HELP = """\
Usage: strongroom operator rotate [options]

  Installs a new barrier encryption key. New data is encrypted with it; older
  terms stay available to decrypt existing data. Requires sudo on sys/rotate."""


def init(argv: list[str]) -> int:
    ctx = Context("operator init", INIT_HELP)
    fs = ctx.fs
    shares = fs.integer("key-shares", 5, "Number of key shares to split the root key into.", aliases=("n",))
    threshold = fs.integer("key-threshold", 3, "Number of key shares needed to unseal.", aliases=("t",))
    pgp_keys = fs.strings("pgp-keys", "Comma-separated PGP public keys (base64) to encrypt the shares with, "
                          "one per share.")
    root_pgp = fs.string("root-token-pgp-key", "", "PGP public key (base64) to encrypt the root token with.")
    rec_shares = fs.integer("recovery-shares", 5, "Number of recovery key shares (auto-unseal only).")
    rec_threshold = fs.integer("recovery-threshold", 3, "Recovery shares needed (auto-unseal only).")
    only_status = fs.boolean("status", False, "Only report whether the server is initialized.")
    ctx.parse(argv, 0)

    async def go(c: Client) -> int:
        if only_status.value:
            with api_errors("Error checking init status"):
                resp = await c.request("GET", "sys/init")
            if isinstance(resp, dict) and resp.get("initialized"):
                out("Vault is initialized")
                return 0
            out("Vault is not initialized")
            return 2
        body: dict[str, Any] = {"secret_shares": shares.value, "secret_threshold": threshold.value}
        if pgp_keys.value:
            body["pgp_keys"] = pgp_keys.value
        if root_pgp.value:
            body["root_token_pgp_key"] = root_pgp.value
        if rec_shares.is_set or rec_threshold.is_set:
            body["recovery_shares"] = rec_shares.value
            body["recovery_threshold"] = rec_threshold.value
        with api_errors("Error initializing"):
            resp = await c.request("PUT", "sys/init", json=body)
        resp = resp if isinstance(resp, dict) else {}
        result = {
            "unseal_keys_b64": resp.get("keys_base64") or [],
            "unseal_keys_hex": resp.get("keys") or [],
            "unseal_shares": shares.value,
            "unseal_threshold": threshold.value,
            "recovery_keys_b64": resp.get("recovery_keys_base64"),
            "recovery_keys_hex": resp.get("recovery_keys"),
            "recovery_keys_shares": rec_shares.value if resp.get("recovery_keys") else 0,
            "recovery_keys_threshold": rec_threshold.value if resp.get("recovery_keys") else 0,
            "root_token": resp.get("root_token", ""),
        }
        ctx.print_data(result, lambda: _init_table(result))
        return 0

    return ctx.run(go)


def _init_table(r: dict[str, Any]) -> str:
    lines = [f"Unseal Key {i}: {k}" for i, k in enumerate(r["unseal_keys_b64"] or r["unseal_keys_hex"], 1)]
    lines += [f"Recovery Key {i}: {k}" for i, k in enumerate(r["recovery_keys_b64"] or [], 1)]
    n, t = r["unseal_shares"], r["unseal_threshold"]
    lines += ["", f"Initial Root Token: {r['root_token']}", "",
              f"The server is initialized with {n} key shares and a key threshold of {t}.",
              "Keep the shares above in separate, safe places: whenever the server is",
              f"sealed or restarted, {t} of them are needed to unseal it before it can",
              "answer requests again.",
              "",
              "The root key itself is stored nowhere. If fewer than the threshold of",
              "shares survive, the data can never be unsealed."]
    return "\n".join(lines)


def unseal(argv: list[str]) -> int:
    ctx = Context("operator unseal", UNSEAL_HELP)
    reset = ctx.fs.boolean("reset", False, "Discard the key shares given so far.")
    migrate = ctx.fs.boolean("migrate", False, "Mark this share as part of a seal migration.")
    args = ctx.parse(argv, 0, 1)
    key = args[0] if args else ""
    if not key and not reset.value:
        if ctx.non_interactive.value or not sys.stdin.isatty():
            raise UsageError("No unseal key given, and stdin is not a terminal to prompt on. Pass the key "
                             "share as the argument:\n\n    strongroom operator unseal KEY")
        key = getpass.getpass("Unseal Key (will be hidden): ").strip()
        if not key:
            raise UsageError("No unseal key given.")

    async def go(c: Client) -> int:
        body: dict[str, Any] = {"reset": True} if reset.value else {"key": key}
        if migrate.value:
            body["migrate"] = True
        with api_errors("Error resetting unseal process" if reset.value else "Error unsealing"):
            await c.request("PUT", "sys/unseal", json=body)
            seal, leader = await seal_and_leader(c)
        print_status(ctx, seal, leader)
        return 0

    return ctx.run(go)


def seal(argv: list[str]) -> int:
    ctx = Context("operator seal", SEAL_HELP, output=False)
    ctx.parse(argv, 0)

    async def go(c: Client) -> int:
        with api_errors("Error sealing"):
            await c.request("PUT", "sys/seal")
        out("Success! Vault is sealed.")
        return 0

    return ctx.run(go)


async def _key_status(c: Client) -> dict[str, Any]:
    resp = as_dict(await c.request("GET", "sys/key-status"))
    data = as_dict(resp.get("data")) or resp
    return {"term": data.get("term", 0), "install_time": data.get("install_time", ""),
            "encryptions": data.get("encryptions", 0)}


def _key_status_table(ks: dict[str, Any]) -> str:
    return kv_table([("Key Term", str(ks["term"])),
                     ("Install Time", short_time(str(ks["install_time"]))),
                     ("Encryption Count", str(ks["encryptions"]))], header=())


def key_status(argv: list[str]) -> int:
    ctx = Context("operator key-status", KEY_STATUS_HELP)
    ctx.parse(argv, 0)

    async def go(c: Client) -> int:
        with api_errors("Error reading key status"):
            ks = await _key_status(c)
        ctx.print_data(ks, lambda: _key_status_table(ks))
        return 0

    return ctx.run(go)


def rotate(argv: list[str]) -> int:
    ctx = Context("operator rotate", ROTATE_HELP)
    ctx.parse(argv, 0)

    async def go(c: Client) -> int:
        with api_errors("Error rotating key"):
            await c.request("PUT", "sys/rotate")
        try:
            ks = await _key_status(c)
        except ClientError as e:
            out("Success! Rotated key")
            raise CLIError(f"Error reading key status: {e}") from e
        ctx.print_data(ks, lambda: "Success! Rotated key\n\n" + _key_status_table(ks))
        return 0

    return ctx.run(go)

"""``operator rekey`` and ``operator generate-root``: the key ceremonies, with Vault's flags and output."""

from __future__ import annotations

import base64
import getpass
import secrets
import string
import sys
from typing import Any

from strongroom.api import Client
from strongroom.cli.context import CLIError, Context, UsageError, api_errors, err, out
from strongroom.cli.output import as_dict, kv_table

REKEY_HELP = """\
Usage: strongroom operator rekey [options] [KEY]

  Generates a new set of unseal key shares, with a new number of shares and a
  new threshold. A quorum of the CURRENT unseal key holders must each provide
  their share. The old shares stay valid until the rekey completes (and, with
  -verify, until a quorum of the NEW shares has been given back).

  Start a rekey:

      $ strongroom operator rekey -init -key-shares=5 -key-threshold=3

  Provide a current unseal key share (prompted for without a KEY argument;
  "-" reads it from stdin):

      $ strongroom operator rekey -nonce=NONCE KEY

  Verify the new shares (when started with -verify):

      $ strongroom operator rekey -verify -nonce=VERIFICATION_NONCE NEWKEY"""

GENERATE_ROOT_HELP = """\
Usage: strongroom operator generate-root [options] [KEY]

  Generates a new root token from a quorum of unseal key shares. The token is
  returned XORed with a one-time password (OTP) that only the operator knows:

      $ strongroom operator generate-root -generate-otp
      $ strongroom operator generate-root -init -otp=OTP
      $ strongroom operator generate-root -nonce=NONCE KEY     (once per share)
      $ strongroom operator generate-root -decode=ENCODED -otp=OTP"""

_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_DEFAULT_OTP_LENGTH = 28


def _read_key(ctx: Context, key: str, nonce: str, label: str) -> str:
    if key == "-":
        return sys.stdin.read().strip()
    if key:
        return key.strip()
    if ctx.non_interactive.value:
        raise UsageError("Refusing to read from stdin with -non-interactive specified; specify nonce via the "
                         "-nonce flag")
    if not sys.stdin.isatty():
        raise UsageError('No key given and stdin is not a terminal: pass the key share as the argument, or "-" '
                         "to read it from stdin.")
    err(f"{label} nonce: {nonce}")
    return getpass.getpass("Unseal Key (will be hidden): ").strip()


# -- operator rekey ------------------------------------------------------------------------------

def _rekey_table(s: dict[str, Any]) -> str:
    rows = [("Nonce", _na(s.get("nonce"))), ("Started", _b(s.get("started")))]
    if s.get("started"):
        progress, required = s.get("progress", 0), s.get("required", 0)
        suffix = " (verification in progress)" if progress == required else ""
        rows.append(("Progress", f"{progress}/{required}{suffix}"))
        if s.get("n"):
            rows.append(("New Shares", str(s["n"])))
        if s.get("t"):
            rows.append(("New Threshold", str(s["t"])))
        rows.append(("Verification Required", _b(s.get("verification_required"))))
        if s.get("verification_nonce"):
            rows.append(("Verification Nonce", _na(s["verification_nonce"])))
    return kv_table(rows)


def _verify_table(s: dict[str, Any]) -> str:
    return kv_table([("Started", _b(s.get("started"))), ("New Shares", str(s.get("n", 0))),
                     ("New Threshold", str(s.get("t", 0))), ("Verification Nonce", _na(s.get("nonce"))),
                     ("Verification Progress", f"{s.get('progress', 0)}/{s.get('t', 0)}")])


def _b(v: Any) -> str:
    return "true" if v else "false"


def _na(v: Any) -> str:
    """An empty value as Vault's tables print it."""
    return str(v) if v not in (None, "") else "n/a"


def rekey(argv: list[str]) -> int:
    ctx = Context("operator rekey", REKEY_HELP)
    fs = ctx.fs
    init = fs.boolean("init", False, "Start a rekey; only one can be in progress at a time.")
    cancel = fs.boolean("cancel", False, "Cancel the rekey in progress (with -verify: restart verification).")
    status = fs.boolean("status", False, "Print the status of the rekey in progress.")
    shares = fs.integer("key-shares", 5, "Number of new key shares.", aliases=("n",))
    threshold = fs.integer("key-threshold", 3, "Number of new shares needed to unseal.", aliases=("t",))
    nonce = fs.string("nonce", "", "Nonce of the rekey (or, with -verify, of the verification).")
    target = fs.string("target", "barrier", "Key to rekey: only \"barrier\" is supported.")
    verify = fs.boolean("verify", False, "With -init: require verification of the new shares before they take "
                        "effect. Otherwise: act on the verification step.")
    pgp_keys = fs.strings("pgp-keys", "PGP public keys to encrypt the new shares with (not supported yet).")
    backup = fs.boolean("backup", False, "Store PGP-encrypted shares in the server (not supported yet).")
    backup_delete = fs.boolean("backup-delete", False, "Delete backed-up shares (there are never any: PGP "
                               "is not supported yet).")
    backup_retrieve = fs.boolean("backup-retrieve", False, "Retrieve backed-up shares (there are never any).")
    args = ctx.parse(argv, 0, 1)
    if target.value.strip().lower() != "barrier":
        raise UsageError(f"Unknown target: {target.value}" if target.value.strip().lower() not in
                         ("recovery", "hsm") else "Recovery keys are not supported: this server has only the "
                         "Shamir seal")

    async def go(c: Client) -> int:
        base = "sys/rekey/verify" if verify.value and not init.value else "sys/rekey/init"
        if backup_delete.value:
            with api_errors("Error deleting rekey backed up keys"):
                await c.request("DELETE", "sys/rekey/backup")
            out("Success! Deleted backed up keys (if they existed)")
            return 0
        if backup_retrieve.value:
            with api_errors("Error retrieving rekey backed up keys"):
                s = as_dict(await c.request("GET", "sys/rekey/backup"))
            ctx.print_data(s, lambda: kv_table([(k, str(v)) for k, v in sorted(s.items())]))
            return 0
        if cancel.value:
            with api_errors("Error canceling rekey"):
                await c.request("DELETE", base)
            out("Success! Canceled rekeying (if it was started)")
            return 0
        if init.value:
            body: dict[str, Any] = {"secret_shares": shares.value, "secret_threshold": threshold.value,
                                    "require_verification": verify.value, "backup": backup.value}
            if pgp_keys.value:
                body["pgp_keys"] = pgp_keys.value
            with api_errors("Error initializing rekey"):
                s = as_dict(await c.request("PUT", "sys/rekey/init", json=body))
            if ctx.format == "table":
                err("WARNING! If you lose the keys after they are returned, there is no recovery. Keep "
                    "each new share in a separate, safe place.\n")
            ctx.print_data(s, lambda: _rekey_table(s))
            return 0
        if status.value:
            with api_errors("Error reading rekey status"):
                s = as_dict(await c.request("GET", base))
            ctx.print_data(s, lambda: _verify_table(s) if base.endswith("verify") else _rekey_table(s))
            return 0
        return await _provide(ctx, c, base, args[0] if args else "", nonce.value, verify.value)

    return ctx.run(go)


async def _provide(ctx: Context, c: Client, base: str, key: str, nonce: str, verify: bool) -> int:
    with api_errors("Error getting rekey status"):
        s = as_dict(await c.request("GET", base))
    if not s.get("started"):
        raise CLIError('No rekey is in progress. Start a rekey process by running "strongroom operator rekey '
                       '-init".', 1)
    if not key:
        nonce = str(s.get("nonce", ""))
    key = _read_key(ctx, key, nonce, "Rekey operation")
    if not nonce:
        raise CLIError("Missing nonce value: specify it via the -nonce flag", 1)
    path = "sys/rekey/verify" if verify else "sys/rekey/update"
    with api_errors("Error posting unseal key"):
        resp = as_dict(await c.request("PUT", path, json={"key": key, "nonce": nonce}))
    if not resp.get("complete"):
        with api_errors("Error reading rekey status"):
            s = as_dict(await c.request("GET", base))
        ctx.print_data(s, lambda: _verify_table(s) if verify else _rekey_table(s))
        return 0
    if verify:
        ctx.print_data(resp, lambda: "Rekey verification successful. The rekey operation is complete and the "
                       "new keys are now active.")
        return 0
    if ctx.format != "table":
        out(_render(ctx, resp))
        return 0
    keys = resp.get("keys_base64") or resp.get("keys") or []
    lines = [""] + [f"Key {i}: {k}" for i, k in enumerate(keys, 1)]
    lines += ["", f"Operation nonce: {resp.get('nonce', '')}", ""]
    n, t = s.get("n", 0), s.get("t", 0)
    if resp.get("verification_required"):
        lines.append(f"The server has created a new unseal key, split into {n} key shares and a key threshold of "
                     f"{t}. These will not be active until after verification is complete. Keep your current "
                     "shares until then: cancelling the rekey or sealing the server discards the new ones.")
        out("\n".join(lines))
        with api_errors("Error reading rekey status"):
            v = as_dict(await c.request("GET", "sys/rekey/verify"))
        out("")
        out(_verify_table(v))
        return 0
    lines.append(f"Unseal keys rekeyed to {n} key shares and a key threshold of {t}. Distribute the key shares "
                 f"printed above: whenever the server is sealed or restarted, {t} of them are needed to unseal it.")
    out("\n".join(lines))
    return 0


def _render(ctx: Context, value: Any) -> str:
    from strongroom.cli.output import render

    return render(value, ctx.format)


# -- operator generate-root ----------------------------------------------------------------------

def _root_table(s: dict[str, Any]) -> str:
    rows = [("Nonce", _na(s.get("nonce"))), ("Started", _b(s.get("started"))),
            ("Progress", f"{s.get('progress', 0)}/{s.get('required', 0)}"), ("Complete", _b(s.get("complete")))]
    if s.get("encoded_token"):
        rows.append(("Encoded Token", str(s["encoded_token"])))
    elif s.get("encoded_root_token"):
        rows.append(("Encoded Root Token", str(s["encoded_root_token"])))
    if s.get("otp"):
        rows.append(("OTP", str(s["otp"])))
    if s.get("otp_length"):
        rows.append(("OTP Length", str(s["otp_length"])))
    return kv_table(rows, header=())


def xor_decode(encoded: str, otp: str) -> str:
    """base64 (padding optional) of token XOR OTP → the token."""
    try:
        raw = base64.b64decode(encoded.strip() + "=" * (-len(encoded.strip()) % 4), validate=True)
    except ValueError:
        raise CLIError("Error decoding root token: error decoding base64'd token", 1) from None
    pad = otp.encode()
    if len(raw) != len(pad):
        raise CLIError("Error decoding root token: error xoring token: length of byte slices is not equivalent", 1)
    return bytes(a ^ b for a, b in zip(raw, pad, strict=True)).decode(errors="replace")


def generate_root(argv: list[str]) -> int:
    ctx = Context("operator generate-root", GENERATE_ROOT_HELP)
    fs = ctx.fs
    init = fs.boolean("init", False, "Start a root token generation.")
    cancel = fs.boolean("cancel", False, "Cancel the root token generation in progress.")
    status = fs.boolean("status", False, "Print the status of the current attempt.")
    decode = fs.string("decode", "", "The encoded token to decode (with -otp); \"-\" reads it from stdin.")
    generate_otp = fs.boolean("generate-otp", False, "Print a random OTP of the length the server expects.")
    otp = fs.string("otp", "", "The OTP, for -init and -decode.")
    nonce = fs.string("nonce", "", "Nonce of the root generation, given with each key share.")
    pgp_key = fs.string("pgp-key", "", "PGP key to encrypt the token with (not supported yet).")
    fs.boolean("recovery-token", False, "Generate a recovery token (not supported).")
    args = ctx.parse(argv, 0, 1)

    async def go(c: Client) -> int:
        if generate_otp.value:
            with api_errors("Error getting root generation status"):
                s = as_dict(await c.request("GET", "sys/generate-root/attempt"))
            length = int(s.get("otp_length") or _DEFAULT_OTP_LENGTH)
            value = "".join(secrets.choice(_BASE62) for _ in range(length))
            if ctx.format == "table":
                sys.stdout.write(value + ("\n" if sys.stdout.isatty() else ""))
            else:
                out(_render(ctx, {"otp": value, "otp_length": length}))
            return 0
        if decode.value:
            if not otp.value:
                raise CLIError("Missing otp: use -otp to supply it", 1)
            encoded = sys.stdin.read() if decode.value == "-" else decode.value
            token = xor_decode(encoded, otp.value)
            if ctx.format == "table":
                sys.stdout.write(token + ("\n" if sys.stdout.isatty() else ""))
            else:
                out(_render(ctx, {"token": token}))
            return 0
        if cancel.value:
            with api_errors("Error canceling root token generation"):
                await c.request("DELETE", "sys/generate-root/attempt")
            out("Success! Root token generation canceled (if it was started)")
            return 0
        if init.value:
            if otp.value and pgp_key.value:
                raise CLIError("Error initializing: cannot specify both -otp and -pgp-key", 1)
            body = {"otp": otp.value} if otp.value else {"pgp_key": pgp_key.value} if pgp_key.value else {}
            with api_errors("Error initializing root generation"):
                s = as_dict(await c.request("PUT", "sys/generate-root/attempt", json=body))
            if s.get("otp") and ctx.format == "table":
                err("A One-Time-Password has been generated for you and is shown in the OTP field. You will need "
                    "this value to decode the resulting root token, so keep it safe.")
            ctx.print_data(s, lambda: _root_table(s))
            return 0
        with api_errors("Error getting root generation status"):
            s = as_dict(await c.request("GET", "sys/generate-root/attempt"))
        if status.value:
            ctx.print_data(s, lambda: _root_table(s))
            return 0
        if not s.get("started"):
            raise CLIError('No root generation is in progress. Start a root generation by running "strongroom '
                           'operator generate-root -init".', 1)
        key = args[0] if args else ""
        n = nonce.value if key else str(s.get("nonce", ""))
        key = _read_key(ctx, key, n, "Operation")
        if not n:
            raise CLIError("Missing nonce value: specify it via the -nonce flag", 1)
        with api_errors("Error posting unseal key"):
            r = as_dict(await c.request("PUT", "sys/generate-root/update", json={"key": key, "nonce": n}))
        ctx.print_data(r, lambda: _root_table(r))
        return 0

    return ctx.run(go)

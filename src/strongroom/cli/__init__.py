"""The ``strongroom`` command: Vault's command names, flags, output and exit codes.

``COMMANDS`` is the table of contents: each entry maps the words of a command to the function
that runs it and a one-line synopsis. A command function takes its arguments (after the
command words) and returns the exit status; ``main`` turns the errors it raises into messages
and exit codes. Commands reach the server only through ``strongroom.api``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass

# httpx's package imports its own command line (httpx._main: click, rich, pygments; ~5 MiB of RSS
# and ~40 ms at every start) whenever those are installed; Strongroom never uses it. A None entry
# makes that import fail, and httpx falls back to its stub, as when they are absent.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

from strongroom.cli.context import CLIError, ShowHelp, err, out  # noqa: E402

__all__ = ["COMMANDS", "main"]


@dataclass(frozen=True, slots=True)
class Command:
    """Where a command lives (``module:function`` under strongroom.cli) and what it does."""

    target: str
    synopsis: str

    def load(self) -> Callable[[list[str]], int]:
        module, _, func = self.target.partition(":")
        fn: Callable[[list[str]], int] = getattr(importlib.import_module(f"strongroom.cli.{module}"), func)
        return fn


COMMANDS: dict[str, Command] = {
    "server": Command("server:server", "Start a Strongroom server"),
    "agent": Command("agent:agent", "Start an agent that logs in, writes sinks and keeps its token alive"),
    "bridge": Command("bridge:bridge", "Deliver wrapped tokens into labelled containers as they start"),
    "status": Command("status:status", "Print seal and HA status"),
    "version": Command("status:version", "Print the version of this client"),
    "login": Command("login:login", "Authenticate locally"),
    "read": Command("paths:read", "Read data and retrieve secrets"),
    "write": Command("paths:write", "Write data, configuration, and secrets"),
    "list": Command("paths:list_", "List data or secrets"),
    "delete": Command("paths:delete", "Delete secrets and configuration"),
    "unwrap": Command("unwrap:unwrap", "Unwrap a wrapped secret"),
    "operator init": Command("operator:init", "Initialize a server"),
    "operator unseal": Command("operator:unseal", "Unseal the server with a key share"),
    "operator seal": Command("operator:seal", "Seal the server"),
    "operator key-status": Command("operator:key_status", "Show information about the encryption key"),
    "operator rotate": Command("operator:rotate", "Rotate the barrier encryption key"),
    "operator migrate": Command("storage:migrate", "Copy every stored entry to another storage backend (offline)"),
    "operator snapshot save": Command("snapshot:save", "Save a snapshot of the whole store"),
    "operator snapshot restore": Command("snapshot:restore", "Restore a snapshot of the whole store"),
    "operator snapshot inspect": Command("snapshot:inspect", "Check a snapshot file and show its header"),
    "operator rekey": Command("ceremonies:rekey", "Generate new unseal keys"),
    "operator generate-root": Command("ceremonies:generate_root", "Generate a new root token"),
    "token create": Command("token:create", "Create a new token"),
    "token lookup": Command("token:lookup", "Display information about a token"),
    "token renew": Command("token:renew", "Renew a token's lease"),
    "token revoke": Command("token:revoke", "Revoke a token and its children"),
    "token capabilities": Command("token:capabilities", "Print a token's capabilities on a path"),
    "policy read": Command("policy:read", "Print the contents of a policy"),
    "policy write": Command("policy:write", "Upload a policy from a file or stdin"),
    "policy list": Command("policy:list_", "List the installed policies"),
    "policy delete": Command("policy:delete", "Delete a policy by name"),
    "policy fmt": Command("policy:fmt", "Format a policy file in place"),
    "secrets enable": Command("secrets:enable", "Enable a secrets engine"),
    "secrets disable": Command("secrets:disable", "Disable a secrets engine"),
    "secrets list": Command("secrets:list_", "List enabled secrets engines"),
    "secrets tune": Command("secrets:tune", "Tune a secrets engine's configuration"),
    "secrets move": Command("secrets:move", "Move a secrets engine to a new path"),
    "auth enable": Command("auth:enable", "Enable an auth method"),
    "auth disable": Command("auth:disable", "Disable an auth method"),
    "auth list": Command("auth:list_", "List enabled auth methods"),
    "auth tune": Command("auth:tune", "Tune an auth method's configuration"),
    "audit enable": Command("audit:enable", "Enable an audit device"),
    "audit disable": Command("audit:disable", "Disable an audit device"),
    "audit list": Command("audit:list_", "List the enabled audit devices"),
    "audit verify": Command("audit:verify", "Check the HMAC chain of a file audit log"),
    "lease lookup": Command("lease:lookup", "Lookup the lease of a secret"),
    "lease renew": Command("lease:renew", "Renew the lease of a secret"),
    "lease revoke": Command("lease:revoke", "Revoke a lease and the secret it belongs to"),
    "kv put": Command("kv:put", "Create or update a secret"),
    "kv get": Command("kv:get", "Retrieve a secret"),
    "kv patch": Command("kv:patch", "Update part of a secret"),
    "kv list": Command("kv:list_", "List the secrets under a path"),
    "kv delete": Command("kv:delete", "Delete versions of a secret"),
    "kv undelete": Command("kv:undelete", "Restore deleted versions of a secret"),
    "kv destroy": Command("kv:destroy", "Permanently remove versions of a secret"),
    "kv rollback": Command("kv:rollback", "Write an older version of a secret as the newest"),
    "kv metadata get": Command("kv_metadata:metadata_get", "Show a secret's metadata and versions"),
    "kv metadata put": Command("kv_metadata:metadata_put", "Set a secret's metadata"),
    "kv metadata delete": Command("kv_metadata:metadata_delete", "Delete a secret and all its versions"),
    "events subscribe": Command("events:subscribe", "Print the change events the token may see, as they happen"),
    "operator drill": Command("drill:drill", "Seal a standby for an unseal drill and time it"),
}

#: One-line descriptions of the command families, for help listings.
FAMILIES: dict[str, str] = {
    "operator": "Perform operator-specific tasks",
    "token": "Interact with tokens",
    "policy": "Interact with policies",
    "secrets": "Interact with secrets engines",
    "auth": "Interact with auth methods",
    "audit": "Interact with audit devices",
    "kv": "Interact with the key/value secrets engine",
    "lease": "Interact with leases",
    "kv metadata": "Interact with the metadata of KV v2 secrets",
    "events": "Subscribe to change events",
    "operator snapshot": "Save, restore and inspect snapshots of the whole store",
}

USAGE = "Usage: strongroom <command> [args]"


def _family_help(prefix: str) -> str:
    """The subcommands under ``prefix`` ("" for the top level), one line each."""
    depth = len(prefix.split()) if prefix else 0
    entries: dict[str, str] = {}
    for name, cmd in COMMANDS.items():
        words = name.split()
        if prefix and name.split()[:depth] != prefix.split():
            continue
        if len(words) <= depth:
            continue
        head = words[depth]
        family = " ".join(words[:depth + 1])
        entries.setdefault(head, cmd.synopsis if len(words) == depth + 1 else FAMILIES.get(family, ""))
    width = max(len(k) for k in entries) + 4
    lines = [f"    {k.ljust(width)}{v}" for k, v in sorted(entries.items())]
    usage = f"Usage: strongroom {prefix} <subcommand> [options] [args]" if prefix else USAGE
    return usage + "\n\nSubcommands:\n" + "\n".join(lines)


def _resolve(argv: list[str]) -> tuple[str, list[str]]:
    """The longest command name that prefixes ``argv``, and the arguments after it."""
    for n in (3, 2, 1):
        name = " ".join(argv[:n])
        if len(argv) >= n and name in COMMANDS:
            return name, argv[n:]
    return "", argv


def main(argv: list[str] | None = None) -> int:
    """Run one command; return its exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-v", "-version", "--version"):
        args = ["version", *args[1:]]
    if not args or args[0] in ("-h", "-help", "--help", "help"):
        text = _family_help("")
        if args and args[0] != "help":
            out(text)
            return 0
        err(text)
        return 127
    name, rest = _resolve(args)
    if not name:
        words = [w for w in args if not w.startswith("-")]
        for n in (2, 1):
            prefix = " ".join(words[:n])
            if len(words) >= n and any(k.startswith(prefix + " ") for k in COMMANDS):
                family_help = _family_help(prefix)
                if any(a in ("-h", "-help", "--help") for a in args[n:]):
                    out(family_help)
                    return 0
                err(family_help)
                return 1
        err(_family_help(""))
        return 127
    try:
        return COMMANDS[name].load()(rest)
    except ShowHelp as e:
        sys.stdout.write(e.text)
        return 0
    except CLIError as e:
        err(e.message)
        return e.code
    except KeyboardInterrupt:
        err("Interrupted")
        return 130

"""``status`` and ``version``: what the server is, and what this client is."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strongroom import __version__
from strongroom.api import APIError, Client, ClientError
from strongroom.cli.context import CLIError, Context, out
from strongroom.cli.output import as_dict, go_value, kv_table

STATUS_HELP = """\
Usage: strongroom status [options]

  Prints the server's seal state: whether it is initialized and sealed, the
  unseal threshold, the version and, when HA is enabled, this node's role.
  This works whether or not the server is sealed, and needs no token.

  The exit code is 0 when the server is unsealed, 2 when it is sealed and 1
  when its state could not be read.

      $ strongroom status"""

VERSION_HELP = """\
Usage: strongroom version

  Prints the version of this command-line client. Also -version or --version."""


def version(argv: list[str]) -> int:
    ctx = Context("version", VERSION_HELP, http=False)
    ctx.parse(argv, 0)
    out(f"Strongroom v{__version__}")
    return 0


def status(argv: list[str]) -> int:
    ctx = Context("status", STATUS_HELP)
    ctx.parse(argv, 0)

    async def go(c: Client) -> int:
        try:
            seal, leader = await seal_and_leader(c)
        except ClientError as e:
            raise CLIError(f"Error checking seal status: {e}", 1) from e
        print_status(ctx, seal, leader)
        return 2 if seal.get("sealed") else 0

    try:
        return ctx.run(go)
    except CLIError as e:  # status reserves 2 for "sealed": every failure is 1
        raise CLIError(e.message, 1) from e


async def seal_and_leader(c: Client) -> tuple[dict[str, Any], dict[str, Any]]:
    """``sys/seal-status`` and, best effort, ``sys/leader`` (a sealed node may refuse it)."""
    seal = as_dict(await c.request("GET", "sys/seal-status"))
    leader: dict[str, Any] = {}
    try:
        got = as_dict(await c.request("GET", "sys/leader"))
        leader = as_dict(got.get("data")) or got
    except APIError:
        pass
    return seal, leader


def status_json(seal: Mapping[str, Any], leader: Mapping[str, Any]) -> dict[str, Any]:
    """Seal status and HA state in the field order Vault's CLI prints them."""
    out: dict[str, Any] = {k: seal.get(k, d) for k, d in (
        ("type", ""), ("initialized", False), ("sealed", True), ("t", 0), ("n", 0), ("progress", 0),
        ("nonce", ""), ("version", ""))}
    if seal.get("commit_date"):
        out["commit_date"] = seal["commit_date"]
    out["migration"] = seal.get("migration", False)
    for k in ("cluster_name", "cluster_id"):
        if seal.get(k):
            out[k] = seal[k]
    out["recovery_seal"] = seal.get("recovery_seal", False)
    if seal.get("storage_type"):
        out["storage_type"] = seal["storage_type"]
    out["build_date"] = seal.get("build_date", "")
    out["ha_enabled"] = bool(leader.get("ha_enabled", False))
    if out["ha_enabled"] and not seal.get("sealed"):
        for k in ("is_self", "active_time", "leader_address", "leader_cluster_address"):
            if k in leader:
                out[k] = leader[k]
        for k in ("raft_committed_index", "raft_applied_index"):
            if leader.get(k):
                out[k] = leader[k]
    return out


def status_table(seal: Mapping[str, Any], leader: Mapping[str, Any]) -> str:
    sealed = bool(seal.get("sealed"))
    rows = [("Seal Type", str(seal.get("type", ""))),
            ("Initialized", go_value(bool(seal.get("initialized")))),
            ("Sealed", go_value(sealed)),
            ("Total Shares", go_value(seal.get("n", 0))),
            ("Threshold", go_value(seal.get("t", 0)))]
    if sealed:
        rows += [("Unseal Progress", f"{seal.get('progress', 0)}/{seal.get('t', 0)}"),
                 ("Unseal Nonce", str(seal.get("nonce") or "n/a"))]
    if seal.get("migration"):
        rows.append(("Seal Migration in Progress", "true"))
    rows.append(("Version", str(seal.get("version", ""))))
    for key, label in (("commit_date", "Commit Date"), ("build_date", "Build Date"),
                       ("storage_type", "Storage Type"), ("cluster_name", "Cluster Name"),
                       ("cluster_id", "Cluster ID")):
        if seal.get(key):
            rows.append((label, str(seal[key])))
    ha = bool(leader.get("ha_enabled"))
    rows.append(("HA Enabled", go_value(ha)))
    if ha and not sealed:
        rows.append(("HA Cluster", str(leader.get("leader_cluster_address") or "n/a")))
        mode = "active" if leader.get("is_self") else "standby"
        rows.append(("HA Mode", mode))
        if mode == "active" and leader.get("active_time") and not str(leader["active_time"]).startswith("0001"):
            rows.append(("Active Since", str(leader["active_time"])))
        for key, label in (("raft_committed_index", "Raft Committed Index"),
                           ("raft_applied_index", "Raft Applied Index")):
            if leader.get(key):
                rows.append((label, go_value(leader[key])))
    return kv_table(rows)


def print_status(ctx: Context, seal: Mapping[str, Any], leader: Mapping[str, Any]) -> None:
    ctx.print_data(status_json(seal, leader), lambda: status_table(seal, leader))

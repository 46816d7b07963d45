"""``operator drill``: seal a standby for an unseal exercise and time it (sys/drill, sys/drills)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from strongroom.api import Client
from strongroom.cli.context import CLIError, Context, UsageError, api_errors
from strongroom.cli.output import as_dict, columns, kv_table

DRILL_HELP = """\
Usage: strongroom operator drill -node=ADDR [options]
       strongroom operator drill -list

  Starts a seal drill on an HA cluster: the active node seals the standby whose
  api_addr is ADDR (as "sys/ha-status" lists it) with your token, notifies the
  key holders through the security webhooks, and records how long it takes
  until the key holders have unsealed that node again with their shares
  ("strongroom operator unseal" against ADDR). Requires sudo on sys/drill and
  on the standby's sys/seal.

  The active node is never drilled. A drill that would leave fewer nodes
  unsealed than the server's min_unsealed_nodes is refused unless -force.

      $ strongroom operator drill -node=https://node2.example.com:8200 -wait

  With -list, prints the drills recorded so far (sys/drills)."""

TERMINAL = frozenset({"unsealed", "failed", "abandoned"})


def _row(d: dict[str, Any]) -> tuple[str, ...]:
    duration = d.get("duration_s")
    return (str(d.get("id", "")), str(d.get("node", "")), str(d.get("state", "")), str(d.get("started", "")),
            str(d.get("unsealed_at") or "-"), "-" if duration is None else f"{float(duration):.3f}")


def _drill_table(d: dict[str, Any]) -> str:
    duration = d.get("duration_s")
    pairs = [("Drill ID", str(d.get("id", ""))), ("Node", str(d.get("node", ""))), ("State", str(d.get("state", ""))),
             ("Started", str(d.get("started", ""))), ("Sealed At", str(d.get("sealed_at") or "n/a")),
             ("Unsealed At", str(d.get("unsealed_at") or "n/a")),
             ("Duration (s)", "n/a" if duration is None else f"{float(duration):.3f}")]
    return kv_table(pairs)


def drill(argv: list[str]) -> int:
    ctx = Context("operator drill", DRILL_HELP)
    fs = ctx.fs
    node = fs.string("node", "", "The api_addr of the standby to seal.")
    force = fs.boolean("force", False, "Drill even if fewer than min_unsealed_nodes would stay unsealed.")
    wait = fs.boolean("wait", False, "Wait until the node is unsealed again and print the drill's duration.")
    wait_timeout = fs.duration("wait-timeout", 3600, "How long -wait waits at most.")
    listing = fs.boolean("list", False, "List the recorded drills instead of starting one.")
    ctx.parse(argv, 0)
    if not listing.value and not node.value:
        raise UsageError("Missing -node: the api_addr of the standby to seal (see sys/ha-status).")

    async def go(c: Client) -> int:
        if listing.value:
            with api_errors("Error listing drills"):
                resp = as_dict(as_dict(await c.request("GET", "sys/drills")).get("data"))
            drills = [as_dict(d) for d in resp.get("drills") or []]
            ctx.print_data(resp, lambda: columns([("ID", "Node", "State", "Started", "Unsealed At", "Duration (s)"),
                                                  *(_row(d) for d in drills)]) if drills else "No drills recorded")
            return 0
        with api_errors("Error starting drill"):
            started = as_dict(as_dict(await c.request("PUT", "sys/drill", json={"node": node.value,
                                                                               "force": force.value})).get("data"))
        if not wait.value:
            ctx.print_data(started, lambda: _drill_table(started) + "\n\nThe node is sealed: its key holders "
                           "unseal it with their shares; \"strongroom operator drill -list\" shows the duration.")
            return 0
        deadline = time.monotonic() + wait_timeout.value
        current = started
        while str(current.get("state")) not in TERMINAL:
            if time.monotonic() > deadline:
                raise CLIError(f"drill {started.get('id')}: node {node.value} was not unsealed within -wait-timeout")
            await asyncio.sleep(1.0)
            with api_errors("Error reading drill"):
                current = as_dict(as_dict(await c.request("GET", f"sys/drills/{started.get('id')}")).get("data"))
        ctx.print_data(current, lambda: _drill_table(current))
        return 0

    return ctx.run(go)

"""``events subscribe``: print change events (Vault 1.16's events stream) as they happen."""

from __future__ import annotations

import asyncio
import sys

import orjson

from strongroom.api import Client
from strongroom.cli.context import CLIError, Context, api_errors

SUBSCRIBE_HELP = """\
Usage: strongroom events subscribe [options] EVENT_TYPE

  Subscribes to the server's change events of EVENT_TYPE and prints each one
  as a JSON object on its own line until interrupted (or until -timeout). The
  type may be a glob: "kv-v2/data-write", "kv*", "*". The token needs "read"
  on sys/events/subscribe/EVENT_TYPE, and sees only the events on paths it may
  read.

      $ strongroom events subscribe kv-v2/data-write
      $ strongroom events subscribe -timeout=1m 'kv*'"""


def subscribe(argv: list[str]) -> int:
    ctx = Context("events subscribe", SUBSCRIBE_HELP)
    timeout = ctx.fs.duration("timeout", 0, "Stop after this long (\"30s\"); 0, the default, runs until "
                              "interrupted.", section="Command Options")
    event_type = ctx.parse(argv, 1)[0]

    async def go(c: Client) -> int:
        from strongroom.api.events import subscribe as stream

        async def run() -> None:
            with api_errors("Error subscribing to events"):
                async for event in stream(c.address, c.token, event_type, verify=c.verify,
                                          headers=ctx.headers.value, namespace=c.namespace):
                    sys.stdout.buffer.write(orjson.dumps(event) + b"\n")
                    sys.stdout.flush()

        if timeout.value > 0:
            try:
                await asyncio.wait_for(run(), timeout.value)
            except TimeoutError:
                pass
        else:
            await run()
        return 0

    try:
        return ctx.run(go)
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError as e:  # the reader of our output went away
        raise CLIError("output closed", 1) from e

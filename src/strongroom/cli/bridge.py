"""``bridge``: run the container secret bridge with its configuration file."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import TYPE_CHECKING

from strongroom.cli.context import CLIError, Context, one_config, start_logging

if TYPE_CHECKING:
    from strongroom.bridge.config import BridgeConfig

BRIDGE_HELP = """\
Usage: strongroom bridge [options]

  Follows a container engine's events (the Docker Engine API on a unix socket)
  and delivers a response-wrapped token for the container's role into each
  genuinely running container labelled with a configured role; revokes that
  token when the container stops. The configuration is HCL or JSON.

      $ strongroom bridge -config=/etc/strongroom/bridge.hcl"""


def bridge(argv: list[str]) -> int:
    ctx = Context("bridge", BRIDGE_HELP, http=False, output=False)
    fs = ctx.fs
    configs = fs.strings("config", "The bridge's configuration file (HCL or JSON).")
    log_level = fs.string("log-level", "info", "Log verbosity: trace, debug, info, warn or error.")
    ctx.parse(argv, 0)
    path = one_config(configs.value)
    from strongroom.bridge.config import ConfigError, load

    start_logging(log_level.value)
    try:
        cfg = load(path)
    except ConfigError as e:
        raise CLIError(f"Error loading configuration: {e}", 1) from None
    try:
        return asyncio.run(_run(cfg))
    except OSError as e:
        raise CLIError(f"Error starting the bridge: {e}", 1) from None


async def _run(cfg: BridgeConfig) -> int:
    from strongroom.bridge.bridge import Bridge

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    b = Bridge(cfg)
    try:
        await b.run(stop)
    finally:
        await b.aclose()
    return 0

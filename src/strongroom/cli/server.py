"""``server``: parse the server's flags and hand over to ``strongroom.server.serve``.

The server module is imported only when this command runs, so the client commands never load
the server's dependencies.
"""

from __future__ import annotations

import os

from strongroom.cli.context import Context, UsageError

SERVER_HELP = """\
Usage: strongroom server [options]

  Starts a Strongroom server that answers requests until it is interrupted.
  The configuration comes from one or more -config files or directories (HCL
  or JSON), merged in order.

      $ strongroom server -config=/etc/strongroom/config.hcl

  With -dev, it starts an in-memory server that is already initialized and
  unsealed, with a known root token: for development only; nothing persists.

      $ strongroom server -dev -dev-root-token-id=root"""

LOG_LEVELS = ("trace", "debug", "info", "warn", "warning", "error", "err", "off")


def server(argv: list[str]) -> int:
    ctx = Context("server", SERVER_HELP, http=False, output=False)
    fs = ctx.fs
    configs = fs.strings("config", "A configuration file or directory; repeatable.")
    dev = fs.boolean("dev", False, "Start an in-memory, unsealed development server.")
    root_token = fs.string("dev-root-token-id", os.environ.get("VAULT_DEV_ROOT_TOKEN_ID", ""),
                           "The root token of the development server. The default is random. Also "
                           "VAULT_DEV_ROOT_TOKEN_ID.")
    listen = fs.string("dev-listen-address", os.environ.get("VAULT_DEV_LISTEN_ADDRESS", "127.0.0.1:8200"),
                       "Address the development server listens on. Also VAULT_DEV_LISTEN_ADDRESS.")
    log_level = fs.string("log-level", os.environ.get("VAULT_LOG_LEVEL", ""),
                          "Log verbosity: trace, debug, info, warn or error. Also VAULT_LOG_LEVEL.")
    ctx.parse(argv, 0)
    if not dev.value and not configs.value:
        raise UsageError("Must specify at least one config path using -config")
    level = log_level.value.lower()
    if level and level not in LOG_LEVELS:
        raise UsageError(f"Unknown log level: {log_level.value}")

    from strongroom.server import serve  # type: ignore[import-not-found, unused-ignore]

    code = serve(dev=dev.value, dev_root_token_id=root_token.value or None, dev_listen_address=listen.value,
                 config_paths=list(configs.value), log_level=level or None)
    return int(code or 0)

"""``agent``: run Strongroom's agent with a Vault Agent configuration file."""

from __future__ import annotations

import asyncio

from strongroom.cli.context import CLIError, Context, one_config, start_logging

AGENT_HELP = """\
Usage: strongroom agent [options]

  Starts an agent that logs in to the server (auto_auth), writes the token to
  its sinks and keeps it renewed, logging in again when it cannot be renewed.
  The configuration is Vault Agent's (HCL or JSON).

      $ strongroom agent -config=/etc/strongroom/agent.hcl"""


def agent(argv: list[str]) -> int:
    ctx = Context("agent", AGENT_HELP, http=False, output=False)
    fs = ctx.fs
    configs = fs.strings("config", "The agent's configuration file (HCL or JSON).")
    exit_after_auth = fs.boolean("exit-after-auth", False,
                                 "Exit with code 0 after a single successful auth and the sinks are written.")
    log_level = fs.string("log-level", "info", "Log verbosity: trace, debug, info, warn or error.")
    ctx.parse(argv, 0)
    path = one_config(configs.value)
    from strongroom.agent.auth import AuthError
    from strongroom.agent.config import ConfigError, load
    from strongroom.agent.main import run
    from strongroom.agent.template import TemplateError
    from strongroom.api.errors import ClientError

    start_logging(log_level.value)
    try:
        cfg = load(path)
        if exit_after_auth.value:
            cfg.exit_after_auth = True
        return asyncio.run(run(cfg))
    except ConfigError as e:
        raise CLIError(f"Error loading configuration: {e}", 1) from None
    except (AuthError, ClientError) as e:
        raise CLIError(f"Error authenticating: {e}", 1) from None
    except TemplateError as e:  # exit_on_retry_failure, or a template that cannot render
        raise CLIError(f"Error rendering templates: {e}", 1) from None

"""What every command shares: the standard flags, the environment, the token helper, the
client, printing, and how failures become exit codes.

Exit codes follow Vault: 0 success, 1 a local mistake (flags, arguments, files), 2 the server
said no or could not be reached. A command raises ``CLIError`` (or ``UsageError``) and
``main`` prints it; nothing below ``main`` calls ``sys.exit``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from strongroom.api import ClientError, format_warnings
from strongroom.cli.flags import Flag, FlagError, FlagSet, HelpRequested, parse_seconds
from strongroom.cli.output import FORMATS, render

if TYPE_CHECKING:
    from strongroom.api import Client

DEFAULT_ADDRESS = "https://127.0.0.1:8200"

#: Environment prefixes, strongest first: ours, then Vault's, then OpenBao's.
ENV_PREFIXES = ("STRONGROOM_", "VAULT_", "BAO_")


class CLIError(Exception):
    """A failure to report on stderr; ``code`` is the exit status (2: the server's fault)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class UsageError(CLIError):
    """A local mistake: wrong arguments, bad input files. Exit status 1."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 1)


class ShowHelp(Exception):
    """``-h`` was given; ``text`` is the command's help."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def env(name: str) -> str | None:
    """``STRONGROOM_<name>``, else ``VAULT_<name>``, else ``BAO_<name>``; empty counts as unset."""
    for prefix in ENV_PREFIXES:
        value = os.environ.get(prefix + name)
        if value:
            return value
    return None


def env_true(name: str) -> bool:
    value = env(name)
    return value is not None and value.strip().lower() in ("1", "t", "true", "yes", "y")


# --- the token helper (~/.vault-token, as Vault's default helper) ----------------------------

def token_path() -> Path:
    override = env("TOKEN_PATH")
    return Path(override).expanduser() if override else Path.home() / ".vault-token"


def read_token_file() -> str | None:
    try:
        token = token_path().read_text().strip()
    except OSError:
        return None
    return token or None


def store_token(token: str) -> None:
    """Write the token with owner-only permissions and no trailing newline."""
    path = token_path()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token)
    os.chmod(path, 0o600)


def os_error(e: OSError, path: str) -> str:
    """A file error in the words Go uses: ``open /x: no such file or directory``."""
    return f"open {path}: {(e.strerror or str(e)).lower()}"


# --- printing ---------------------------------------------------------------------------------

def out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def err(text: str = "") -> None:
    sys.stderr.write(text + "\n")


def out_raw(text: str) -> None:
    """A ``-field`` value: no trailing newline unless a person is reading it."""
    sys.stdout.write(text + ("\n" if sys.stdout.isatty() else ""))


def warn(warnings: Any) -> None:
    if isinstance(warnings, list) and warnings:
        err(format_warnings([str(w) for w in warnings]))


@contextmanager
def api_errors(prefix: str | None = None) -> Iterator[None]:
    """Turn a client failure into an exit-2 error: ``<prefix>: Error making API request...``."""
    try:
        yield
    except ClientError as e:
        raise CLIError(f"{prefix}: {e}" if prefix else str(e)) from e


def count_error(args: list[str], low: int, high: int | None) -> str | None:
    """Vault's wording for a wrong number of positional arguments, or None if it is right."""
    n = len(args)
    if high is None:
        return f"Not enough arguments (expected at least {low}, got {n})" if n < low else None
    expected = str(low) if low == high else f"{low}-{high}"
    if n < low:
        return f"Not enough arguments (expected {expected}, got {n})"
    if n > high:
        return f"Too many arguments (expected {expected}, got {n})"
    return None


def one_config(paths: list[str]) -> str:
    """The one ``-config`` path a long-running client (agent, bridge) is started with."""
    if len(paths) != 1:
        raise UsageError("Must specify exactly one config path using -config")
    return paths[0]


def start_logging(level: str) -> None:
    """Log to stderr at a ``-log-level`` given in Vault's words (trace, debug, info, warn, err);
    a level Python does not know logs at INFO."""
    name = {"trace": "DEBUG", "debug": "DEBUG", "warn": "WARNING", "err": "ERROR"}.get(level.lower(),
                                                                                     level.upper())
    logging.basicConfig(level=getattr(logging, name, logging.INFO),
                        format="%(asctime)s [%(levelname)s] %(message)s")


class Context:
    """One command invocation: declares the standard flags, parses argv, builds the client."""

    def __init__(self, name: str, help_text: str, *, http: bool = True, output: bool = True,
                 field: bool = False) -> None:
        self.name = name
        self.help_text = help_text
        self.fs = FlagSet(name)
        self._http = http
        self._format: Flag[str] | None = None
        self._field: Flag[str] | None = None
        fs = self.fs
        if http:
            s = "HTTP Options"
            self.address = fs.string("address", "", "Address of the server, such as https://127.0.0.1:8200. "
                                     "Also VAULT_ADDR or STRONGROOM_ADDR.", section=s)
            self.ca_cert = fs.string("ca-cert", "", "PEM file of the CA that signed the server's certificate. "
                                     "Also VAULT_CACERT or STRONGROOM_CACERT.", section=s)
            self.ca_path = fs.string("ca-path", "", "Directory of PEM CA certificates. Also VAULT_CAPATH.",
                                     section=s)
            self.client_cert = fs.string("client-cert", "", "PEM client certificate for TLS authentication.",
                                         section=s)
            self.client_key = fs.string("client-key", "", "PEM private key of -client-cert.", section=s)
            self.tls_server_name = fs.string("tls-server-name", "", "Accepted for compatibility; the name "
                                             "checked is the host in -address.", section=s)
            self.tls_skip_verify = fs.boolean("tls-skip-verify", False, "Do not verify the server's "
                                              "certificate. Also VAULT_SKIP_VERIFY. Insecure.", section=s)
            self.namespace = fs.string("namespace", "", "Namespace to send the request to. Also "
                                       "VAULT_NAMESPACE.", aliases=("ns",), section=s)
            self.wrap_ttl = fs.string("wrap-ttl", "", "Ask the server to wrap the response in a single-use "
                                      "token with this TTL (\"5m\"). Also VAULT_WRAP_TTL.", section=s)
            self.headers = fs.mapping("header", "Extra HTTP header as key=value; repeatable.", section=s)
            self.non_interactive = fs.boolean("non-interactive", False, "Never prompt for input.", section=s)
        if output:
            self._format = fs.string("format", env("FORMAT") or "table", "Output format: table, json or yaml. "
                                     "Also VAULT_FORMAT.", section="Output Options")
        if field:
            self._field = fs.string("field", "", "Print only this field, without a trailing newline. It "
                                    "takes precedence over -format.", section="Output Options")

    # parsing -----------------------------------------------------------------------------

    def parse(self, argv: list[str], low: int = 0, high: int | None = -1) -> list[str]:
        """Parse flags; check the positional count (``high=-1``: exactly ``low``; None: unbounded)."""
        try:
            args = self.fs.parse(argv)
        except HelpRequested:
            raise ShowHelp(self.full_help()) from None
        except FlagError as e:
            raise UsageError(str(e)) from None
        if self._format is not None and self.format not in FORMATS:
            raise UsageError(f"Invalid output format: {self.format}")
        problem = count_error(args, low, low if high == -1 else high)
        if problem:
            raise UsageError(problem)
        return args

    def full_help(self) -> str:
        flags = self.fs.help()
        return self.help_text.strip("\n") + ("\n\n" + flags if flags else "") + "\n"

    @property
    def format(self) -> str:
        return self._format.value.lower() if self._format is not None else "table"

    @property
    def field(self) -> str:
        return self._field.value if self._field is not None else ""

    # the client --------------------------------------------------------------------------

    def client(self, token: str | None = None) -> Client:
        if not self._http:
            raise RuntimeError(f"{self.name} declared no HTTP flags")
        timeout = 60.0
        given = env("CLIENT_TIMEOUT")
        if given:
            try:
                timeout = float(parse_seconds(given))
            except ValueError:
                raise UsageError(f"Invalid client timeout: {given}") from None
        wrap_ttl = self.wrap_ttl.value or env("WRAP_TTL")
        try:
            return self._client(token, timeout, wrap_ttl)
        except ClientError as e:
            raise CLIError(f"failed to read environment: {e}") from e

    def _client(self, token: str | None, timeout: float, wrap_ttl: str | None) -> Client:
        from strongroom.api import Client  # the HTTP stack, only for commands that talk to a server

        return Client(
            self.address.value or env("ADDR") or DEFAULT_ADDRESS,
            token if token is not None else (env("TOKEN") or read_token_file()),
            cacert=self.ca_cert.value or env("CACERT"),
            capath=self.ca_path.value or env("CAPATH"),
            client_cert=self.client_cert.value or env("CLIENT_CERT"),
            client_key=self.client_key.value or env("CLIENT_KEY"),
            tls_skip_verify=self.tls_skip_verify.value or env_true("SKIP_VERIFY"),
            namespace=self.namespace.value or env("NAMESPACE"),
            wrap_ttl=wrap_ttl,
            headers=self.headers.value,
            timeout=timeout,
        )

    def run(self, body: Callable[[Client], Awaitable[int]], token: str | None = None) -> int:
        """Run the command's async body with a client, on a fresh event loop."""

        async def main() -> int:
            async with self.client(token) as c:
                return await body(c)

        return asyncio.run(main())

    # output ------------------------------------------------------------------------------

    def success(self, message: str) -> None:
        """A "Success! ..." line: Vault prints it in table format only, so scripts get no noise."""
        if self.format == "table":
            out(message)

    def print_data(self, value: Any, table: Callable[[], str]) -> None:
        """``value`` in the chosen format; ``table`` renders the table form lazily."""
        if self.format == "table":
            text = table()
            if text:
                out(text)
        else:
            out(render(value, self.format))

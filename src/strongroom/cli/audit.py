"""``audit``: enable, disable and list audit devices (``sys/audit``), and ``audit verify`` (Strongroom's
own): check the HMAC chain of a file device's log."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from strongroom.api import Client
from strongroom.audit.chain import Verdict
from strongroom.audit.chain import verify as verify_chain
from strongroom.cli.context import CLIError, Context, UsageError, api_errors, os_error, out
from strongroom.cli.input import parse_data
from strongroom.cli.output import as_dict, columns

ENABLE_HELP = """\
Usage: strongroom audit enable [options] TYPE [CONFIG K=V...]

  Enables an audit device of TYPE (file, socket or syslog) at -path (by
  default, at TYPE). The K=V pairs are the device's options. The server must
  allow this with unsafe_allow_api_audit_creation in its config; devices can
  also be declared there with audit "TYPE" "PATH" { ... } stanzas.

      $ strongroom audit enable file file_path=/var/log/strongroom/audit.log
      $ strongroom audit enable -path=net socket address=10.0.0.5:9090 socket_type=tcp"""

DISABLE_HELP = """\
Usage: strongroom audit disable [options] PATH

  Disables the audit device at PATH. The log it wrote is left as it is.
  Disabling what is not there succeeds.

      $ strongroom audit disable file/"""

LIST_HELP = """\
Usage: strongroom audit list [options]

  Lists the enabled audit devices; -detailed adds replication and options."""

VERIFY_HELP = """\
Usage: strongroom audit verify [options] FILE...

  Checks the HMAC chain of a file audit device's log: every line carries a
  sequence number and an HMAC over itself and the line before it. Reports the
  first deleted, reordered, inserted or edited line and exits 2; exits 0 when
  the whole chain holds. A line cut short by a crash or a full disk (part of a
  line, the chain unbroken around it) is not tampering: the chain is checked
  past it, and if nothing else is wrong the command reports the torn line and
  exits 3. Several FILEs (a rotated log, oldest first) are checked as one chain.

  The chain key comes from the server (-path, needs sudo on sys/audit-chain),
  which also reports how many lines the device has written, so lines cut off
  the end are caught too; or from -key (offline, hex, from the same endpoint).

      $ strongroom audit verify -path=file/ /var/log/strongroom/audit.log
      $ strongroom audit verify -key=9f2c... audit.log.1 audit.log"""


def _slash(path: str) -> str:
    return path.strip("/") + "/"


def enable(argv: list[str]) -> int:
    ctx = Context("audit enable", ENABLE_HELP, output=False)
    fs = ctx.fs
    description = fs.string("description", "", "Human-friendly description of the audit device.")
    path = fs.string("path", "", "Where to enable the device. The default is TYPE.")
    local = fs.boolean("local", False, "Mark the device as local-only (not replicated).")
    args = ctx.parse(argv, 1, None)
    kind = args[0].strip()
    options = {k: str(v) for k, v in parse_data(args[1:]).items()}
    mount = _slash(path.value or kind)
    body: dict[str, Any] = {"type": kind, "description": description.value, "options": options,
                            "local": local.value}

    async def go(c: Client) -> int:
        with api_errors("Error enabling audit device"):
            await c.request("PUT", f"sys/audit/{mount.rstrip('/')}", json=body)
        out(f"Success! Enabled the {kind} audit device at: {mount}")
        return 0

    return ctx.run(go)


def disable(argv: list[str]) -> int:
    ctx = Context("audit disable", DISABLE_HELP, output=False)
    mount = _slash(ctx.parse(argv, 1)[0])

    async def go(c: Client) -> int:
        with api_errors("Error disabling audit device"):
            await c.request("DELETE", f"sys/audit/{mount.rstrip('/')}")
        out(f"Success! Disabled audit device (if it was enabled) at: {mount}")
        return 0

    return ctx.run(go)


def list_(argv: list[str]) -> int:
    ctx = Context("audit list", LIST_HELP)
    detailed = ctx.fs.boolean("detailed", False, "Show replication and options of each device.")
    ctx.parse(argv, 0)

    async def go(c: Client) -> int:
        with api_errors("Error retrieving audits"):
            resp = await c.request("GET", "sys/audit")
        body = as_dict(resp)
        source = as_dict(body.get("data")) if "data" in body else body
        devices = {p: as_dict(v) for p, v in sorted(source.items()) if p.endswith("/") and isinstance(v, dict)}
        if ctx.format != "table":
            ctx.print_data(devices, lambda: "")
            return 0
        if not devices:
            out("No audit devices are enabled.")
            return 2
        out(_table(devices, detailed.value))
        return 0

    return ctx.run(go)


def _table(devices: dict[str, dict[str, Any]], detailed: bool) -> str:
    head = ["Path", "Type", "Description"] + (["Replication", "Options"] if detailed else [])
    rows = []
    for p, d in devices.items():
        row = [p, str(d.get("type", "")), str(d.get("description") or "n/a")]
        if detailed:
            options = as_dict(d.get("options"))
            row += ["local" if d.get("local") else "replicated",
                    " ".join(f"{k}={v}" for k, v in sorted(options.items()))]
        rows.append(row)
    return columns([head, ["-" * len(h) for h in head], *rows])


def verify(argv: list[str]) -> int:
    ctx = Context("audit verify", VERIFY_HELP, output=False)
    key_flag = ctx.fs.string("key", "", "The device's chain key, hex (from sys/audit-chain/PATH).")
    device = ctx.fs.string("path", "", "Fetch the chain key and head from the server's device at PATH.")
    files = ctx.parse(argv, 1, None)
    if bool(key_flag.value) == bool(device.value):
        raise UsageError("Exactly one of -key or -path is required")
    if key_flag.value:
        return _report(_check(_hex_key(key_flag.value), files, 0, ""), files)

    async def go(c: Client) -> int:
        with api_errors("Error reading the audit chain"):
            resp = await c.request("GET", f"sys/audit-chain/{device.value.strip('/')}")
        data = as_dict(as_dict(resp).get("data"))
        head_seq, head_hmac = data.get("sequence"), data.get("hmac")
        if not isinstance(head_seq, int) or not isinstance(head_hmac, str):
            raise CLIError("Error reading the audit chain: unexpected response")
        return _report(_check(_hex_key(str(data.get("key", ""))), files, head_seq, head_hmac), files)

    return ctx.run(go)


def _hex_key(text: str) -> bytes:
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        raise UsageError("Invalid chain key: it must be hex") from None
    if not key:
        raise UsageError("Invalid chain key: empty")
    return key


def _check(key: bytes, files: list[str], head_seq: int, head_hmac: str) -> tuple[Verdict, list[int]]:
    """The verdict over all files as one chain, and the global line number each file starts after."""
    starts: list[int] = []

    def lines() -> Iterator[bytes]:
        count = 0
        for name in files:
            starts.append(count)
            try:
                with open(name, "rb") as f:
                    for line in f:
                        count += 1
                        yield line
            except OSError as e:
                raise UsageError(f"Error reading audit log: {os_error(e, name)}") from None

    return verify_chain(key, lines(), head_seq=head_seq, head_hmac=head_hmac), starts


# Exit status when the chain holds but a line is torn: neither success (an entry is incomplete)
# nor tampering (2), so scripts can tell a crash's leftovers from an attack.
TORN = 3


def _report(result: tuple[Verdict, list[int]], files: list[str]) -> int:
    v, starts = result

    def where(line: int) -> str:
        index = max([i for i, s in enumerate(starts) if s < line] or [len(files) - 1])
        return f"{files[index]}:{line - starts[index]}"

    if not v.ok:
        raise CLIError(f"Audit chain broken at {where(v.bad_line)}: {v.reason} ({v.lines} lines verified before it)")
    verified = f"Verified {v.lines} lines (sequence 1-{v.last_seq}) in {', '.join(files)}"
    if v.torn:
        raise CLIError(f"{verified}, but {len(v.torn)} line(s) are torn, cut short by a crash or a full disk "
                       f"(not tampering; the chain holds around them; their entries are incomplete): "
                       f"{', '.join(where(n) for n in v.torn)}", TORN)
    out(f"Success! {verified}")
    return 0

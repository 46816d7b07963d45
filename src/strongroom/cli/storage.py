"""``operator migrate``: parse the flags and hand over to ``strongroom.migrate`` (imported only
when the command runs: it opens storage, as the server does, so no client command loads it)."""

from __future__ import annotations

from strongroom.cli.context import Context, UsageError

MIGRATE_HELP = """\
Usage: strongroom operator migrate [options]

  Copies every entry, as stored (still encrypted by the barrier), from one
  storage backend to another: sqlite, file, postgresql, etcd. The servers on
  the source must be stopped; no server starts on it while the copy runs. The
  configuration file has two stanzas, as Vault's:

      storage_source "sqlite" { path = "/var/lib/strongroom/strongroom.db" }
      storage_destination "postgresql" { connection_url = "postgres://..." }

      $ strongroom operator migrate -config=migrate.hcl

  An interrupted migration resumes with -start=KEY (keys are copied in sorted
  order); -reset removes the lock a killed migration left on the source."""


def migrate(argv: list[str]) -> int:
    ctx = Context("operator migrate", MIGRATE_HELP, http=False, output=False)
    fs = ctx.fs
    config = fs.string("config", "", "The migration configuration file (storage_source, storage_destination).")
    start = fs.string("start", "", "Copy only the keys at or after this one (resume).")
    reset = fs.boolean("reset", False, "Remove a stale migration lock from the source and exit.")
    ctx.parse(argv, 0)
    if not config.value:
        raise UsageError("Must specify exactly one config path using -config")

    from strongroom.migrate import run  # type: ignore[import-not-found, unused-ignore]

    return int(run(config.value, start=start.value, reset=reset.value))

"""Statement templates of the database engine (Vault's dbutil.QueryHelper): ``{{name}}``/``{{username}}``,
``{{password}}`` and ``{{expiration}}`` are replaced as plain text. (A connection's ``username_template``
is the framework's: strongroom.framework.compile_username_template.)
"""

from __future__ import annotations

from collections.abc import Mapping


def render_statement(stmt: str, values: Mapping[str, str]) -> str:
    """``stmt`` with each ``{{key}}`` of ``values`` replaced."""
    for key, value in values.items():
        stmt = stmt.replace("{{" + key + "}}", value)
    return stmt


def split_statements(stmts: list[str]) -> list[str]:
    """Each statement split on ``;`` into queries (Vault's rule), except one holding a ``$$``-quoted
    body (a PostgreSQL function or DO block), which is run whole."""
    out: list[str] = []
    for stmt in stmts:
        if "$$" in stmt:
            if stmt.strip():
                out.append(stmt)
            continue
        out.extend(q.strip() for q in stmt.split(";") if q.strip())
    return out


__all__ = ["render_statement", "split_statements"]

"""Vault's default username templates of each plugin (the template language itself is the framework's:
tests/framework/test_usernames.py), statement placeholders and connection strings."""

from __future__ import annotations

import re

import pytest

from strongroom.engines.database.plugins.mysql import LEGACY_USERNAME_TEMPLATE, parse_dsn
from strongroom.engines.database.plugins.mysql import DEFAULT_USERNAME_TEMPLATE as MYSQL_TEMPLATE
from strongroom.engines.database.plugins.postgresql import DEFAULT_USERNAME_TEMPLATE as PG_TEMPLATE
from strongroom.engines.database.plugins.postgresql import connection_string
from strongroom.engines.database.plugins.redis import DEFAULT_USERNAME_TEMPLATE as REDIS_TEMPLATE
from strongroom.engines.database.templates import render_statement, split_statements
from strongroom.errors import InvalidRequest
from strongroom.framework import compile_username_template


def _render(template: str, display_name: str, role_name: str) -> str:
    return compile_username_template(template).render({"DisplayName": display_name, "RoleName": role_name})


def test_vaults_default_templates() -> None:
    pg = _render(PG_TEMPLATE, "token-displayname", "readonly-role")
    assert re.fullmatch(r"v-token-di-readonly-[A-Za-z0-9]{20}-\d{10}", pg), pg
    my = _render(MYSQL_TEMPLATE, "token", "readonly-role")
    assert len(my) == 32 and my.startswith("v-token-readonly-r")
    legacy = _render(LEGACY_USERNAME_TEMPLATE, "token", "readonly")
    assert len(legacy) == 16 and legacy.startswith("v-read-")
    rd = _render(REDIS_TEMPLATE, "token", "ro")
    assert rd.startswith("V_TOKEN_RO_") and rd == rd.upper() and len(rd) <= 32


def test_statements() -> None:
    assert render_statement("CREATE {{name}} '{{password}}' {{username}}", {"name": "u", "username": "u",
                                                                         "password": "p"}) == "CREATE u 'p' u"
    assert split_statements(["A; B;", " ", "DO $$ BEGIN x; y; END $$"]) == ["A", "B", "DO $$ BEGIN x; y; END $$"]


def test_connection_strings() -> None:
    url = connection_string({"connection_url": "postgresql://{{username}}:{{password}}@h/db", "username": "a@b",
                             "password": "p:/@"})
    assert url == "postgresql://a%40b:p%3A%2F%40@h/db"
    kv = connection_string({"connection_url": "host=h user={{username}} password={{password}}", "username": "u",
                            "password": "it's"})
    assert kv == "host=h user='u' password='it\\'s'"
    args = parse_dsn({"connection_url": "{{username}}:{{password}}@tcp(db.example:3307)/app?tls=false",
                      "username": "root", "password": "p@ss:w"})
    assert args["user"] == "root" and args["password"] == "p@ss:w" and args["host"] == "db.example"
    assert args["port"] == 3307 and args["db"] == "app"
    assert parse_dsn({"connection_url": "u@unix(/run/mysqld/mysqld.sock)/"})["unix_socket"] == "/run/mysqld/mysqld.sock"
    with pytest.raises(InvalidRequest):
        parse_dsn({"connection_url": "u:p@tcp(h:port)/"})

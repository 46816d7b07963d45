"""Username templates (the Go template subset Vault documents) and statement placeholders."""

from __future__ import annotations

import re

import pytest

from strongroom.engines.database.plugins.mysql import LEGACY_USERNAME_TEMPLATE, parse_dsn
from strongroom.engines.database.plugins.mysql import DEFAULT_USERNAME_TEMPLATE as MYSQL_TEMPLATE
from strongroom.engines.database.plugins.postgresql import DEFAULT_USERNAME_TEMPLATE as PG_TEMPLATE
from strongroom.engines.database.plugins.postgresql import connection_string
from strongroom.engines.database.plugins.redis import DEFAULT_USERNAME_TEMPLATE as REDIS_TEMPLATE
from strongroom.engines.database.templates import UsernameTemplate, render_statement, split_statements
from strongroom.errors import InvalidRequest


def test_vaults_default_templates() -> None:
    pg = UsernameTemplate(PG_TEMPLATE).render("token-displayname", "readonly-role")
    assert re.fullmatch(r"v-token-di-readonly-[A-Za-z0-9]{20}-\d{10}", pg), pg
    my = UsernameTemplate(MYSQL_TEMPLATE).render("token", "readonly-role")
    assert len(my) == 32 and my.startswith("v-token-readonly-r")
    legacy = UsernameTemplate(LEGACY_USERNAME_TEMPLATE).render("token", "readonly")
    assert len(legacy) == 16 and legacy.startswith("v-read-")
    rd = UsernameTemplate(REDIS_TEMPLATE).render("token", "ro")
    assert rd.startswith("V_TOKEN_RO_") and rd == rd.upper() and len(rd) <= 32


def test_functions_pipelines_and_literals() -> None:
    t = UsernameTemplate('app-{{ .RoleName | replace "-" "_" | uppercase }}-{{ printf "%s.%d" "x" 7 }}-'
                         '{{ .DisplayName | truncate_sha256 70 }}')
    long_name = "d" * 80
    assert t.render(long_name, "my-role") == "app-MY_ROLE-x.7-" + _sha_trunc(long_name, 70)
    assert t.render("short", "r") == "app-R-x.7-short"
    assert UsernameTemplate("{{ uuid }}").render("", "").count("-") == 4
    assert UsernameTemplate("{{ base64 .RoleName }}").render("", "ab") == "YWI="
    assert UsernameTemplate("plain").render("", "") == "plain"


def _sha_trunc(s: str, n: int) -> str:
    import hashlib

    return s if len(s) <= n else s[:max(n - 64, 0)] + hashlib.sha256(s[max(n - 64, 0):].encode()).hexdigest()


@pytest.mark.parametrize("bad", ["{{ nosuch }}", "{{ .Unknown }}", '{{ printf "%s" (random 3 }}', "{{ truncate }}",
                                 "{{ 'x' }}"])
def test_bad_templates_are_refused_when_configured(bad: str) -> None:
    with pytest.raises(InvalidRequest):
        UsernameTemplate(bad)


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

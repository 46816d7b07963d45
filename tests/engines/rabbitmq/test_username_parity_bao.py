"""Username templates rendered by the real OpenBao (``bao server -dev``, its rabbitmq engine) and by
ours, on the local broker: the same names for the same templates, and the same refusals (the same
message prefix, OpenBao's Go error text starting with ours)."""

from __future__ import annotations

import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from .conftest import ADMIN, MGMT, Engine, users_with_prefix

ROLE = {"vhosts": '{"/": {"configure": "", "write": "", "read": ""}}'}

# Deterministic templates (no random, uuid or clock below a day): each must give the same name.
SAME = [
    '{{ printf "%s-%d" 5 "x" }}{{ random 0 }}',
    '{{ printf "%q|%5s|%-4s|%05d|%.3s|%x|%t|%v" "a" "b" "c" 42 "abcdef" "hi" false .RoleName }}',
    '{{ printf "%s" "a" "b" }}{{ printf "%s-%s" "a" }}{{ printf "%" }}{{ printf "%z" "a" }}',
    '{{ print "a" 1 2 "b" }}{{ -3 }}{{ true }}',
    '{{ "thisisareallylongstring" | truncate_sha256 12 }}|{{ .RoleName | truncate 2 }}',
    '{{ if eq .RoleName "a" "parity" }}A{{ else if eq .RoleName "b" }}B{{ else }}C{{ end }}{{/* c */}}x '
    '{{- /* t */ -}} y',
    '{{ if and .RoleName (not .DisplayName) }}y{{ end }}{{ or .DisplayName "dflt" }}|{{ and "a" "" "b" }}|'
    '{{ not "" }}',
    "{{ . }}",
    '{{ "aGk=" | decode_base64 }}{{ "6869" | decode_hex }}{{ glob "p*" .RoleName }}{{ glob "x*" .RoleName }}',
    '{{ "\\x41\\u00e9" }}{{ `r\\aw` }}',
    '{{ .DisplayName }}-{{ .RoleName | uppercase | replace "A" "_" | lowercase }}',
    "{{ .RoleName | sha256 | truncate 12 }}{{ .RoleName | base64 }}{{ .RoleName | hex }}",
    '{{ timestamp "2006 Jan" }}',
]

# Refused: (OpenBao's prefix, template).
REFUSED = [
    ("unable to initialize username template", "{{ nofunc }}"),
    ("unable to initialize username template", "{{ (uuid }}"),
    ("unable to initialize username template", "{{ uuid) }}"),
    ("unable to initialize username template", "{{/* open }}"),
    ("unable to initialize username template", "{{ if }}x{{ end }}"),
    ("unable to initialize username template", "{{ end }}"),
    ("unable to initialize username template", "{{ if .RoleName }}x{{ else }}y{{ else }}z{{ end }}"),
    ("unable to initialize username template", '{{ .RoleName | "x" }}'),
    ("invalid username template", "{{ .Bogus }}"),
    ("invalid username template", '{{ "x" | truncate 0 }}'),
    ("invalid username template", '{{ "x" | truncate_sha256 8 }}'),
    ("invalid username template", "{{ truncate }}"),
    ("invalid username template", '{{ if eq 1 "1" }}x{{ end }}'),
    ("invalid username template", '{{ eq "a" }}'),
    ("invalid username template", "{{ 5 | uppercase }}"),
    ("invalid username template", "{{ .RoleName .DisplayName }}"),
    ("invalid username template", "{{ .RoleName | .DisplayName }}"),
    ("invalid username template", '{{ "x" "y" }}'),
    ("invalid username template", '{{ "x" | decode_hex }}'),
    ("invalid username template", '{{ "abc" | decode_hex }}'),
    ("invalid username template", '{{ "%%%" | decode_base64 }}'),
]

# OpenBao wraps the Go error: "...: %!w(*fmt.wrapError=&{unable to ... template: template:1:3: executing
# "template" at <.Bogus>: can't evaluate field Bogus in type ... {template 0x...}})".
_GO_ERROR = re.compile(r'template:1(?::\d+)?: (?:executing "template" at <.*?>: )?(.*?)(?: \{template)? 0x[0-9a-f]+\}+\)$',
                       re.S)


def _bao() -> str | None:
    here = Path(sys.executable).with_name("bao")
    return str(here) if here.exists() else shutil.which("bao")


@pytest.fixture(scope="module")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    bao = _bao()
    if bao is None:
        pytest.skip("the bao binary is not installed (.venv/bin/bao)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    log = (tmp_path_factory.mktemp("bao") / "bao.log").open("wb")
    proc = subprocess.Popen([bao, "server", "-dev", "-dev-root-token-id=root", f"-dev-listen-address=127.0.0.1:{port}"],
                            stdout=log, stderr=subprocess.STDOUT)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-Vault-Token": "root"}, timeout=15)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if client.get("/v1/sys/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail("bao server -dev did not start")
            time.sleep(0.1)
        assert client.post("/v1/sys/mounts/rabbitmq", json={"type": "rabbitmq"}).status_code == 204
        assert client.post("/v1/rabbitmq/roles/parity", json=ROLE).status_code == 204
        yield client
    finally:
        client.close()
        proc.terminate()
        proc.wait(15)
        log.close()


def _configure(template: str) -> dict[str, object]:
    return {"connection_uri": MGMT, "username": ADMIN[0], "password": ADMIN[1], "verify_connection": False,
            "username_template": template}


async def test_same_names_as_openbao(engine: Engine, openbao: httpx.Client) -> None:
    c = engine.client
    assert (await c.post("/v1/rabbitmq/roles/parity", json=ROLE)).status_code == 204
    assert (await c.get("/v1/auth/token/lookup-self")).json()["data"]["display_name"] == \
        openbao.get("/v1/auth/token/lookup-self").json()["data"]["display_name"]
    tag = f"p{secrets.token_hex(3)}-"  # OpenBao's users; ours carry the engine fixture's prefix
    made = 0
    try:
        for template in SAME:
            r = await c.post("/v1/rabbitmq/config/connection", json=_configure(engine.prefix + template))
            assert r.status_code == 204, (template, r.text)
            r = await c.get("/v1/rabbitmq/creds/parity")
            assert r.status_code == 200, (template, r.text)
            ours = r.json()["data"]["username"].removeprefix(engine.prefix)
            assert (await c.post("/v1/sys/leases/revoke", json={"lease_id": r.json()["lease_id"]})).status_code == 204

            r = openbao.post("/v1/rabbitmq/config/connection", json=_configure(tag + template))
            assert r.status_code == 204, (template, r.text)
            r = openbao.get("/v1/rabbitmq/creds/parity")
            assert r.status_code == 200, (template, r.text)
            made += 1
            theirs = r.json()["data"]["username"].removeprefix(tag)
            assert openbao.post("/v1/sys/leases/revoke", json={"lease_id": r.json()["lease_id"]}).status_code == 204
            assert ours == theirs, template
    finally:
        for name in users_with_prefix(tag):
            httpx.delete(f"{MGMT}/api/users/{quote(name, safe='')}", auth=ADMIN, timeout=5)
    assert made == len(SAME)


async def test_same_refusals_as_openbao(engine: Engine, openbao: httpx.Client) -> None:
    for prefix, template in REFUSED:
        theirs = openbao.post("/v1/rabbitmq/config/connection", json=_configure(template))
        assert theirs.status_code == 400, template
        (their_error,) = theirs.json()["errors"]
        assert their_error.startswith(prefix + ": "), their_error
        m = _GO_ERROR.search(their_error)
        assert m is not None, their_error
        ours = await engine.client.post("/v1/rabbitmq/config/connection", json=_configure(template))
        assert ours.status_code == 400, template
        (our_error,) = ours.json()["errors"]
        assert our_error.startswith(prefix + ": "), (template, our_error)
        assert m.group(1).startswith(our_error.removeprefix(prefix + ": ")), (template, m.group(1), our_error)

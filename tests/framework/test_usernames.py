"""Username templates (framework/usernames*.py, gofmt.py): the Go text/template subset of Vault's
``username_template``, one implementation for every engine. Expected values of the sdk functions
are Vault's own test vectors (sdk/helper/template/*_test.go)."""

from __future__ import annotations

import base64
import hashlib
import re
import time
from datetime import datetime, timedelta, timezone

import pytest

from strongroom.framework import UsernameTemplate, UsernameTemplateError, compile_username_template
from strongroom.framework.gofmt import go_time_format
from strongroom.framework.usernames import render
from strongroom.framework.usernames_funcs import MAX_RANDOM
from strongroom.framework.usernames_parse import parse

VALUES = {"DisplayName": "token", "RoleName": "my-role"}


@pytest.mark.parametrize(("template", "data", "out"), [
    ("plain", {}, "plain"),
    ("", {}, ""),
    ("{{ .A }}-{{ .B | uppercase }}", {"A": "x", "B": "y"}, "x-Y"),
    ('{{ printf "%s/%d/%v%%" .A 5 true }}', {"A": "a"}, "a/5/true%"),
    ('{{ printf "%q|%5s|%-4s|%05d|%.3s|%x|%t" "a" "b" "c" 42 "abcdef" "hi" false }}', {},
     '"a"|    b|c   |00042|abc|6869|false'),
    ('{{ printf "%s %d" 5 "x" }}', {}, "%!s(int=5) %!d(string=x)"),
    ('{{ printf "%s-%s" "a" }}', {}, "a-%!s(MISSING)"),
    ('{{ printf "%s" "a" "b" }}', {}, "a%!(EXTRA string=b)"),
    ('{{ print "a" 1 2 "b" }}', {}, "a1 2b"),
    ('{{ "abcdef" | truncate 3 }}', {}, "abc"),
    ('{{ replace "-" "_" .A }}', {"A": "a-b-c"}, "a_b_c"),
    ('{{ .RoleName | uppercase | replace "-" "_" }}', VALUES, "MY_ROLE"),
    ('{{ if eq .T "STS" }}s{{ else }}i{{ end }}', {"T": "IAM"}, "i"),
    ('{{ if (eq .T "STS") }}s{{ else }}i{{ end }}', {"T": "STS"}, "s"),
    ('{{ if eq .T "a" "b" }}y{{ end }}', {"T": "b"}, "y"),
    ('{{ if ne .T "a" }}y{{ else }}n{{ end }}', {"T": "a"}, "n"),
    ('{{ if eq .T "a" }}A{{ else if eq .T "b" }}B{{ else }}C{{ end }}', {"T": "b"}, "B"),
    ('{{ if eq .T "a" }}A{{ else if eq .T "b" }}B{{ else }}C{{ end }}', {"T": "c"}, "C"),
    ('{{ if and .A (not .B) }}y{{ end }}{{ or .B "dflt" }}', {"A": "x", "B": ""}, "ydflt"),
    ("{{ if .A }}set{{ else }}empty{{ end }}", {"A": ""}, "empty"),
    ("a  {{- .A -}}  b", {"A": "x"}, "axb"),
    ("a {{- .RoleName -}} b", VALUES, "amy-roleb"),
    ("a {{/* a comment */}}b{{- /* trimmed */ -}} c", {}, "a bc"),
    ("{{ -3 }}", {}, "-3"),
    ('{{ `raw"` }}{{ "q\\"" }}{{ "\\x41\\u00e9\\t" }}', {}, 'raw"q"A\u00e9\t'),
    ("{{ true }}/{{ false }}", {}, "true/false"),
    ("{{ . }}", VALUES, "{token my-role}"),  # Vault's data is a struct
    ('{{ "YQ==" | decode_base64 }}', {}, "a"),
])
def test_render(template: str, data: dict[str, str], out: str) -> None:
    assert render(template, data) == out
    assert UsernameTemplate(template).render(data) == out


def test_vault_builtin_functions() -> None:
    """Vault's "template with builtin functions" vector, function by function."""
    s = "Some string with Multiple Capitals LETTERS"
    t = compile_username_template
    data = {"String": s}
    assert t("{{.String | truncate 10}}").render(data) == "Some strin"
    assert t("{{.String | uppercase}}").render(data) == s.upper()
    assert t("{{.String | lowercase}}").render(data) == s.lower()
    assert t('{{.String | replace " " "."}}').render(data) == "Some.string.with.Multiple.Capitals.LETTERS"
    assert t("{{.String | sha256}}").render(data) == \
        "da9872dd96609c72897defa11fe81017a62c3f44339d9d3b43fe37540ede3601"
    assert t("{{.String | base64}}").render(data) == "U29tZSBzdHJpbmcgd2l0aCBNdWx0aXBsZSBDYXBpdGFscyBMRVRURVJT"
    assert t("{{.String | base64 | decode_base64}}").render(data) == s
    assert t("{{.String | hex}}").render(data) == s.encode().hex()
    assert t("{{.String | hex | decode_hex}}").render(data) == s
    assert t("{{.String | truncate_sha256 20}}").render(data) == "Some string 6841cf80"
    assert len(t("{{ .RoleName | sha256 }}").render(VALUES)) == 64


@pytest.mark.parametrize(("n", "out"), [(1, "f"), (5, "fooba"), (8, "foobarba"), (9, "foobarbaz"),
                                        (100, "foobarbaz")])
def test_truncate(n: int, out: str) -> None:
    assert render(f'{{{{ "foobarbaz" | truncate {n} }}}}', {}) == out


@pytest.mark.parametrize(("n", "out"), [(9, "t4bb25641"), (12, "this704cd12b"), (22, "thisisareallyl7f978be6"),
                                        (23, "thisisareallylongstring"), (100, "thisisareallylongstring")])
def test_truncate_sha256(n: int, out: str) -> None:
    """The hash is of the part cut off (Vault's truncateSHA256), not of the whole string."""
    assert render(f'{{{{ "thisisareallylongstring" | truncate_sha256 {n} }}}}', {}) == out
    s = "abcdefghijklmnop"
    assert render(f'{{{{ truncate_sha256 12 "{s}" }}}}', {}) == "abcd" + hashlib.sha256(b"efghijklmnop").hexdigest()[:8]


def test_pipelines_literals_and_long_names() -> None:
    """The database engine's cases: a piped chain, printf with %d, and truncate_sha256 of a long name
    (kept n-8 characters plus 8 hex digits of the hash of the rest, as Vault does)."""
    t = compile_username_template('app-{{ .RoleName | replace "-" "_" | uppercase }}-{{ printf "%s.%d" "x" 7 }}-'
                                  "{{ .DisplayName | truncate_sha256 70 }}")
    long_name = "d" * 80
    out = t.render({"RoleName": "my-role", "DisplayName": long_name})
    assert out == "app-MY_ROLE-x.7-" + "d" * 62 + hashlib.sha256(b"d" * 18).hexdigest()[:8]
    assert t.render({"RoleName": "r", "DisplayName": "short"}) == "app-R-x.7-short"
    assert render("{{ uuid }}", {}).count("-") == 4
    assert render("{{ base64 .RoleName }}", {"RoleName": "ab"}) == "YWI="


def test_truncate_counts_bytes_like_go() -> None:
    assert render('{{ "\u00e9\u00e9\u00e9" | truncate 4 }}', {}) == "\u00e9\u00e9"
    assert render('{{ "\u00e9\u00e9\u00e9" | truncate 3 }}', {}) == "\u00e9"  # half a character is dropped


@pytest.mark.parametrize(("template", "words"), [
    ('{{ "x" | truncate 0 }}', "error calling truncate: max length must be > 0 but was 0"),
    ('{{ "x" | truncate -1 }}', "max length must be > 0 but was -1"),
    ('{{ "x" | truncate_sha256 8 }}', "error calling truncate_sha256: max length must be > 8 but was 8"),
    ("{{ truncate }}", "wrong number of args for truncate: want 2 got 0"),
    ('{{ "a" | truncate 1 2 }}', "wrong number of args for truncate: want 2 got 3"),
    ("{{ printf }}", "wrong number of args for printf: want at least 1 got 0"),
    ('{{ truncate "3" "abc" }}', "wrong type for value; expected int; got string"),
    ("{{ 5 | uppercase }}", "wrong type for value; expected string; got int"),
    ("{{ . | uppercase }}", "wrong type for value; expected string; got map"),
    ('{{ eq 1 "1" }}', "error calling eq: incompatible types for comparison: int and string"),
    ('{{ eq "a" }}', "error calling eq: missing argument for comparison"),
    ('{{ "%%%" | decode_base64 }}', "error calling decode_base64: illegal base64 data at input byte 0"),
    ('{{ "YQ" | decode_base64 }}', "illegal base64 data"),
    ('{{ "zz" | decode_hex }}', "error calling decode_hex: encoding/hex: invalid byte: U+007A 'z'"),
    ('{{ "6 1" | decode_hex }}', "encoding/hex: invalid byte: U+0020 ' '"),
    ('{{ "abc" | decode_hex }}', "encoding/hex: odd length hex string"),
    # Go refuses a value given arguments when it runs, not when it parses
    ("{{ .RoleName .DisplayName }}", "RoleName has arguments but cannot be invoked as function"),
    ("{{ .A | .B }}", "B has arguments but cannot be invoked as function"),
    ('{{ "x" "y" }}', "can't give argument to non-function \"x\""),
    ("{{ random -1 }}", "random length must be >= 0"),
    (f"{{{{ random {MAX_RANDOM + 1} }}}}", f"random length must be at most {MAX_RANDOM}"),
    ("{{ .Missing }}", "can't evaluate field Missing"),
])
def test_render_errors(template: str, words: str) -> None:
    compiled = compile_username_template(template)  # parses: the problem shows when it runs
    with pytest.raises(UsernameTemplateError, match=re.escape(words)):
        compiled.render({"A": "a"})


@pytest.mark.parametrize(("template", "words"), [
    ("{{ nosuch }}", 'function "nosuch" not defined'),
    ("{{ nofunc }}", 'function "nofunc" not defined'),
    ("{{ if .A }}x", "missing {{end}}"),
    ("{{ if .A }}x{{ else }}y{{ else }}z{{ end }}", "expected end; found {{else}}"),
    ("{{ end }}", "unexpected {{end}}"),
    ("{{ else }}", "unexpected {{else}}"),
    ("{{ if }}x{{ end }}", "missing value for if"),
    ("{{ range .A }}{{ end }}", "unsupported action"),
    ("{{ with .A }}{{ end }}", "unsupported action"),
    ("{{ (random 3 }}", "unclosed"),
    ("{{ (uuid }}", "unclosed"),
    ('{{ printf "%s" (random 3 }}', "unclosed left paren"),
    ("{{ 'x' }}", "unexpected"),  # a Go character constant: not taken
    ("{{ uuid) }}", "unexpected right paren"),
    ("{{ (uuid)) }}", "unexpected right paren"),
    ("{{ .A", "unclosed action"),
    ("{{ .RoleName", "unclosed action"),
    ("{{/* open }}", "unclosed comment"),
    ("{{ }}", "missing value for command"),
    ("{{ .A | }}", "missing value for command"),
    ('{{ .A | "x" }}', "non executable command in pipeline stage 2"),
    ("{{ .A | (uuid) }}", "non executable command in pipeline stage 2"),
    ("{{ .A ; }}", "unexpected ';'"),
    ('{{ "a\nb" }}', "unexpected"),
    ("{{ " + "(" * 500 + "1" + ")" * 500 + " }}", "nested more than 32 levels deep"),
    ("{{ if 1 }}" * 100 + "{{ end }}" * 100, "nested more than 32 levels deep"),
    ("x" * 5000, "longer than 4096 characters"),
])
def test_bad_templates_refused_when_parsed(template: str, words: str) -> None:
    with pytest.raises(UsernameTemplateError, match=re.escape(words)):
        parse(template)
    with pytest.raises(ValueError):  # engines that catch ValueError keep working
        compile_username_template(template)


def test_random_uuid_and_clock() -> None:
    for n in (1, 10, 20, 100):
        assert re.fullmatch(f"[a-zA-Z0-9]{{{n}}}", render(f"{{{{ random {n} }}}}", {}))
    assert render("{{ random 0 }}", {}) == ""  # base62.Random(0) in Vault
    assert len({render("{{ random 20 }}", {}) for _ in range(20)}) == 20
    out = render('{{ printf "%s-%s" (.DisplayName) (uuid) }}', VALUES)  # rabbitmq's default
    assert re.fullmatch(r"token-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", out)
    before = int(time.time())
    assert before <= int(render("{{ unix_time }}", {})) <= before + 2
    assert before * 1000 <= int(render("{{ unix_time_millis }}", {})) <= (before + 2) * 1000
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z",
                        render('{{timestamp "2006-01-02T15:04:05.000Z"}}', {}))
    v = render("v-{{ .RoleName | truncate 4 }}-{{ random 5 | lowercase }}", VALUES)
    assert re.fullmatch("v-my-r-[a-z0-9]{5}", v)


def test_go_time_layouts() -> None:
    t = datetime(2009, 11, 3, 23, 4, 5, 123400, tzinfo=timezone(timedelta(hours=-7)))
    assert go_time_format("2006-01-02T15:04:05.000Z07:00", t) == "2009-11-03T23:04:05.123-07:00"
    assert go_time_format("Mon Monday Jan January 2 _2 02 1 06 002", t) == \
        "Tue Tuesday Nov November 3  3 03 11 09 307"
    assert go_time_format("3:4:5 03 PM pm .999 .99999 .000000 -0700 -07 Z0700", t) == \
        "11:4:5 11 PM pm .123 .1234 .123400 -0700 -07 -0700"
    utc = t.replace(microsecond=0, tzinfo=timezone.utc)
    assert go_time_format("15:04:05.999Z07:00 MST", utc) == "23:04:05Z UTC"
    assert go_time_format("20060102150405", utc) == "20091103230405"


def test_glob() -> None:
    tmpl = compile_username_template('{{ if glob "release/*" .branch }}is_release_branch: true{{ end }}')
    assert tmpl.render({"branch": "main"}) == ""
    assert tmpl.render({"branch": "release/v1"}) == "is_release_branch: true"
    assert tmpl.render({"branch": "release/"}) == "is_release_branch: true"
    assert render('{{ glob "a.c" "abc" }}', {}) == "false"  # only * is special


def test_parsed_once_and_cached() -> None:
    text = "{{ .DisplayName | truncate 3 }}-{{ random 4 }}"
    first = compile_username_template(text)
    assert compile_username_template(text) is first
    assert first.text == text and re.fullmatch("tok-[a-zA-Z0-9]{4}", first.render(VALUES))
    with pytest.raises(UsernameTemplateError):
        compile_username_template("{{ nosuch }}")


def test_strings_are_decoded_like_go() -> None:
    assert render('{{ "tab\\there" }}', {}) == "tab\there"
    assert base64.b64decode(render('{{ "\u00e9" | base64 }}', {})).decode() == "\u00e9"

"""Username templates: the Go text/template subset Vault's username_template uses."""

from __future__ import annotations

import hashlib
import re

import pytest

from strongroom.engines.aws.usernames import DEFAULT_TEMPLATE, TemplateError, generate, normalize, parse, render


def test_default_template_iam_and_sts() -> None:
    iam = generate(DEFAULT_TEMPLATE, "IAM", "token", "my role")
    assert re.fullmatch(r"vault-token-my_role-\d{10}-[A-Za-z0-9]{20}", iam)
    sts = generate("", "STS")
    assert re.fullmatch(r"vault-\d{10}-[A-Za-z0-9]{15}", sts) and len(sts) == 32
    long = generate(DEFAULT_TEMPLATE, "IAM", "d" * 40, "p" * 40)
    assert len(long) == 64 and long.startswith("vault-" + "d" * 40 + "-p-")


@pytest.mark.parametrize(("template", "data", "out"), [
    ("plain", {}, "plain"),
    ("{{ .A }}-{{ .B | uppercase }}", {"A": "x", "B": "y"}, "x-Y"),
    ('{{ printf "%s/%d/%v%%" .A 5 true }}', {"A": "a"}, "a/5/true%"),
    ('{{ "abcdef" | truncate 3 }}', {}, "abc"),
    ('{{ replace "-" "_" .A }}', {"A": "a-b-c"}, "a_b_c"),
    ('{{ truncate_sha256 12 "abcdefghijklmnop" }}', {}, "abcd" + hashlib.sha256(b"abcdefghijklmnop").hexdigest()[:8]),
    ('{{ if eq .T "STS" }}s{{ else }}i{{ end }}', {"T": "IAM"}, "i"),
    ('{{ if (eq .T "STS") }}s{{ else }}i{{ end }}', {"T": "STS"}, "s"),
    ("a  {{- .A -}}  b", {"A": "x"}, "axb"),
    ('{{ `raw"` }}{{ "q\\"" }}', {}, 'raw"q"'),
])
def test_render(template: str, data: dict[str, str], out: str) -> None:
    assert render(template, data) == out


@pytest.mark.parametrize(("template", "words"), [
    ("{{ nosuch }}", 'function "nosuch" not defined'),
    ("{{ if .A }}x", "missing {{end}}"),
    ("{{ end }}", "unexpected {{end}}"),
    ("{{ range .A }}{{ end }}", "unsupported action"),
    ("{{ (random 3 }}", "unclosed"),
    ("{{ .A", "unclosed action"),
    ("{{ random 0 }}", "random length"),
    ("{{ .Missing }}", "can't evaluate field Missing"),
    ("{{ " + "(" * 500 + "1" + ")" * 500 + " }}", "nested more than 32 levels deep"),
    ("{{ if 1 }}" * 100 + "{{ end }}" * 100, "nested more than 32 levels deep"),
    ("x" * 5000, "longer than 4096 characters"),
])
def test_bad_templates(template: str, words: str) -> None:
    with pytest.raises(TemplateError, match=re.escape(words)):
        render(parse(template), {"A": "a"})


def test_length_limits_and_normalize() -> None:
    with pytest.raises(TemplateError, match="exceeds the STS username length limits of 32 chars"):
        generate("{{ random 33 }}", "STS")
    with pytest.raises(TemplateError, match="IAM username length limits of 64"):
        generate("{{ random 65 }}", "IAM")
    assert normalize("a b/c:d+e=f,g.h@i_j-k") == "a_b_c_d+e=f,g.h@i_j-k"

"""The Go template language on its own (no server): syntax errors with lines, trimming, delimiters,
missingkey, variables, printing and truth rules, parse-once execution."""

from __future__ import annotations

import time
from typing import Any

import pytest

from strongroom.agent.template import Template, TemplateExecError, TemplateSyntaxError
from strongroom.agent.template.gofmt import format_float_g_shortest, format_float_json, go_quote, sprintf


def render(text: str, **kw: Any) -> str:
    return Template(text, **kw).render().output


@pytest.mark.parametrize(("text", "line", "message"), [
    ("ok\n{{ if }}", 2, "missing value for if"),
    ("a\nb\n{{ .x ", 3, "unclosed action"),
    ("{{ nosuch }}", 1, 'function "nosuch" not defined'),
    ("{{ if true }}\nx", 2, "unexpected EOF"),
    ("x\n\n{{ end }}", 3, "unexpected {{end}}"),
    ("{{ $nope }}", 1, 'undefined variable "$nope"'),
    ('{{ "open }}', 1, "unterminated quoted string"),
    ("{{/* never closed }}", 1, "unclosed comment"),
    ("{{ break }}", 1, "{{break}} outside {{range}}"),
    ("{{ 1 | 2 }}", 1, "non executable command in pipeline stage 2"),
    ("{{ $a, $b := 1 }}", 1, "too many declarations in command"),
    ("{{ with 1 }}{{ else if 2 }}{{ end }}", 1, "unexpected {{else if}} in with"),
])
def test_syntax_errors_name_the_line(text: str, line: int, message: str) -> None:
    with pytest.raises(TemplateSyntaxError) as info:
        Template(text)
    assert info.value.line == line
    assert str(info.value) == f"template: :{line}: {message}"


def test_trim_markers_comments_and_delimiters() -> None:
    assert render("a \n\t{{- 1 -}}\n b") == "a1b"
    assert render("a {{-1}}") == "a -1"  # no space after the dash: a negative number, no trimming
    assert render("x {{- /* gone */ -}} y") == "xy"
    assert render("x {{/* a\nmulti-line comment */}} y") == "x  y"
    assert render('<% "in" %> {{ "out" }}', left_delimiter="<%", right_delimiter="%>") == 'in {{ "out" }}'
    assert render('[[- "a" -]]  [[ "b" ]]', left_delimiter="[[", right_delimiter="]]") == "ab"


def test_missing_keys() -> None:
    data = '{{ $m := parseJSON `{"a":{"b":1},"n":null}` }}'
    # consul-template's default (missingkey=zero): a missing key prints <no value> ...
    assert render(data + "{{ $m.x }}|{{ $m.n }}|{{ index $m \"x\" }}") == "<no value>|<no value>|<no value>"
    # ... and going through one is a nil pointer
    with pytest.raises(TemplateExecError, match=r"nil pointer evaluating interface \{\}\.y"):
        render(data + "{{ $m.x.y }}")
    # error_on_missing_key is Go's missingkey=error
    with pytest.raises(TemplateExecError) as info:
        render(data + "\n{{ $m.a.c }}", error_on_missing_key=True)
    assert str(info.value) == 'template: :2:5: executing "" at <$m.a.c>: map has no entry for key "c"'
    assert info.value.line == 2
    assert render(data + "{{ $m.a.b }}", error_on_missing_key=True) == "1"
    # the top-level data is nil, as consul-template runs templates
    assert render("{{ . }}|{{ .x }}") == "<no value>|<no value>"
    with pytest.raises(TemplateExecError, match='nil data; no entry for key "x"'):
        render("{{ .x }}", error_on_missing_key=True)


def test_printing_and_truth() -> None:
    m = '{{ $m := parseJSON `{"z":[1,"a",null,{"k":true}],"a":{},"f":1.5,"e":"","zero":0}` }}'
    assert render(m + "{{ $m }}") == "map[a:map[] e: f:1.5 z:[1 a <nil> map[k:true]] zero:0]"
    assert render(m + "{{ if $m.a }}T{{ else }}F{{ end }}{{ if $m.e }}T{{ else }}F{{ end }}"
                  "{{ if $m.zero }}T{{ else }}F{{ end }}{{ if $m.z }}T{{ end }}{{ if $m.f }}T{{ end }}") == "FFFTT"
    assert render("{{ print 1 2 \"a\" 3 nil }}|{{ println 1 \"a\" }}") == "1 2a3 <nil>|1 a\n"


def test_variables_scope_and_range() -> None:
    assert render("{{ $x := 1 }}{{ range split \",\" \"a,b\" }}{{ $x = . }}{{ $y := 2 }}{{ end }}{{ $x }}") == "b"
    with pytest.raises(TemplateSyntaxError, match='undefined variable "\\$y"'):
        Template("{{ if true }}{{ $y := 2 }}{{ end }}{{ $y }}")
    assert render('{{ range $k, $v := parseJSON `{"b":1,"a":2,"B":3}` }}{{ $k }}{{ $v }} {{ end }}') == "B3 a2 b1 "
    assert render("{{ range 0 }}x{{ else }}none{{ end }}{{ range $i := 2 }}{{ $i }}{{ end }}") == "none01"
    with pytest.raises(TemplateExecError, match="range can't iterate over abc"):
        render('{{ range "abc" }}{{ end }}')


def test_define_and_template() -> None:
    assert render('{{ define "t" }}({{ . }}){{ end }}{{ template "t" 1 }}{{ template "t" "x" }}') == "(1)(x)"
    with pytest.raises(TemplateExecError, match='template "nope" not defined'):
        render('{{ template "nope" }}')
    with pytest.raises(TemplateExecError, match="exceeded maximum template depth"):
        render('{{ define "loop" }}{{ template "loop" }}{{ end }}{{ template "loop" }}')


def test_function_argument_checks() -> None:
    with pytest.raises(TemplateExecError, match="wrong number of args for toUpper: want 1 got 2"):
        render('{{ toUpper "a" "b" }}')
    with pytest.raises(TemplateExecError, match="expected string; found 5"):
        render("{{ toUpper 5 }}")
    with pytest.raises(TemplateExecError, match=r"wrong type for value; expected \[\]string; got string"):
        render('{{ $s := "abc" }}{{ join "," $s }}')
    with pytest.raises(TemplateExecError, match=r'can\'t handle "abc" for arg of type \[\]string'):
        render('{{ join "," "abc" }}')
    with pytest.raises(TemplateExecError, match="can't give argument to non-function 1"):
        render("{{ 1 2 }}")


def test_fmt() -> None:
    assert sprintf("%s|%d|%v|%q|%x|%t|%f|%%", ["s", 42, [1, "a"], 'a"b', "hi", True, 2.5]) == \
        's|42|[1 a]|"a\\"b"|6869|true|2.500000|%'
    assert sprintf("%d %d", [1]) == "1 %!d(MISSING)"
    assert sprintf("%d", ["x", 2]) == "%!d(string=x)%!(EXTRA int=2)"
    assert [format_float_g_shortest(x) for x in (1e6, 123456.0, 1e-5, 0.0001, 1.5, -2.0)] == \
        ["1e+06", "123456", "1e-05", "0.0001", "1.5", "-2"]
    assert [format_float_json(x) for x in (1e21, 1e20, 1e-7, 0.000001, 5.0)] == \
        ["1e+21", "100000000000000000000", "1e-7", "0.000001", "5"]
    assert go_quote("é\t\x00\u00a0") == '"é\\t\\x00\\u00a0"'


def test_parsed_once_executed_many_times() -> None:
    text = ('{{ range $k, $v := parseJSON `{"a":1,"b":2,"c":3}` }}{{ $k }}={{ $v | printf "%03v" }} {{ end }}'
            '{{ with split "," "x,y,z" }}{{ join "-" . | toUpper }}{{ end }}\n') * 10
    tmpl = Template(text)
    root = tmpl.root
    start = time.perf_counter()
    outputs = {tmpl.render().output for _ in range(50)}
    elapsed = time.perf_counter() - start
    assert tmpl.root is root and len(outputs) == 1
    assert outputs.pop().startswith("a=001 b=002 c=003 X-Y-Z\n")
    assert elapsed < 10  # generous on a shared machine: about 1 ms a render here

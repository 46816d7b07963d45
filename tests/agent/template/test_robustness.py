"""Any text is either a template or a TemplateSyntaxError, and executing one fails only with a
TemplateError: never another exception (random templates built from the language's pieces)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.agent.template import Dependency, Template, TemplateError, TemplateSyntaxError
from strongroom.agent.template.dependencies import secret_from_response
from strongroom.agent.template.fetcher import parse_json

BRAIN = {Dependency("vault.read", "kv/a"): secret_from_response(parse_json(
    '{"lease_id":"","lease_duration":0,"renewable":false,"data":{"data":{"a":"x","n":5,"l":[1,"b",null],'
    '"m":{"k":true}},"metadata":{"version":2}},"auth":null}'))}

PIECES = ["{{", "}}", "{{- ", " -}}", "/*", "*/", " ", "\n", "if", "else", "end", "range", "with", "define",
          "template", "block", "break", "continue", "$x", "$", ":=", "=", ",", "|", "(", ")", ".", ".a", ".b.c",
          '"s"', "`r`", "'c'", "1", "-2", "0x1f", "1.5", "true", "nil", "and", "or", "not", "eq", "lt", "len",
          "index", "slice", "printf", '"%d %s %v"', "print", "html", "js", "urlquery", "split", "join",
          "toJSON", "toYAML", "parseJSON", '"{\\"a\\":[1,{\\"b\\":null}]}"', "base64Decode", "replaceAll",
          "contains", "timestamp", "env", "trimSpace", "toUpper", "x", "ü", "\t", "add", "divide", "modulo",
          "minimum", "0", "0.0", "regexMatch", "regexReplaceAll", '"("', '"$1"', "indent", "parseInt",
          "parseFloat", "in", "containsAll", "toUnescapedJSON", "sha256Hex", "mustEnv", "trimPrefix",
          '(secret "kv/a")', 'secret "kv/a"', ".Data", ".data", ".Auth", ".LeaseID", ".n", ".l", ".m", "$.x"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=30), st.booleans())
def test_random_templates_fail_cleanly(pieces: list[str], errkey: bool) -> None:
    text = "".join(pieces)
    try:
        tmpl = Template(text, error_on_missing_key=errkey)
    except TemplateSyntaxError:
        return
    try:
        tmpl.render(brain=dict(BRAIN))
    except TemplateError:
        pass


def test_deep_nesting_is_a_syntax_error_not_a_crash() -> None:
    for text in ["{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}", "{{ if 1 }}" * 3000 + "{{ end }}" * 3000]:
        try:
            Template(text)
        except TemplateSyntaxError as e:
            assert "depth" in str(e)

"""The Go-style flag parser: the forms Vault's CLI accepts, and Go's error messages."""

from __future__ import annotations

import pytest

from strongroom.cli.flags import FlagError, FlagSet, HelpRequested


def flagset() -> FlagSet:
    fs = FlagSet("test")
    fs.string("format", "table", "Output format.")
    fs.boolean("dev", False, "Dev mode.")
    fs.integer("version", 0, "A version.")
    fs.duration("ttl", 0, "A TTL.")
    fs.strings("config", "Config paths.")
    fs.mapping("metadata", "Metadata.")
    fs.boolean("force", False, "Force.", aliases=("f",))
    return fs


def value(fs: FlagSet, name: str) -> object:
    flag = fs.lookup(name)
    assert flag is not None
    return flag.value


@pytest.mark.parametrize("argv", [
    ["-format=json"], ["--format=json"], ["-format", "json"], ["--format", "json"],
])
def test_string_flag_spellings(argv: list[str]) -> None:
    fs = flagset()
    assert fs.parse([*argv, "secret/foo"]) == ["secret/foo"]
    assert value(fs, "format") == "json"


def test_defaults_and_is_set() -> None:
    fs = flagset()
    assert fs.parse([]) == []
    assert value(fs, "format") == "table"
    flag = fs.lookup("format")
    assert flag is not None and not flag.is_set


def test_bool_forms() -> None:
    fs = flagset()
    assert fs.parse(["-dev", "x"]) == ["x"]
    assert value(fs, "dev") is True
    fs = flagset()
    fs.parse(["-dev=false"])
    assert value(fs, "dev") is False
    fs = flagset()
    fs.parse(["--dev=true"])
    assert value(fs, "dev") is True


def test_bool_does_not_consume_next_argument() -> None:
    fs = flagset()
    assert fs.parse(["-dev", "false"]) == ["false"]
    assert value(fs, "dev") is True


def test_alias() -> None:
    fs = flagset()
    fs.parse(["-f"])
    assert value(fs, "force") is True


def test_repeatable_list_and_commas() -> None:
    fs = flagset()
    fs.parse(["-config=a.hcl", "-config", "b.hcl", "-config=c.hcl,d.hcl"])
    assert value(fs, "config") == ["a.hcl", "b.hcl", "c.hcl", "d.hcl"]


def test_mapping_flag() -> None:
    fs = flagset()
    fs.parse(["-metadata=team=ops", "-metadata", "env=a=b"])
    assert value(fs, "metadata") == {"team": "ops", "env": "a=b"}


def test_mapping_needs_equals() -> None:
    with pytest.raises(FlagError, match=r'invalid value "x" for flag -metadata'):
        flagset().parse(["-metadata=x"])


def test_int_and_duration() -> None:
    fs = flagset()
    fs.parse(["-version=3", "-ttl=1h30m"])
    assert value(fs, "version") == 3
    assert value(fs, "ttl") == 5400
    fs = flagset()
    fs.parse(["-ttl=90"])
    assert value(fs, "ttl") == 90


def test_invalid_int_message() -> None:
    with pytest.raises(FlagError) as e:
        flagset().parse(["-version=abc"])
    assert str(e.value) == 'invalid value "abc" for flag -version: strconv.ParseInt: parsing "abc": invalid syntax'


def test_invalid_duration_message() -> None:
    with pytest.raises(FlagError) as e:
        flagset().parse(["-ttl=xyz"])
    assert str(e.value) == 'invalid value "xyz" for flag -ttl: time: invalid duration "xyz"'


def test_unknown_flag_message() -> None:
    with pytest.raises(FlagError) as e:
        flagset().parse(["-bogus", "x"])
    assert str(e.value) == "flag provided but not defined: -bogus"


def test_missing_value_message() -> None:
    with pytest.raises(FlagError) as e:
        flagset().parse(["-format"])
    assert str(e.value) == "flag needs an argument: -format"


def test_flags_stop_at_first_positional() -> None:
    fs = flagset()
    assert fs.parse(["-dev", "secret/foo", "-format=json"]) == ["secret/foo", "-format=json"]
    assert value(fs, "format") == "table"


def test_lone_dash_is_positional_and_double_dash_ends_flags() -> None:
    fs = flagset()
    assert fs.parse(["-dev", "-", "x"]) == ["-", "x"]
    fs = flagset()
    assert fs.parse(["--", "-dev"]) == ["-dev"]
    assert value(fs, "dev") is False


def test_bad_syntax() -> None:
    with pytest.raises(FlagError, match="bad flag syntax: -=x"):
        flagset().parse(["-=x"])


@pytest.mark.parametrize("arg", ["-h", "-help", "--help"])
def test_help(arg: str) -> None:
    with pytest.raises(HelpRequested):
        flagset().parse([arg])


def test_help_text_lists_flags_by_section() -> None:
    fs = FlagSet("x")
    fs.string("address", "", "Server address.", section="HTTP Options")
    fs.boolean("force", False, "Force it.", aliases=("f",))
    text = fs.help()
    assert "HTTP Options:\n\n  -address=<string>\n      Server address." in text
    assert "Command Options:\n\n  -force, -f\n      Force it." in text

import pytest

from strongroom.errors import InvalidRequest
from strongroom.framework import Field, FieldData, FieldType


def test_coercions() -> None:
    schema = {
        "b": Field(FieldType.BOOL), "i": Field(FieldType.INT), "d": Field(FieldType.DURATION),
        "c": Field(FieldType.COMMA_STRING_SLICE), "kv": Field(FieldType.KV_PAIRS),
        "s": Field(FieldType.STRING, default="dflt"), "m": Field(FieldType.MAP),
    }
    d = FieldData({"b": "true", "i": "42", "d": "1h30m", "c": "a, b,c", "kv": ["x=1", "y=2"], "m": '{"k": 1}'},
                  schema)
    assert d.get("b") is True and d.get("i") == 42 and d.get("d") == 5400
    assert d.get("c") == ["a", "b", "c"] and d.get("kv") == {"x": "1", "y": "2"} and d.get("m") == {"k": 1}
    assert d.get("s") == "dflt" and d.get_ok("s") == ("dflt", False)
    assert d.get_ok("i") == (42, True)


@pytest.mark.parametrize(("ftype", "value"), [
    (FieldType.INT, "forty"), (FieldType.INT, 1.5), (FieldType.BOOL, "maybe"), (FieldType.DURATION, "5 parsecs"),
    (FieldType.MAP, [1, 2]), (FieldType.KV_PAIRS, ["novalue"]), (FieldType.STRING, {"a": 1}),
])
def test_wrong_types_are_400_naming_the_field(ftype: FieldType, value: object) -> None:
    with pytest.raises(InvalidRequest) as e:
        FieldData({"f": value}, {"f": Field(ftype)})
    assert '"f"' in e.value.message


def test_required_and_allowed_values() -> None:
    with pytest.raises(InvalidRequest, match="missing required field"):
        FieldData({}, {"f": Field(FieldType.STRING, required=True)})
    with pytest.raises(InvalidRequest, match="allowed"):
        FieldData({"f": "c"}, {"f": Field(FieldType.STRING, allowed_values=("a", "b"))})


def test_unknown_fields_are_reported() -> None:
    d = FieldData({"a": 1, "zzz": 2}, {"a": Field(FieldType.INT)})
    assert d.unknown() == ["zzz"]

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


@pytest.mark.parametrize("value", [
    1e100, float("inf"), float("-inf"), float("nan"), 2**63, -(2**63) - 1, "9223372036854775808", "9" * 5000,
])
def test_ints_are_bounded_to_int64_like_go(value: object) -> None:
    # 1e100 used to become a 333-digit int that failed only when stored or rendered (a 500).
    for ftype in (FieldType.INT, FieldType.COMMA_INT_SLICE):
        with pytest.raises(InvalidRequest) as e:
            FieldData({"num_uses": value}, {"num_uses": Field(ftype)})
        assert e.value.message.startswith('error converting input for field "num_uses"')
    d = FieldData({"a": 2**63 - 1, "b": -(2**63), "c": "9223372036854775807", "e": 1e18},
                  {k: Field(FieldType.INT) for k in "abce"})
    assert [d.get(k) for k in "abce"] == [2**63 - 1, -(2**63), 2**63 - 1, 10**18]


@pytest.mark.parametrize("value", [
    1e100, float("inf"), 9223372037, "9223372037", "99999999999999999999h", "9" * 400 + "h", "9" * 5000,
])
def test_durations_are_bounded_like_go(value: object) -> None:
    with pytest.raises(InvalidRequest) as e:
        FieldData({"default_lease_ttl": value}, {"default_lease_ttl": Field(FieldType.DURATION)})
    assert e.value.message.startswith('error converting input for field "default_lease_ttl"')
    assert "too long" in e.value.message
    d = FieldData({"a": 9223372036, "b": "2562047h47m16s"}, {k: Field(FieldType.DURATION) for k in "ab"})
    assert d.get("a") == d.get("b") == 9223372036  # Go's longest time.Duration, in whole seconds


def test_json_nesting_is_bounded() -> None:
    from strongroom.framework.fields import MAX_JSON_DEPTH, check_json_depth

    def nested(n: int) -> object:
        v: object = 1
        for _ in range(n - 1):
            v = [v]
        return {"k": v}

    check_json_depth(nested(MAX_JSON_DEPTH))
    check_json_depth("[[[[")  # a scalar is no nesting
    with pytest.raises(InvalidRequest, match="nested too deeply"):
        check_json_depth(nested(MAX_JSON_DEPTH + 1))
    check_json_depth(nested(100_000), limit=10**6)  # no recursion: the Python stack is not the limit
    deep = '{"k": ' + "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH + "}"
    with pytest.raises(InvalidRequest) as e:
        FieldData({"config": deep}, {"config": Field(FieldType.MAP)})
    assert '"config"' in e.value.message and "nested too deeply" in e.value.message

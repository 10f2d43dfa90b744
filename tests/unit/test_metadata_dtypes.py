"""odML dtypes and their values (services/metadata/dtypes.py): no I/O."""
import datetime as dt

import pytest

from services.metadata.dtypes import (
    DtypeError, from_odml, infer_dtype, normalise_dtype, normalise_value, normalise_values, tuple_size, value_text,
)


@pytest.mark.parametrize("raw,expected", [
    ("string", "string"), ("STRING", "string"), (" int ", "int"), ("str", "string"), ("bool", "boolean"),
    ("float", "float"), ("date", "date"), ("datetime", "datetime"), ("time", "time"), ("url", "url"),
    ("person", "person"), ("text", "text"), ("boolean", "boolean"), ("3-tuple", "3-tuple"), ("12-tuple", "12-tuple"),
])
def test_known_dtypes(raw, expected):
    assert normalise_dtype(raw) == expected


@pytest.mark.parametrize("raw", ["", None, 3, "colour", "0-tuple", "tuple", "-1-tuple", "3-tuples", "integer"])
def test_unknown_dtypes(raw):
    with pytest.raises(DtypeError):
        normalise_dtype(raw)


def test_tuple_size():
    assert tuple_size("3-tuple") == 3
    assert tuple_size("string") is None


@pytest.mark.parametrize("value,dtype,expected", [
    (3, "int", 3), ("-12", "int", -12), (4.0, "int", 4), (2**63 - 1, "int", 2**63 - 1), (-(2**63), "int", -(2**63)),
    (1.5, "float", 1.5), ("1e-3", "float", 0.001), (2, "float", 2.0),
    (True, "boolean", True), ("FALSE", "boolean", False), ("t", "boolean", True), (0, "boolean", False),
    ("red", "string", "red"), (12, "string", "12"), (1.5, "string", "1.5"),
    ("a\nb", "text", "a\nb"),
    ("https://g-node.org", "url", "https://g-node.org"), ("mailto:ada@example.org", "url", "mailto:ada@example.org"),
    ("Ada", "person", "Ada"),
    ("2012-03-14", "date", "2012-03-14"), (dt.date(2012, 3, 14), "date", "2012-03-14"),
    ("2012-03-14 17:27:08", "datetime", "2012-03-14 17:27:08"), ("2012-03-14T17:27:08", "datetime", "2012-03-14 17:27:08"),
    (dt.datetime(2012, 3, 14, 17, 27, 8), "datetime", "2012-03-14 17:27:08"),
    ("17:27:08", "time", "17:27:08"), (dt.time(9, 5), "time", "09:05:00"),
    ("(1;2;3)", "3-tuple", "(1;2;3)"), (" ( 1 ; 2 ; 3 ) ", "3-tuple", "(1;2;3)"), ([1, 2.5, "x"], "3-tuple", "(1;2.5;x)"),
    ("(a)", "1-tuple", "(a)"),
])
def test_values_are_normalised(value, dtype, expected):
    result = normalise_value(value, dtype)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize("value,dtype", [
    (None, "string"), ("x", "int"), (1.5, "int"), (True, "int"), ("1.5", "int"), (2**63, "int"),
    ("-99999999999999999999999", "int"), (1e30, "int"),
    ("x", "float"), (float("nan"), "float"), (float("inf"), "float"), (True, "float"), ([1], "float"),
    ("maybe", "boolean"), (2, "boolean"), (None, "boolean"),
    ({"a": 1}, "string"), (["a"], "string"), ("a\nb", "string"), (True, "string"),
    ("no scheme", "url"), ("", "url"), ("   ", "person"),
    ("14.03.2012", "date"), ("2012-02-30", "date"), ("2012-03-14", "datetime"), ("25:00:00", "time"), (3, "time"),
    ("(1;2)", "3-tuple"), ("1;2;3", "3-tuple"), ([1, 2], "3-tuple"), ("(1;;3)", "3-tuple"), (["a;b", "c", "d"], "3-tuple"),
    (5, "3-tuple"),
])
def test_values_that_do_not_fit_are_refused(value, dtype):
    with pytest.raises(DtypeError):
        normalise_value(value, dtype)


def test_a_list_names_the_bad_index():
    assert normalise_values([1, "2"], "int") == [1, 2]
    with pytest.raises(DtypeError, match="value 1"):
        normalise_values([1, "two"], "int")
    with pytest.raises(DtypeError):
        normalise_values("1", "int")


def test_inference_follows_odml():
    assert [infer_dtype(v) for v in (True, 3, 1.5, "x", "a\nb", None)] == ["boolean", "int", "float", "string", "text", "string"]


def test_search_text_and_odml_values():
    assert value_text(True) == "true" and value_text("Red") == "red" and value_text(7.5) == "7.5"
    assert from_odml(["1", "2", "3"], "3-tuple") == "(1;2;3)"
    assert from_odml(dt.date(2020, 1, 2), "date") == "2020-01-02"
    with pytest.raises(DtypeError):
        from_odml(["1", "2"], "3-tuple")

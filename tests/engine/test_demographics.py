"""Age and sex parsing shared by the WFDB and DICOM readers."""

from __future__ import annotations

import pytest

from engine.io.demographics import age_sex_meta, parse_age, parse_sex


@pytest.mark.parametrize("text, years", [("51", 51), ("042Y", 42), ("77 years", 77), (" 3 y ", 3),
                                         ("131", None), ("051M", None), ("", None), ("NaN", None)])
def test_parse_age(text, years):
    assert parse_age(text) == years


@pytest.mark.parametrize("text, letter", [("F", "F"), ("female", "F"), ("Male", "M"), (" m ", "M"),
                                          ("O", None), ("", None)])
def test_parse_sex(text, letter):
    assert parse_sex(text) == letter


def test_age_sex_meta_keeps_only_values_that_parse():
    assert age_sex_meta("063Y", "F") == {"age": 63, "sex": "F"}
    assert age_sex_meta("200", "Male") == {"sex": "M"}
    assert age_sex_meta(None, "") == {}

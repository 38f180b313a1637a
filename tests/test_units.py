from fractions import Fraction as F

import pytest

from kg.units import MolarFactor, UnitError, convert, normalise_unit, quantity_kind

TG = MolarFactor("mg/dL", "mmol/L", F("88.57"))


@pytest.mark.parametrize("spelling, ucum", [
    ("x10^9/L", "10*9/L"), ("G/L", "10*9/L"), ("K/uL", "10*3/uL"), ("10*3/µL", "10*3/uL"), ("/mm3", "/uL"),
    ("cells/μL", "/uL"), ("mg/dl", "mg/dL"), ("µg/L", "ug/L"), ("IU/L", "U/L"), ("mm/hr", "mm/h"),
    ("°C", "Cel"), ("°F", "[degF]"), ("ug/mL{FEU}", "ug/mL"), ("g/L", "g/L"),
])
def test_lab_spellings_normalise_to_ucum(spelling, ucum):
    assert normalise_unit(spelling) == ucum


@pytest.mark.parametrize("value, source, target, expected", [
    (F(95), "10*3/uL", "10*9/L", F(95)),
    (F(95000), "/uL", "10*9/L", F(95)),
    (F("1.56"), "g/L", "mg/dL", F(156)),
    (F(684000), "ng/L", "ng/mL", F(684)),
    (F(1), "ukat/L", "U/L", F(60)),
    (F("100.4"), "[degF]", "Cel", F(38)),
    (F("103.1"), "[degF]", "Cel", F("39.5")),
    (F("1.5"), "g/L", "mg/dL", F(150)),
])
def test_exact_conversions(value, source, target, expected):
    assert convert(value, source, target) == expected


def test_molar_conversion_uses_the_published_factor_and_never_the_threshold():
    assert convert(F(3), "mmol/L", "mg/dL", molar=TG) == F("265.71")
    # the boundary trap of criteria.md section 9: 265 mg/dL is below 3.0 mmol/L
    assert convert(F(265), "mg/dL", "mmol/L", molar=TG) < 3


def test_arbitrary_units_are_not_enzyme_units():
    assert quantity_kind("U/mL", analyte_kind="arbitrary-concentration") == "arbitrary-concentration"
    assert quantity_kind("U/L") == "catalytic-concentration"
    with pytest.raises(UnitError):
        convert(F(1), "pg/mL", "U/mL", analyte_kind="arbitrary-concentration")


@pytest.mark.parametrize("bad", ["furlong", "", "mg", "ng/mL/s/s/q", "\u2028</script><!--", "(", "mg/(dL", "**", "1e9999"])
def test_unknown_or_unreadable_units_raise(bad):
    with pytest.raises(UnitError):
        quantity_kind(normalise_unit(bad))


def test_mass_to_molar_without_a_factor_raises():
    with pytest.raises(UnitError):
        convert(F(1), "mg/dL", "mmol/L")

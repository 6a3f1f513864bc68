"""SPEC §5 default pools and §11 catalogue overrides."""

import pytest

from domain.catalog import (
    DEFAULT_DIALOUT_COUNTRIES,
    DIALOUT,
    DOMESTIC,
    INTERNATIONAL,
    Catalog,
    CatalogError,
    parse_catalog,
)

SPEC_DIALOUT = {"US", "CA", "PR", "GB", "IE", "FR", "DE", "IT", "ES", "NL", "BE", "AT", "CH", "SE", "NO", "DK",
                "FI", "PT", "PL", "AU", "NZ", "JP"}


# ----- defaults ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "country", "minutes"),
    [
        (DOMESTIC, "US", 3000),
        (DOMESTIC, "CA", 3000),
        (DOMESTIC, "PR", 3000),
        (DOMESTIC, "GB", 1200),
        (DOMESTIC, "FR", 1200),
        (DOMESTIC, "MX", 1200),
        (INTERNATIONAL, "US", 600),
        (INTERNATIONAL, "GB", 600),
        (DIALOUT, "US", 60),
        (DIALOUT, "IN", 60),
    ],
)
def test_default_minutes(kind, country, minutes):
    assert Catalog().minutes_per_user(kind, country) == minutes
    assert parse_catalog({}).minutes_per_user(kind, country) == minutes


def test_default_dialout_countries():
    assert set(Catalog().dialout_countries) == SPEC_DIALOUT
    assert set(DEFAULT_DIALOUT_COUNTRIES) == SPEC_DIALOUT
    assert len(SPEC_DIALOUT) == 22
    assert "IN" not in Catalog().dialout_countries


# ----- overrides --------------------------------------------------------------------------------


def test_given_kind_table_replaces_that_kinds_defaults_whole():
    catalog = parse_catalog({"minutes": {"DOMESTIC": {"GB": 2000}}})
    assert catalog.minutes_per_user(DOMESTIC, "GB") == 2000
    # the default "US": 3000 and "*": 1200 are gone with the old table: no "*" -> 0
    assert catalog.minutes_per_user(DOMESTIC, "US") == 0
    assert catalog.minutes_per_user(DOMESTIC, "FR") == 0
    # kinds not given keep their defaults
    assert catalog.minutes_per_user(INTERNATIONAL, "GB") == 600
    assert catalog.minutes_per_user(DIALOUT, "GB") == 60
    assert set(catalog.dialout_countries) == SPEC_DIALOUT


def test_star_is_the_fallback_and_a_named_country_wins():
    catalog = parse_catalog({"minutes": {"DOMESTIC": {"US": 3000, "*": 1200},
                                         "INTERNATIONAL": {"*": 600}, "DIALOUT": {"*": 60}}})
    assert catalog.minutes_per_user(DOMESTIC, "US") == 3000
    assert catalog.minutes_per_user(DOMESTIC, "CA") == 1200  # CA not named in this table
    assert catalog.minutes_per_user(INTERNATIONAL, "JP") == 600


def test_zero_minutes_allowed():
    catalog = parse_catalog({"minutes": {"DIALOUT": {"*": 0, "US": 0}}})
    assert catalog.minutes_per_user(DIALOUT, "US") == 0
    assert catalog.minutes_per_user(DIALOUT, "GB") == 0


def test_empty_table_gives_zero_everywhere():
    catalog = parse_catalog({"minutes": {"INTERNATIONAL": {}}})
    assert catalog.minutes_per_user(INTERNATIONAL, "US") == 0
    assert catalog.minutes_per_user(DOMESTIC, "US") == 3000


def test_dialout_countries_replaced():
    catalog = parse_catalog({"dialout_countries": ["US", "IN"]})
    assert set(catalog.dialout_countries) == {"US", "IN"}
    assert catalog.minutes_per_user(DIALOUT, "US") == 60
    assert set(parse_catalog({"dialout_countries": []}).dialout_countries) == set()


def test_overrides_do_not_change_the_defaults():
    parse_catalog({"minutes": {"DOMESTIC": {"GB": 1}}, "dialout_countries": ["IN"]})
    assert Catalog().minutes_per_user(DOMESTIC, "US") == 3000
    assert Catalog().minutes_per_user(DOMESTIC, "GB") == 1200
    assert set(Catalog().dialout_countries) == SPEC_DIALOUT


@pytest.mark.parametrize(
    "document",
    [
        [],
        "catalog",
        None,
        {"minute": {}},  # unknown top-level key
        {"minutes": {}, "extra": 1},
        {"minutes": []},
        {"minutes": {"SMS": {"*": 10}}},  # unknown pool kind
        {"minutes": {"domestic": {"*": 10}}},
        {"minutes": {"DOMESTIC": [["US", 3000]]}},
        {"minutes": {"DOMESTIC": {"us": 3000}}},  # lower-case country
        {"minutes": {"DOMESTIC": {"USA": 3000}}},
        {"minutes": {"DOMESTIC": {"XX": 3000}}},
        {"minutes": {"DOMESTIC": {"**": 3000}}},
        {"minutes": {"DOMESTIC": {"": 3000}}},
        {"minutes": {"DOMESTIC": {"US": -1}}},  # negative
        {"minutes": {"DOMESTIC": {"US": 1.5}}},  # not whole
        {"minutes": {"DOMESTIC": {"US": 3000.0}}},  # a float, even if integral
        {"minutes": {"DOMESTIC": {"US": "3000"}}},
        {"minutes": {"DOMESTIC": {"US": True}}},  # bool is not a number of minutes
        {"minutes": {"DOMESTIC": {"US": None}}},
        {"minutes": {"DIALOUT": {"*": {"US": 1}}}},
        {"dialout_countries": "US"},
        {"dialout_countries": ["us"]},
        {"dialout_countries": ["US", "*"]},
        {"dialout_countries": ["US", 1]},
        {"dialout_countries": None},
    ],
)
def test_bad_catalogue_does_not_load(document):
    with pytest.raises(CatalogError):
        parse_catalog(document)


def test_catalogue_error_names_the_entry():
    with pytest.raises(CatalogError, match=r"DOMESTIC\.US"):
        parse_catalog({"minutes": {"DOMESTIC": {"US": -5}}})
    with pytest.raises(CatalogError, match="extra"):
        parse_catalog({"extra": {}})

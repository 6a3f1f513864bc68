"""The licence catalogue (SPEC §5, §11): minutes each licence contributes to the pools."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from domain.codes import is_country_code

DOMESTIC, INTERNATIONAL, DIALOUT = "DOMESTIC", "INTERNATIONAL", "DIALOUT"
POOL_KINDS = (DOMESTIC, INTERNATIONAL, DIALOUT)
ANY_COUNTRY = "*"

DEFAULT_MINUTES: Mapping[str, Mapping[str, int]] = MappingProxyType({
    DOMESTIC: MappingProxyType({"US": 3000, "CA": 3000, "PR": 3000, ANY_COUNTRY: 1200}),
    INTERNATIONAL: MappingProxyType({ANY_COUNTRY: 600}),
    DIALOUT: MappingProxyType({ANY_COUNTRY: 60}),
})
DEFAULT_DIALOUT_COUNTRIES = frozenset(
    "US CA PR GB IE FR DE IT ES NL BE AT CH SE NO DK FI PT PL AU NZ JP".split()
)


class CatalogError(ValueError):
    """A catalogue that does not load; the message names the offending entry."""


@dataclass(frozen=True)
class Catalog:
    minutes: Mapping[str, Mapping[str, int]] = field(default_factory=lambda: DEFAULT_MINUTES)
    dialout_countries: frozenset[str] = DEFAULT_DIALOUT_COUNTRIES

    def minutes_per_user(self, pool_kind: str, country: str) -> int:
        table = self.minutes[pool_kind]
        return table.get(country, table.get(ANY_COUNTRY, 0))


def parse_catalog(document: Any) -> Catalog:
    """Overrides of §5's defaults: each pool kind given replaces that kind's table whole."""
    if not isinstance(document, dict):
        raise CatalogError("the catalogue must be a JSON object")
    unknown = set(document) - {"minutes", "dialout_countries"}
    if unknown:
        raise CatalogError(f"unknown key(s) {sorted(unknown)}; allowed: minutes, dialout_countries")
    minutes = dict(DEFAULT_MINUTES)
    for pool_kind, table in _parse_minutes(document.get("minutes", {})).items():
        minutes[pool_kind] = table
    dialout = DEFAULT_DIALOUT_COUNTRIES
    if "dialout_countries" in document:
        dialout = _parse_dialout_countries(document["dialout_countries"])
    return Catalog(minutes=MappingProxyType(minutes), dialout_countries=dialout)


def _parse_minutes(minutes: Any) -> dict[str, Mapping[str, int]]:
    if not isinstance(minutes, dict):
        raise CatalogError("minutes must be an object of pool kinds")
    tables = {}
    for pool_kind, table in minutes.items():
        if pool_kind not in POOL_KINDS:
            raise CatalogError(f"minutes: unknown pool kind {pool_kind!r}; allowed: {', '.join(POOL_KINDS)}")
        if not isinstance(table, dict):
            raise CatalogError(f"minutes.{pool_kind} must be an object of country codes to minutes")
        for country, value in table.items():
            if country != ANY_COUNTRY and not is_country_code(country):
                raise CatalogError(f"minutes.{pool_kind}: {country!r} is not an ISO 3166 alpha-2 code or '*'")
            if type(value) is not int or value < 0:
                raise CatalogError(f"minutes.{pool_kind}.{country} must be whole minutes >= 0, got {value!r}")
        tables[pool_kind] = MappingProxyType(dict(table))
    return tables


def _parse_dialout_countries(countries: Any) -> frozenset[str]:
    if not isinstance(countries, list):
        raise CatalogError("dialout_countries must be a list of country codes")
    for country in countries:
        if not is_country_code(country):
            raise CatalogError(f"dialout_countries: {country!r} is not an ISO 3166 alpha-2 code")
    return frozenset(countries)

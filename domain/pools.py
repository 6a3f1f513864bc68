"""Pools of included minutes (SPEC §5): their keys and the capacity rule, stated once.

A pool is one kind of included minutes (`DOMESTIC`, `INTERNATIONAL`, `DIALOUT`) for the users of
one usage location, per organization and calendar month. Its key is written `DOMESTIC/US` in
events, reports and the SPEC's output; `PoolKey` is that text (so it is stored, compared and
shown as such) with its parts as attributes, so no caller splits strings.
"""

from domain.catalog import POOL_KINDS, Catalog

_SEPARATOR = "/"


class PoolKey(str):
    kind: str
    country: str

    def __new__(cls, kind: str, country: str) -> "PoolKey":
        assert kind in POOL_KINDS and _SEPARATOR not in country, (kind, country)
        key = super().__new__(cls, f"{kind}{_SEPARATOR}{country}")
        key.kind, key.country = kind, country
        return key

    @classmethod
    def parse(cls, text: str) -> "PoolKey":
        """A key as events and views store it (`DOMESTIC/US`)."""
        kind, _, country = text.partition(_SEPARATOR)
        return cls(kind, country)

    def __reduce__(self):
        return PoolKey, (self.kind, self.country)


def pool_capacity(catalog: Catalog, key: PoolKey, contributors: int) -> int:
    """Minutes the pool holds this month: minutes per user × users contributing (SPEC §5)."""
    return catalog.minutes_per_user(key.kind, key.country) * contributors


def remaining_minutes(catalog: Catalog, key: PoolKey, contributors: int, used: int) -> int:
    """Remaining = max(0, capacity − used) (SPEC §5): a pool never lends minutes it lacks."""
    return max(0, pool_capacity(catalog, key, contributors) - used)

"""Which usage ids are rated (SPEC §10's duplicate rule), without a query per CDR.

The store answers (its usage claims table, `application.usage_claims`); this cache remembers
what it answered for the batch in hand and what the batch itself claimed, and hands the batch's
claims to the save that stores its events. It holds until the next flush or discard, so a
long-running engine keeps no growing set: a claim another writer stores meanwhile makes our save
conflict, never doubles a charge. A store known to be new (simulate) has nothing to ask until our
first save stored claims in it; from then on it is asked like any other, so `simulate` keeps no set
that grows with its input either.
"""

from collections.abc import Iterable

from application.usage_claims import Claims


class RatedUsageIds:
    def __init__(self, recorder, *, store_is_new: bool) -> None:
        self._recorder, self.store_is_new = recorder, store_is_new
        self._claimed: set[str] = set()
        self._unclaimed: set[str] = set()  # usage ids the store had no claim for (this batch)
        self._unsaved: dict[str, str] = {}  # usage id → org, claimed since the last save

    def claim(self, usage_id: str, org: str) -> None:
        self._claimed.add(usage_id)
        self._unsaved[usage_id] = org

    @property
    def unsaved(self) -> Claims:
        """The claims the next save must store with the events of their calls."""
        return list(self._unsaved.items())

    def is_rated(self, usage_id: str) -> bool:
        if usage_id in self._claimed:
            return True
        if self.store_is_new or usage_id in self._unclaimed:  # nothing stored yet, or asked already
            return False
        return bool(self._recorder.claimed_usage_ids([usage_id]))

    def look_up(self, usage_ids: Iterable[str]) -> None:
        """Learn in one round trip which of a batch's usage ids the store has rated."""
        if self.store_is_new:
            return
        asked = list({usage_id for usage_id in usage_ids
                      if usage_id not in self._claimed and usage_id not in self._unclaimed})
        found = self._recorder.claimed_usage_ids(asked) if asked else set()
        for usage_id in asked:
            (self._claimed if usage_id in found else self._unclaimed).add(usage_id)

    def saved(self) -> None:
        """The claims are stored: the store answers from now on."""
        self._unclaimed.clear()
        self._claimed.clear()
        if self._unsaved:
            self.store_is_new = False
        self._unsaved.clear()

    def forget(self) -> None:
        self._claimed.clear()
        self._unclaimed.clear()
        self._unsaved.clear()
        self.store_is_new = False

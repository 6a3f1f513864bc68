"""Which usage ids are rated (SPEC §10's duplicate rule), without a query per CDR.

The store answers (a `UsageClaim` aggregate per rated usage id); this cache remembers what it
answered for the batch in hand and what the batch itself claimed. It holds until the next flush
or discard, so a long-running engine keeps no growing set: a claim another writer stores
meanwhile makes our save conflict, never doubles a charge. A store known to be new (simulate)
has nothing to ask: every id claimed is kept instead.
"""

from collections.abc import Iterable

from application.existing_aggregates import existing_aggregates
from domain.usage_claim import UsageClaim


class RatedUsageIds:
    def __init__(self, recorder, *, store_is_new: bool) -> None:
        self._recorder, self.store_is_new = recorder, store_is_new
        self._claimed: set[str] = set()
        self._unclaimed: set[str] = set()  # usage ids the store had no claim for (this batch)

    def claim(self, usage_id: str) -> None:
        self._claimed.add(usage_id)

    def is_rated(self, usage_id: str) -> bool:
        if usage_id in self._claimed:
            return True
        if self.store_is_new or usage_id in self._unclaimed:
            return False
        return bool(self._recorder.select_events(UsageClaim.create_id(usage_id), limit=1))

    def look_up(self, usage_ids: Iterable[str]) -> None:
        """Learn in one round trip which of a batch's usage ids the store has rated."""
        if self.store_is_new:
            return
        ids = {UsageClaim.create_id(usage_id): usage_id for usage_id in usage_ids
               if usage_id not in self._claimed and usage_id not in self._unclaimed}
        found = existing_aggregates(self._recorder, list(ids))
        for claim_id, usage_id in ids.items():
            (self._claimed if claim_id in found else self._unclaimed).add(usage_id)

    def saved(self) -> None:
        """The claims are stored: the store answers from now on (unless it is known to be new)."""
        self._unclaimed.clear()
        if not self.store_is_new:
            self._claimed.clear()

    def forget(self) -> None:
        self._claimed.clear()
        self._unclaimed.clear()
        self.store_is_new = False

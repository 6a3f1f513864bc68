"""The garbage collector of the long-running processes: `serve` (the HTTP server and its desk
process), `run` (the CDR consumer, the relay, the alerts) and `simulate`."""

import gc

# Young collections every 50,000 allocations instead of 700, a full one after 100 middle ones instead
# of 10: full collections rescan every open reservation and cached account, and grew to 75 ms
# pauses that were the p99 of a decision (82 of them in a 60 s benchmark; none with these figures,
# bench/RESULTS.md). The CDR consumer allocates a few hundred objects per CDR, nearly all freed by
# reference counting: young collections every 700 allocations found little and cost it ~8 % of
# its time. Only cycles wait longer.
COLLECTOR_THRESHOLDS = (50_000, 20, 100)


def tune_collector() -> None:
    """What start-up loaded (phonenumbers' metadata, the catalogue, the accounts read so far) is
    frozen out of collections, and collections come less often (see COLLECTOR_THRESHOLDS)."""
    gc.freeze()
    gc.set_threshold(*COLLECTOR_THRESHOLDS)

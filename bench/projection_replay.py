"""How fast projections are rebuilt from the whole history, and in how much memory.

Builds a file-backed SQLite store from a generated month (`--cdrs`, default 500,000: about a
million stored events), then, in a fresh child process per projection (so each peak RSS is its
own), replays it from scratch with `projections.replay`: the live copy is caught up first, then
rebuilt, then both are checksummed. Prints events/s and peak memory for each.

    python bench/projection_replay.py [--cdrs 500000] [--store /tmp/replay-bench.sqlite]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from application.billing_application import BillingApplication  # noqa: E402
from application.reference_data import load_catalog, load_rate_card  # noqa: E402
from application.settings import sqlite_store  # noqa: E402
from commcredits.project_cli import PROJECTIONS  # noqa: E402
from commcredits.scenario import encoded, generate  # noqa: E402
from commcredits.simulate import Simulation  # noqa: E402
from projections.replay import replay  # noqa: E402
from projections.sources import StoreLog  # noqa: E402
from projections.view_database import ViewDatabase  # noqa: E402


def build(path: Path, cdrs: int) -> None:
    app = BillingApplication(env=sqlite_store(path).env)
    started = time.perf_counter()
    Simulation(app, load_rate_card(None), load_catalog(None)).run(encoded(line) for line in generate(5, 500, cdrs, 11))
    print(f"store built: {app.recorder.max_notification_id():,} events in {time.perf_counter() - started:.0f} s",
          flush=True)
    app.close()


def replay_one(path: Path, name: str) -> None:
    store = sqlite_store(path)
    app, database = BillingApplication(env=store.env), ViewDatabase.for_store(store)
    started = time.perf_counter()
    result = replay(PROJECTIONS[name], name, database, StoreLog(app))
    total = time.perf_counter() - started
    print(json.dumps({"projection": name, "events": result.end, "applied": result.applied,
                      "rebuild_seconds": round(result.seconds, 1), "events_per_second": round(result.events_per_second),
                      "total_seconds_with_live_and_checksums": round(total, 1), "equal": result.equal,
                      "peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
    database.close()
    app.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cdrs", type=int, default=500_000)
    parser.add_argument("--store", type=Path, default=Path("/tmp/commcredits-replay-bench.sqlite"))
    parser.add_argument("--only", help=argparse.SUPPRESS)  # the child's job: one projection
    options = parser.parse_args()
    if options.only:
        replay_one(options.store, options.only)
        return
    if not options.store.exists():
        build(options.store, options.cdrs)
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; store {options.store}")
    for name in PROJECTIONS:
        subprocess.run([sys.executable, __file__, "--store", str(options.store), "--only", name], check=True)


if __name__ == "__main__":
    main()

"""How fast `commcredits simulate` rates CDR lines, per event store, and how much memory it needs.

Generates a synthetic month (examples/generate_scenario.py) at a full and a quarter size, then
runs `commcredits simulate` on each, once per store and repetition, in a child process; the
repetitions interleave the stores and the sizes. Prints the medians: lines/second over the whole
run (start-up and the JSON report included) and peak memory, the VmHWM the child reads from its
own /proc entry as it ends (getrusage's ru_maxrss of a child can hold its parent's peak).

    python bench/simulate_throughput.py [--cdrs 200000] [--repeat 3] [--stores sqlite-memory,sqlite-file]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHILD = ("import atexit, sys\n"
         "def peak():\n"
         "    with open('/proc/self/status') as status:\n"
         "        print(next(line for line in status if line.startswith('VmHWM:')).split()[1], file=sys.stderr)\n"
         "atexit.register(peak)\n"
         "from commcredits.cli import main; sys.argv = sys.argv[1:]; main()\n")


def generate(path: Path, cdrs: int) -> int:
    with path.open("wb") as out:
        subprocess.run([sys.executable, str(ROOT / "examples" / "generate_scenario.py"), "--organizations", "5",
                        "--users", "500", "--cdrs", str(cdrs), "--seed", "11"], stdout=out, check=True)
    with path.open("rb") as lines:
        return sum(1 for _ in lines)


def run(path: Path, store: str) -> tuple[float, float]:
    """Seconds and peak memory (VmHWM, MiB) of one `simulate` child (the report goes to /dev/null)."""
    command = [sys.executable, "-c", CHILD, "commcredits", "simulate", str(path), "--store", store]
    started = time.perf_counter()
    result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True, cwd=ROOT)
    elapsed = time.perf_counter() - started
    return elapsed, int(result.stderr.decode().strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cdrs", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--stores", default="sqlite-memory,sqlite-file")
    options = parser.parse_args()
    stores = options.stores.split(",")
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; {options.repeat} repetitions")
    with tempfile.TemporaryDirectory() as workdir:
        sizes = {"full": Path(workdir, "full.jsonl"), "quarter": Path(workdir, "quarter.jsonl")}
        lines = {"full": generate(sizes["full"], options.cdrs), "quarter": generate(sizes["quarter"], options.cdrs // 4)}
        runs: dict[tuple[str, str], list[tuple[float, float]]] = {(store, size): [] for store in stores for size in sizes}
        for repetition in range(options.repeat):
            for store in stores:
                for size, path in sizes.items():
                    seconds, peak = run(path, store)
                    runs[store, size].append((seconds, peak))
                    print(f"  repetition {repetition + 1}, {store}, {size}: {lines[size] / seconds:,.0f} lines/s, "
                          f"VmHWM {peak:.0f} MiB", flush=True)
    print(f"\nmedians of {options.repeat}")
    print(f"{'store':<15}{'lines':>10}{'lines/s':>10}{'VmHWM MiB':>11}{'at 1/4 input':>14}{'ratio':>7}")
    for store in stores:
        full, quarter = runs[store, "full"], runs[store, "quarter"]
        peak, quarter_peak = statistics.median(p for _, p in full), statistics.median(p for _, p in quarter)
        rate = statistics.median(lines["full"] / seconds for seconds, _ in full)
        print(f"{store:<15}{lines['full']:>10,}{rate:>10,.0f}{peak:>11.0f}{quarter_peak:>14.0f}"
              f"{peak / quarter_peak:>7.2f}")


if __name__ == "__main__":
    main()

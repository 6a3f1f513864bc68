"""How fast `commcredits simulate` rates CDR lines, per event store, and how much memory it needs.

Generates a synthetic scenario (examples/generate_scenario.py), runs `commcredits simulate` on it
once per store in a child process, and prints lines/second and peak memory (max RSS of the child).
Memory is reported at two input sizes so that growth with input length is visible.

    python bench/simulate_throughput.py [--cdrs 200000] [--stores memory,sqlite-memory,sqlite-file]
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def generate(path: Path, cdrs: int) -> int:
    with path.open("wb") as out:
        subprocess.run([sys.executable, str(ROOT / "examples" / "generate_scenario.py"), "--organizations", "5",
                        "--users", "500", "--cdrs", str(cdrs), "--seed", "11"], stdout=out, check=True)
    with path.open("rb") as lines:
        return sum(1 for _ in lines)


def run(path: Path, store: str, summary: bool) -> tuple[float, int]:
    """Seconds and peak RSS in MiB of one `simulate` child (the report goes to /dev/null)."""
    script = ("import resource, sys; from commcredits.cli import main; sys.argv=sys.argv[1:];\n"
              "try:\n    main()\nfinally:\n"
              "    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)")
    command = [sys.executable, "-c", script, "commcredits", "simulate", str(path), "--store", store]
    if summary:
        command.append("--summary")
    started = time.perf_counter()
    result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)
    elapsed = time.perf_counter() - started
    peak_kib = int(result.stderr.decode().strip().splitlines()[-1])
    return elapsed, peak_kib // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cdrs", type=int, default=200_000)
    parser.add_argument("--stores", default="memory,sqlite-memory,sqlite-file")
    options = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as workdir:
        small, large = Path(workdir, "small.jsonl"), Path(workdir, "large.jsonl")
        small_lines = generate(small, options.cdrs // 10)
        large_lines = generate(large, options.cdrs)
        print(f"{'store':<15}{'lines':>10}{'seconds':>10}{'lines/s':>10}{'peak MiB':>10}"
              f"{'peak MiB at 1/10 input':>24}")
        for store in options.stores.split(","):
            seconds, peak = run(large, store, summary=False)
            _, small_peak = run(small, store, summary=False)
            print(f"{store:<15}{large_lines:>10}{seconds:>10.1f}{large_lines / seconds:>10,.0f}{peak:>10}"
                  f"{small_peak:>24}", flush=True)


if __name__ == "__main__":
    main()

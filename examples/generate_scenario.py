"""Generate a realistic synthetic month as SPEC §11 JSON Lines (for `make run` and benchmarks).

    python examples/generate_scenario.py --organizations 3 --users 120 --cdrs 20000 > month.jsonl

The generator lives in the package (`commcredits.scenario`) because `commcredits demo` uses it.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from commcredits.scenario import generate, main  # noqa: E402

__all__ = ["generate", "main"]

if __name__ == "__main__":
    main()

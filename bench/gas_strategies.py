"""`python -m bench.gas_strategies`: the claimed 23.1% gas savings, measured on the bench data.

Runs `manage.py gas_report` (in a fresh process, as `make bench` runs everything) on bench/data,
hourly ETH and BTC 2017-08 .. 2022-10: `ma_crossover` 10/30 backtested on Ethereum, its trades
replayed under legacy, slow, standard, fast and wait_for_cheaper over one modelled EIP-1559 fee
path and one seeded price walk per swap. Prints the side-by-side table and saves
bench/results/gas-strategies-<stamp>.json and gas-strategies-latest.json, whose "targets" are
each strategy's savings against legacy as context figures. A measurement, not a target: it does
not fail.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import report
from bench.report import Target

BENCH = Path(__file__).resolve().parent
DATA = BENCH / "data"
OPTIONS = [
    "--strategy=ma_crossover",
    "--param=fast_period=10",
    "--param=slow_period=30",
    "--chain=ethereum",
    f"--data={DATA}",
    "--bar=1h",
    "--seed=0",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    report.add_results_option(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "gas.json"
        started = time.perf_counter()
        run = subprocess.run(
            [sys.executable, "manage.py", "gas_report", *OPTIONS, f"--output={output}"],
            capture_output=True,
            text=True,
            check=True,
            cwd=BENCH.parent,
        )
        seconds = time.perf_counter() - started
        gas = json.loads(output.read_text())
    table = [line for line in run.stdout.splitlines() if not line.startswith("JSON result:")]
    print("\n".join(table))
    sends = gas["swaps"] * len(gas["strategies"])
    print(f"\n{sends:,} transactions replayed in {seconds:.1f} s")

    savings = [
        Target(
            f"{f['strategy']} savings vs legacy",
            float(f["savings_vs_legacy_percent"]),
            report.CONTEXT,
            unit="%",
        )
        for f in gas["strategies"]
        if f.get("savings_vs_legacy_percent") is not None
    ]
    document = {
        "created_at": report.stamp(),
        "machine": report.machine(),
        "command": ["manage.py", "gas_report", *OPTIONS],
        "seconds": seconds,
        "report": gas,
        "targets": [t.as_json() for t in savings],
    }
    print(f"Saved {report.save(document, 'gas-strategies', args.results)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

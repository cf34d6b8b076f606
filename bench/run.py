"""`python -m bench.run`: the engine, bot and backtest scenarios, repeated, as one table of medians.

Each run is a fresh process (bench/scenarios.py). Speeds are medians over the repeats; memory is
the worst peak. Saved as bench/results/run-<stamp>.json and run-latest.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from typing import Any, NamedTuple

from bench import report
from bench.report import Target
from paper_trading.management.tables import TARGET_HEADER, text_table


class Goal(NamedTuple):
    """A scenario's figure and its bound (`report.Target` kinds: "min" or "max")."""

    scenario: str
    metric: str
    kind: str
    bound: float
    unit: str


GOALS = [
    Goal("engine_replay_1h", "ticks_per_second", "min", 500, "ticks/s"),
    Goal("engine_replay_1h", "peak_rss_mb", "max", 200, "MB"),
    Goal("engine_replay_15m", "ticks_per_second", "min", 500, "ticks/s"),
    Goal("engine_replay_15m", "peak_rss_mb", "max", 300, "MB"),
    Goal("bot_replay_1h", "ticks_per_second", "min", 50, "ticks/s"),
    Goal("bot_replay_1h", "peak_rss_mb", "max", 500, "MB"),
    Goal("bot_replay_1h", "trades", "min", 10, "trades"),
    Goal("engine_replay_1h", "trades", "min", 10, "trades"),
    # ma_crossover over bench/data (ETH + BTC hourly, 5 years); the side-by-side comparison with
    # backtesting.py and freqtrade is `python -m bench.backtest_speed`.
    Goal("backtest_ma_crossover_1h", "bars_per_second", "min", 2500, "bars/s"),
]


def _run(scenario: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.scenarios", scenario],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    report.add_results_option(parser)
    args = parser.parse_args()
    scenarios = sorted({g.scenario for g in GOALS})
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in scenarios}
    for scenario in scenarios:
        for _ in range(args.repeats):
            runs[scenario].append(_run(scenario))
    summary = {
        s: {
            "ticks": runs[s][0]["ticks"],
            "trades": runs[s][0]["trades"],
            "ticks_per_second": statistics.median(r["ticks_per_second"] for r in runs[s]),
            "seconds": statistics.median(r["seconds"] for r in runs[s]),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs[s]),
        }
        | (
            {"bars_per_second": statistics.median(r["bars_per_second"] for r in runs[s])}
            if "bars_per_second" in runs[s][0]
            else {}
        )
        for s in scenarios
    }
    targets = [
        Target(f"{g.scenario}.{g.metric}", summary[g.scenario][g.metric], g.kind, g.bound, g.unit)
        for g in GOALS
    ]
    print("\n".join(text_table(TARGET_HEADER, [t.row() for t in targets])))
    document = {
        "created_at": report.stamp(),
        "machine": report.machine(),
        "repeats": args.repeats,
        "summary": summary,
        "runs": runs,
        "targets": [t.as_json() for t in targets],
    }
    print(f"\nSaved {report.save(document, 'run', args.results)}")
    return 1 if any(not t.ok for t in targets) else 0


if __name__ == "__main__":
    raise SystemExit(main())

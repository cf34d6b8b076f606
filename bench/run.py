"""`make bench`: every benchmark, repeated, as one table of medians, saved as JSON.

Each run is a fresh process. Speeds are medians over the repeats; memory is the worst peak.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from paper_trading.management.tables import TARGET_HEADER, text_table

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Target:
    scenario: str
    metric: str
    #: "min" means the value must be at least the bound, "max" at most.
    kind: str
    bound: float
    unit: str


TARGETS = [
    Target("engine_replay_1h", "ticks_per_second", "min", 500, "ticks/s"),
    Target("engine_replay_1h", "peak_rss_mb", "max", 200, "MB"),
    Target("engine_replay_15m", "ticks_per_second", "min", 500, "ticks/s"),
    Target("engine_replay_15m", "peak_rss_mb", "max", 300, "MB"),
    Target("bot_replay_1h", "ticks_per_second", "min", 50, "ticks/s"),
    Target("bot_replay_1h", "peak_rss_mb", "max", 500, "MB"),
    Target("bot_replay_1h", "trades", "min", 10, "trades"),
    Target("engine_replay_1h", "trades", "min", 10, "trades"),
    # ma_crossover over bench/data (ETH + BTC hourly, 5 years); the side-by-side comparison with
    # backtesting.py and freqtrade is `python -m bench.backtest_speed`.
    Target("backtest_ma_crossover_1h", "bars_per_second", "min", 2500, "bars/s"),
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
    args = parser.parse_args()
    scenarios = sorted({t.scenario for t in TARGETS})
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
    rows = []
    failed = 0
    for t in TARGETS:
        value = float(summary[t.scenario][t.metric])
        ok = value >= t.bound if t.kind == "min" else value <= t.bound
        failed += not ok
        bound = f"{'>=' if t.kind == 'min' else '<='} {t.bound:g} {t.unit}"
        rows.append((f"{t.scenario}.{t.metric}", f"{value:,.1f}", bound, "pass" if ok else "FAIL"))
    print("\n".join(text_table(TARGET_HEADER, rows)))
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    document = {
        "created_at": stamp,
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "repeats": args.repeats,
        "summary": summary,
        "runs": runs,
        "targets": [asdict(t) | {"value": summary[t.scenario][t.metric]} for t in TARGETS],
    }
    for path in (RESULTS / f"bench-{stamp}.json", RESULTS / "latest.json"):
        path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nSaved {RESULTS / 'latest.json'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

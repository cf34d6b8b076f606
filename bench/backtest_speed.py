"""`python -m bench.backtest_speed`: backtest throughput in bars per second, next to other tools.

Bars = candles x tokens processed. dexpaper runs the built-in `ma_crossover` (SMA 10/30)
through `run_backtest` over bench/data (hourly ETH and BTC, 2017-08 .. 2022-10, copied from the
shared history set) on Arbitrum's WETH and WBTC pools: the whole engine, with DEX fills (price
impact, pool fees, gas, reverts), a Decimal ledger and a reasoned decision per token per bar.

When the comparison environment exists (`make bench-compare-env` builds bench/.venv-compare),
the same crossover on the same candles runs in backtesting.py and in freqtrade's backtesting,
in that environment as a subprocess (bench/compare_tools.py). Every tool is timed on the
backtest alone: candles already in memory, indicators included.

Medians of `--repeats` runs, wall time and (on a shared machine, steadier) CPU time; bars/s
and the targets use wall time. Prints a table, saves bench/results/backtest-speed-<stamp>.json and
backtest-speed-latest.json, and exits 1 if a target fails.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import report
from paper_trading.management.tables import text_table

BENCH = Path(__file__).resolve().parent
DATA = BENCH / "data"
COMPARE_PYTHON = BENCH / ".venv-compare" / "bin" / "python"
CHAIN = "arbitrum"
FAST, SLOW = 10, 30
#: The pools' fee tier (0.05 %), charged per fill by the other tools too.
FEE = 0.0005
#: Six months of hourly bars for six tokens in ten seconds: "months of history, in seconds".
TARGET_BARS_PER_SECOND = 2500.0
NOT_INSTALLED = "not installed: run make bench-compare-env"
TARGET_COLUMNS = ("target", "value", "bound", "result")


def dexpaper_run() -> dict[str, Any]:
    """One timed backtest of ma_crossover over bench/data (loading the candles is not timed)."""
    from paper_trading.engine.backtest import BacktestConfig, prepare

    prepared = prepare(
        BacktestConfig(
            strategy="ma_crossover",
            params={"fast_period": str(FAST), "slow_period": str(SLOW)},
            chain=CHAIN,
            data_dir=DATA,
        )
    )
    started, cpu_started = time.perf_counter(), time.process_time()
    result = prepared.run()
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    return {
        "ticks": result.ticks,
        "bars": result.ticks * len(prepared.universe),
        "trades": len(result.trades),
        # Buys followed by a sale: what backtesting.py and freqtrade count as trades.
        "round_trips": result.performance.closed_trades,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
    }


def _dexpaper(repeats: int) -> dict[str, Any]:
    runs = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-m", "bench.scenarios", "backtest_ma_crossover_1h"],
            capture_output=True,
            text=True,
            check=True,
            cwd=BENCH.parent,
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {"bars": runs[0]["bars"], "trades": runs[0]["round_trips"], "runs": runs} | _speed(
        runs[0]["bars"], [r["seconds"] for r in runs], [r["cpu_seconds"] for r in runs]
    )


def _others(repeats: int, symbols: list[str]) -> dict[str, Any]:
    if not COMPARE_PYTHON.exists():
        return {tool: {"error": NOT_INSTALLED} for tool in ("backtesting.py", "freqtrade")}
    out = subprocess.run(
        [
            str(COMPARE_PYTHON),
            str(BENCH / "compare_tools.py"),
            f"--data={DATA}",
            f"--symbols={','.join(symbols)}",
            f"--fast={FAST}",
            f"--slow={SLOW}",
            f"--fee={FEE}",
            f"--repeats={repeats}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    found: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    for figures in found.values():
        if "error" not in figures:
            figures |= _speed(figures["bars"], figures["seconds"], figures.get("cpu_seconds"))
    return found


def _speed(bars: int, seconds: list[float], cpu_seconds: list[float] | None) -> dict[str, float]:
    """Medians of wall time (what the targets use) and of CPU time (steadier on a shared box)."""
    median = statistics.median(seconds)
    figures = {"median_seconds": median, "bars_per_second": bars / median}
    if cpu_seconds:
        figures["median_cpu_seconds"] = statistics.median(cpu_seconds)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    report.add_results_option(parser)
    args = parser.parse_args()
    symbols = sorted(p.name.split("_")[0] for p in DATA.glob("*_USDT-1h.csv.gz"))
    tools = {"dexpaper": _dexpaper(args.repeats), **_others(args.repeats, symbols)}

    print(f"SMA {FAST}/{SLOW} crossover, {' + '.join(symbols)} hourly candles in {DATA}")
    rows = [("tool", "bars", "round trips", "seconds", "CPU s", "bars/s")]
    for tool, f in tools.items():
        if "error" in f:
            rows.append((tool, "", "", "", "", f["error"]))
        else:
            cpu = f.get("median_cpu_seconds")
            rows.append(
                (
                    tool,
                    f"{f['bars']:,}",
                    f"{f['trades']:,}",
                    f"{f['median_seconds']:.2f}",
                    "" if cpu is None else f"{cpu:.2f}",
                    f"{f['bars_per_second']:,.0f}",
                )
            )
    ours = tools["dexpaper"]["bars_per_second"]
    targets = [
        (
            "dexpaper bars/s",
            f"{ours:,.0f}",
            f">= {TARGET_BARS_PER_SECOND:,.0f}",
            "pass" if ours >= TARGET_BARS_PER_SECOND else "FAIL",
        )
    ]
    for tool, f in tools.items():
        if tool == "dexpaper":
            continue
        if "error" in f:
            targets.append((f"faster than {tool}", "", "", "skipped: " + f["error"]))
        else:
            ratio = ours / f["bars_per_second"]
            targets.append(
                (f"faster than {tool}", f"{ratio:.2f}x", ">= 1x", "pass" if ratio >= 1 else "FAIL")
            )
    print("\n".join(text_table(rows[0], rows[1:])))
    print()
    print("\n".join(text_table(TARGET_COLUMNS, targets)))

    document = {
        "created_at": report.stamp(),
        "machine": report.machine(),
        "repeats": args.repeats,
        "strategy": {"name": "sma crossover", "fast": FAST, "slow": SLOW, "fee": FEE},
        "data": {"folder": str(DATA), "symbols": symbols, "interval": "1h"},
        "tools": tools,
        "targets": [dict(zip(TARGET_COLUMNS, t, strict=True)) for t in targets],
    }
    print(f"\nSaved {report.save(document, 'backtest-speed', args.results)}")
    return 1 if any(t[3] == "FAIL" for t in targets) else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`make bench` (`python -m bench.suite`): every benchmark, then one table of all their verdicts.

Each benchmark runs as its own process with its full default sizes (its figures are medians over
its own repeats: process runs, page loads, bot ticks or requests), printing its own table as it
goes; a benchmark that fails or cannot run (wrk or Chromium missing) does not stop the others.
Then each one's `<results>/<result>-latest.json` is read back, only if this run wrote it, and
its "targets" (or "verdicts") become rows of one table: benchmark, metric, value, target,
result. Saved as bench/results/suite-<stamp>.json and suite-latest.json; exits 1 if any row
failed or a benchmark left no result.

`--quick` runs each with small sizes (a minute or two each, for trying the suite out, not for
figures to quote) and saves everything under bench/results/quick, so the full-size files keep
their figures; `--only soak,run` picks benchmarks.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

from bench import report
from bench.report import Target
from paper_trading.management.tables import TARGET_HEADER, text_table

ROOT = Path(__file__).resolve().parent.parent
#: Where the benchmarks save their JSON, and the suite its own (quick runs in QUICK_RESULTS).
RESULTS = report.RESULTS
QUICK_RESULTS = RESULTS / "quick"
#: How long one benchmark may take before the suite gives up on it.
TIMEOUT_SECONDS = 3 * 3600


@dataclass(frozen=True)
class Benchmark:
    name: str
    module: str
    #: The name its results are saved under (`report.save`): <result>-latest.json.
    result: str
    quick: tuple[str, ...] = ()


BENCHMARKS = [
    Benchmark("run", "bench.run", "run", ("--repeats", "1")),
    Benchmark(
        "bot_capacity",
        "bench.bot_capacity",
        "bot-capacity",
        ("--bots", "5", "--rounds", "2", "--warmup-rounds", "1"),
    ),
    Benchmark("api_load", "bench.api_load", "api-load", ("--seconds", "1", "--warmup", "0.5")),
    Benchmark("ws_fanout", "bench.ws_fanout", "ws-fanout", ("--clients", "20", "--ticks", "3")),
    Benchmark(
        "dashboard_render",
        "bench.dashboard_render",
        "dashboard-render",
        ("--loads", "2", "--ticks", "100"),
    ),
    Benchmark("backtest_speed", "bench.backtest_speed", "backtest-speed", ("--repeats", "1")),
    Benchmark("gas_strategies", "bench.gas_strategies", "gas-strategies"),
    Benchmark("soak", "bench.soak", "soak", ("--ticks", "3000", "--sample-seconds", "0.2")),
    Benchmark(
        "crash_loop",
        "bench.crash_loop",
        "crash-loop",
        ("--kills", "5", "--from", "2026-01-01", "--to", "2026-01-10"),
    ),
    Benchmark("feed_faults", "bench.feed_faults", "feed-faults", ("--minutes", "1")),
]


class Row(NamedTuple):
    benchmark: str
    metric: str
    value: str
    target: str
    result: str


def rows_of(benchmark: str, document: dict[str, Any]) -> list[Row]:
    """A results document's verdicts as table rows, whichever of the shapes it uses.

    * {metric | scenario + metric, value, kind, bound[, unit, ok]}: judged here (`ok` wins);
    * already judged, as printed: {metric, value, target, result} or {target, value, bound,
      result} (the target's name under "target", its bound under "bound");
    * crash_loop's "verdicts": {check, value, target, passed}.
    """
    rows = []
    for v in document.get("verdicts", []):
        judged = v["target"] != f"({report.CONTEXT})"
        result = ("pass" if v["passed"] else "FAIL") if judged else ""
        rows.append(Row(benchmark, v["check"], str(v["value"]), v["target"], result))
    for t in document.get("targets", []):
        if "result" in t:
            name, target = (
                (t["metric"], t["target"]) if "metric" in t else (t["target"], t["bound"])
            )
            rows.append(Row(benchmark, name, str(t["value"]), str(target), t["result"]))
            continue
        name = f"{t['scenario']}.{t['metric']}" if "scenario" in t else t["metric"]
        target = Target(name, float(t["value"]), t["kind"], t.get("bound"), t.get("unit", ""))
        metric, value, bound, result = target.row()
        if t.get("ok") is not None:
            result = "pass" if t["ok"] else "FAIL"
        rows.append(Row(benchmark, metric, value, bound, result))
    return rows


@dataclass
class Outcome:
    name: str
    command: list[str]
    exit_code: int | None
    seconds: float
    results_file: str
    rows: list[Row]


def run_one(benchmark: Benchmark, quick: bool, results: Path) -> Outcome:
    """Run one benchmark (output to this terminal) and read back the results it wrote."""
    sizes = benchmark.quick if quick else ()
    command = [sys.executable, "-m", benchmark.module, *sizes, f"--results={results}"]
    latest = results / f"{benchmark.result}-latest.json"
    before = latest.stat().st_mtime if latest.exists() else None
    print(f"\n=== {benchmark.name}: {' '.join(command[1:])}", flush=True)
    began = time.perf_counter()
    try:
        code: int | None = subprocess.run(command, cwd=ROOT, timeout=TIMEOUT_SECONDS).returncode
    except subprocess.TimeoutExpired:
        code = None
    seconds = time.perf_counter() - began
    fresh = latest.exists() and latest.stat().st_mtime != before
    if not fresh:
        why = "timed out" if code is None else f"exit {code}"
        rows = [Row(benchmark.name, "(no result)", why, "a result", "FAIL")]
    else:
        rows = rows_of(benchmark.name, json.loads(latest.read_text()))
        if code != 0 and not any(r.result == "FAIL" for r in rows):
            rows.append(Row(benchmark.name, "exit code", str(code), "0", "FAIL"))
    return Outcome(benchmark.name, command[1:], code, seconds, str(latest), rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes, to try the suite out")
    parser.add_argument(
        "--only", default="", help="comma-separated benchmark names (default: all of them)"
    )
    args = parser.parse_args(argv)
    chosen = BENCHMARKS
    if args.only:
        wanted = {n.strip() for n in args.only.split(",") if n.strip()}
        unknown = wanted - {b.name for b in BENCHMARKS}
        if unknown:
            parser.error(f"unknown benchmark {', '.join(sorted(unknown))}")
        chosen = [b for b in chosen if b.name in wanted]

    began = time.perf_counter()
    results = QUICK_RESULTS if args.quick else RESULTS
    outcomes = [run_one(b, args.quick, results) for b in chosen]
    seconds = time.perf_counter() - began

    rows = [r for o in outcomes for r in o.rows]
    lines = text_table(("benchmark", *TARGET_HEADER), rows)
    failed = sum(r.result == "FAIL" for r in rows)
    print(f"\n=== make bench: {len(outcomes)} benchmarks in {seconds / 60:.1f} min")
    print("\n".join(lines))
    print(f"\n{failed} failed" if failed else "\nall passed")
    document = {
        "created_at": report.stamp(),
        "machine": report.machine(),
        "quick": args.quick,
        "seconds": seconds,
        "benchmarks": [asdict(o) | {"rows": [r._asdict() for r in o.rows]} for o in outcomes],
        "targets": [r._asdict() for r in rows],
        "failed": failed,
    }
    print(f"Saved {report.save(document, 'suite', results)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

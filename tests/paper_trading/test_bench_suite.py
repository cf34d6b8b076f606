"""`make bench` (bench/suite.py): every benchmark runs, even after one fails, and one table
shows all their verdicts, read from the JSON each one wrote in this run."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from bench import suite
from bench.suite import Benchmark, Row, rows_of

#: A stand-in benchmark: saves the given document as <name>-latest.json in the folder its
#: --results option names, says which sizes it was given, exits with `code`.
MODULE = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    folder = next(a.split("=", 1)[1] for a in sys.argv if a.startswith("--results="))
    Path(folder).mkdir(parents=True, exist_ok=True)
    Path(folder, "{name}-latest.json").write_text(json.dumps({document!r}))
    print("{name} ran with", [a for a in sys.argv[1:] if not a.startswith("--results=")])
    sys.exit({code})
    """
)


def _benchmark(
    folder: Path, name: str, document: dict[str, Any] | None, code: int = 0
) -> Benchmark:
    if document is None:  # one that crashes before saving anything
        (folder / f"fake_{name}.py").write_text("raise SystemExit(3)\n")
    else:
        source = MODULE.format(document=document, name=name, code=code)
        (folder / f"fake_{name}.py").write_text(source)
    return Benchmark(name, f"fake_{name}", name, quick=("--rounds", "1"))


def _use(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, benchmarks: list[Benchmark]) -> Path:
    """Run the suite over `benchmarks` (modules in tmp_path), saving under tmp_path/results."""
    results = tmp_path / "results"
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setattr(suite, "BENCHMARKS", benchmarks)
    monkeypatch.setattr(suite, "RESULTS", results)
    monkeypatch.setattr(suite, "QUICK_RESULTS", results / "quick")
    return results


def test_every_benchmark_runs_and_one_table_judges_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    results.mkdir()
    # A result from an earlier run must not stand in for one this run did not write.
    (results / "crashes-latest.json").write_text(json.dumps({"targets": []}))
    benchmarks = [
        _benchmark(
            tmp_path,
            "speed",
            {
                "targets": [
                    {
                        "metric": "bars_per_second",
                        "value": 3000.0,
                        "kind": "min",
                        "bound": 2500.0,
                        "unit": "bars/s",
                    }
                ]
            },
        ),
        _benchmark(tmp_path, "crashes", None),
        _benchmark(
            tmp_path,
            "latency",
            {
                "targets": [
                    {"metric": "p95_ms", "value": 31.5, "kind": "max", "bound": 20.0, "unit": "ms"}
                ]
            },
            code=1,
        ),
    ]
    _use(monkeypatch, tmp_path, benchmarks)

    assert suite.main([]) == 1

    out = capfd.readouterr().out
    assert "speed ran with []" in out  # each benchmark's own output comes first, full size
    lines = out[out.index("=== make bench") :].splitlines()
    assert lines[1].split() == ["benchmark", "metric", "value", "target", "result"]
    assert [re.split(r"\s{2,}", line) for line in lines[3:6]] == [
        ["speed", "bars_per_second", "3,000", ">= 2,500 bars/s", "pass"],
        ["crashes", "(no result)", "exit 3", "a result", "FAIL"],
        ["latency", "p95_ms", "31.50", "<= 20 ms", "FAIL"],
    ]
    assert "2 failed" in out
    saved = json.loads((results / "suite-latest.json").read_text())
    assert [(b["name"], b["exit_code"]) for b in saved["benchmarks"]] == [
        ("speed", 0),
        ("crashes", 3),
        ("latency", 1),
    ]
    assert [r["result"] for r in saved["targets"]] == ["pass", "FAIL", "FAIL"]
    assert saved["failed"] == 2


def test_quick_runs_use_small_sizes_and_keep_full_size_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    document = {"targets": [{"metric": "m", "value": 2.0, "kind": "min", "bound": 1.0}]}
    results = _use(monkeypatch, tmp_path, [_benchmark(tmp_path, "speed", document)])
    results.mkdir()
    full_size = json.dumps({"targets": [{"metric": "m", "value": 9.0, "kind": "min", "bound": 1}]})
    (results / "speed-latest.json").write_text(full_size)

    assert suite.main(["--quick"]) == 0

    assert "speed ran with ['--rounds', '1']" in capfd.readouterr().out
    assert (results / "speed-latest.json").read_text() == full_size
    quick = json.loads((results / "quick" / "suite-latest.json").read_text())
    assert quick["quick"] is True
    assert [(r["metric"], r["value"]) for r in quick["targets"]] == [("m", "2")]
    assert not (results / "suite-latest.json").exists()


def test_rows_of_reads_every_shape_the_benchmarks_save() -> None:
    document = {
        # bench.run / dashboard_render: judged here.
        "targets": [
            {
                "scenario": "engine",
                "metric": "ticks_per_second",
                "kind": "min",
                "bound": 500,
                "unit": "ticks/s",
                "value": 420.0,
            },
            # bot_capacity: the benchmark's own verdict wins.
            {
                "metric": "sqlite.bots_per_core",
                "kind": "min",
                "bound": 500,
                "value": 900.0,
                "ok": False,
            },
            # report.Target context figure.
            {
                "metric": "trades",
                "value": 12,
                "kind": "context",
                "bound": None,
                "unit": "",
                "ok": None,
            },
            # Judged when printed: feed_faults, then backtest_speed.
            {"metric": "crashes", "value": "0", "target": "0", "result": "pass"},
            {"target": "dexpaper bars/s", "value": "9,000", "bound": ">= 2,500", "result": "pass"},
        ],
        # crash_loop.
        "verdicts": [
            {"check": "mismatches", "value": "0", "target": "= 0", "passed": True},
            {"check": "seconds", "value": "12.0", "target": "(context)", "passed": True},
        ],
    }
    assert rows_of("b", document) == [
        Row("b", "mismatches", "0", "= 0", "pass"),
        Row("b", "seconds", "12.0", "(context)", ""),
        Row("b", "engine.ticks_per_second", "420", ">= 500 ticks/s", "FAIL"),
        Row("b", "sqlite.bots_per_core", "900", ">= 500", "FAIL"),
        Row("b", "trades", "12", "(context)", ""),
        Row("b", "crashes", "0", "0", "pass"),
        Row("b", "dexpaper bars/s", "9,000", ">= 2,500", "pass"),
    ]

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

#: A stand-in benchmark: saves the given document as <name>-latest.json, exits with `code`.
MODULE = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    Path({folder!r}, {latest!r}).write_text(json.dumps({document!r}))
    print("{name} ran")
    sys.exit({code})
    """
)


def _benchmark(
    folder: Path, name: str, document: dict[str, Any] | None, code: int = 0
) -> Benchmark:
    latest = f"{name}-latest.json"
    if document is None:  # one that crashes before saving anything
        (folder / f"fake_{name}.py").write_text("raise SystemExit(3)\n")
    else:
        source = MODULE.format(
            folder=str(folder / "results"),
            latest=latest,
            document=document,
            name=name,
            code=code,
        )
        (folder / f"fake_{name}.py").write_text(source)
    return Benchmark(name, f"fake_{name}", latest)


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
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setattr(suite, "BENCHMARKS", benchmarks)
    monkeypatch.setattr(suite, "RESULTS", results)

    assert suite.main([]) == 1

    out = capfd.readouterr().out
    assert "speed ran" in out  # each benchmark's own output comes first
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

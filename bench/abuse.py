"""`python -m bench.abuse` (`make abuse`): the abuse tests at full size, with a report.

Runs schemathesis over every operation of the OpenAPI schema with `--examples` (default 500)
generated requests each (positive and negative data, as a signed-in user owning a bot-filled
account), together with the abuse tests (tests/paper_trading/test_abuse_*.py: the two-user
authorization sweep of every endpoint and websocket, SIWE forgeries, oversize and malformed
bodies, CSRF, production settings). The CI suite runs the same tests with 25 examples.

Prints the answers per operation and status class, writes bench/results/abuse-<stamp>.json and
abuse-latest.json, and exits 1 if a test failed or any answer was a 5xx.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report
from bench.report import Target
from paper_trading.management.tables import text_table

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests" / "paper_trading"


def abuse_test_files() -> list[str]:
    """The schemathesis module and every abuse test module, as paths relative to the project."""
    files = [TESTS / "test_api_schemathesis.py", *sorted(TESTS.glob("test_abuse_*.py"))]
    return [str(f.relative_to(ROOT)) for f in files]


def run_pytest(examples: int, report: Path, junit: Path) -> int:
    env = {
        **os.environ,
        "SCHEMATHESIS_MAX_EXAMPLES": str(examples),
        "SCHEMATHESIS_REPORT": str(report),
    }
    command = [
        sys.executable,
        "-m",
        "pytest",
        *abuse_test_files(),
        "--no-cov",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--junitxml={junit}",
    ]
    return subprocess.run(command, cwd=ROOT, env=env, check=False).returncode


def junit_totals(junit: Path) -> dict[str, int]:
    """tests, failures, errors and skipped, summed over the JUnit report's test suites."""
    root = ET.parse(junit).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    keys = ("tests", "failures", "errors", "skipped")
    return {k: sum(int(s.get(k, "0")) for s in suites) for k in keys}


def summarise(operations: dict[str, dict[str, int]]) -> tuple[list[list[str]], Counter[str]]:
    """One row per operation (answers per status class, the codes seen) and the totals."""
    rows: list[list[str]] = []
    totals: Counter[str] = Counter()
    for label, codes in sorted(operations.items()):
        classes: Counter[str] = Counter()
        for code, n in codes.items():
            classes[f"{code[0]}xx"] += n
        totals.update(classes)
        totals["requests"] += sum(codes.values())
        rows.append(
            [
                label,
                str(sum(codes.values())),
                str(classes["2xx"]),
                str(classes["4xx"]),
                str(classes["5xx"]),
                " ".join(sorted(codes)),
            ]
        )
    return rows, totals


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--examples", type=int, default=500, help="schemathesis examples per operation"
    )
    report.add_results_option(parser)
    args = parser.parse_args()
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="dexpaper-abuse-") as folder:
        report_file, junit_file = Path(folder) / "answers.json", Path(folder) / "junit.xml"
        clock = time.perf_counter()
        exit_code = run_pytest(args.examples, report_file, junit_file)
        seconds = time.perf_counter() - clock
        if not report_file.exists() or not junit_file.exists():
            print("the tests wrote no report: see pytest's output above", file=sys.stderr)
            return 1
        answers = json.loads(report_file.read_text())
        tests = junit_totals(junit_file)
    rows, totals = summarise(answers["operations"])
    print()
    header = ["operation", "requests", "2xx", "4xx", "5xx", "status codes"]
    print("\n".join(text_table(header, rows)))
    print(
        f"\n{len(rows)} operations, {totals['requests']:,} requests "
        f"({args.examples} examples per operation): {totals['2xx']:,} 2xx, "
        f"{totals['4xx']:,} 4xx, {totals['5xx']} 5xx"
    )
    print(
        f"tests: {tests['tests']} run, {tests['failures']} failed, {tests['errors']} errors, "
        f"{tests['skipped']} skipped, in {seconds:.0f} s"
    )
    ok = exit_code == 0 and totals["5xx"] == 0 and not tests["failures"] and not tests["errors"]
    record: dict[str, Any] = {
        "created_at": report.stamp(),
        "started_at": started.isoformat(),
        "seconds": round(seconds, 1),
        "examples_per_operation": args.examples,
        "machine": report.machine()
        | {"database": os.environ.get("DATABASE_URL", "sqlite").split(":", 1)[0]},
        "tests": tests,
        "pytest_exit_code": exit_code,
        "requests": totals["requests"],
        "answers_by_class": {k: totals[k] for k in ("2xx", "3xx", "4xx", "5xx")},
        "operations": answers["operations"],
        "targets": [
            Target("5xx answers", totals["5xx"], "max", 0).as_json(),
            Target("failed tests", tests["failures"] + tests["errors"], "max", 0).as_json(),
            Target("requests", totals["requests"], report.CONTEXT).as_json(),
        ],
        "ok": ok,
    }
    print(f"saved {report.save(record, 'abuse', args.results)}")
    print("OK: no 5xx, every test passed" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""What the benchmarks share: judged figures (targets), the machine, and saving the JSON.

Every benchmark saves `<results>/<name>-<stamp>.json` and `<name>-latest.json` with a "targets"
list, which `python -m bench.suite` (`make bench`) reads back into one table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
#: A figure shown for information, not judged.
CONTEXT = "context"


@dataclass(frozen=True)
class Target:
    """One figure and what it must be: at least (`min`) or at most (`max`) `bound`."""

    metric: str
    value: float
    kind: str
    bound: float | None = None
    unit: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("min", "max", CONTEXT):
            raise ValueError(f"kind must be min, max or {CONTEXT}, got {self.kind!r}")
        if (self.bound is None) != (self.kind == CONTEXT):
            raise ValueError(f"{self.metric}: a bound goes with min and max only")

    @property
    def ok(self) -> bool | None:
        """Whether the figure meets its bound; None for a context figure."""
        if self.bound is None:
            return None
        return self.value >= self.bound if self.kind == "min" else self.value <= self.bound

    @property
    def target_text(self) -> str:
        if self.bound is None:
            return f"({CONTEXT})"
        sign = ">=" if self.kind == "min" else "<="
        return f"{sign} {number(self.bound)} {self.unit}".rstrip()

    @property
    def result_text(self) -> str:
        return "" if self.ok is None else "pass" if self.ok else "FAIL"

    def row(self) -> tuple[str, str, str, str]:
        """The row of a TARGET_HEADER table: metric, value, target, result."""
        return (self.metric, number(self.value), self.target_text, self.result_text)

    def as_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "value": self.value,
            "kind": self.kind,
            "bound": self.bound,
            "unit": self.unit,
            "ok": self.ok,
        }


def number(value: float) -> str:
    """Whole numbers with thousands separators, others with two decimals (or 3 digits if small)."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}" if abs(value) >= 1 else f"{value:.3g}"


def stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }


def add_results_option(parser: argparse.ArgumentParser) -> None:
    """`--results DIR`: quick runs of the suite save apart and never replace full-size figures."""
    parser.add_argument("--results", type=Path, default=RESULTS, help="where to save the JSON")


def save(document: dict[str, Any], name: str, folder: Path = RESULTS) -> Path:
    """Write `<name>-<stamp>.json` and `<name>-latest.json`; returns the stamped file."""
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(document, indent=2, default=str) + "\n"
    stamped = folder / f"{name}-{document.get('created_at') or stamp()}.json"
    stamped.write_text(text)
    (folder / f"{name}-latest.json").write_text(text)
    return stamped

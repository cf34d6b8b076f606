"""Search a strategy's parameters over recorded candles and show how the best do out of sample."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from paper_trading.engine.backtest import OptionError
from paper_trading.engine.optimize import (
    METRICS,
    Candidate,
    SearchReport,
    SearchSettings,
    search,
)
from paper_trading.management.arguments import (
    add_backtest_arguments,
    backtest_config,
    strategy_errors,
)
from paper_trading.management.tables import text_table


class Command(BaseCommand):
    help = (
        "Search a strategy's declared parameters (grid or Optuna) with backtests in parallel "
        "processes; rank by a metric in sample and report the best out of sample "
        "(hold-out or walk-forward), so curve-fitting shows."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_backtest_arguments(
            parser,
            strategy_default=None,
            param_help="hold a parameter at this value instead of searching it (repeatable)",
            intel=False,
            seed_help="simulator and Optuna seed (same seed, same result)",
        )
        parser.add_argument(
            "--metric", choices=sorted(METRICS), default="sharpe", help="what to maximise"
        )
        parser.add_argument("--method", choices=["grid", "optuna"], default="grid")
        parser.add_argument(
            "--trials", type=int, default=50, help="optuna: candidates per training window"
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=os.cpu_count() or 1,
            help="backtest processes (default: one per core)",
        )
        parser.add_argument("--split", choices=["holdout", "walk-forward"], default="holdout")
        parser.add_argument(
            "--train-fraction",
            type=float,
            default=0.7,
            help="share of the period (hold-out) or of each fold (walk-forward) to train on",
        )
        parser.add_argument("--folds", type=int, default=3, help="walk-forward: train/test pairs")
        parser.add_argument(
            "--top", type=int, default=5, help="hold-out: best candidates to run out of sample"
        )
        parser.add_argument(
            "--max-grid", type=int, default=2000, help="refuse grids with more candidates"
        )
        parser.add_argument("--output", default="", help="write the full result as JSON here")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["top"] < 1:
            raise CommandError(f"--top: must be at least 1, not {options['top']}")
        config = backtest_config(options)
        settings = SearchSettings(
            metric=options["metric"],
            method=options["method"],
            trials=options["trials"],
            workers=options["workers"],
            split=options["split"],
            train_fraction=options["train_fraction"],
            folds=options["folds"],
            top=options["top"],
            max_grid=options["max_grid"],
        )
        with tqdm(
            unit="backtest", disable=options["no_progress"], file=sys.stderr, mininterval=0.5
        ) as bar:

            def progress(done: int, planned: int) -> None:
                bar.total = max(planned, done)
                bar.update(done - bar.n)

            try:
                with strategy_errors():
                    report = search(config, settings, progress)
            except OptionError as exc:
                raise CommandError(str(exc)) from None
            bar.total = bar.n  # repeats were free: the plan was an upper bound
        self.stdout.write(render(report))
        if options["output"]:
            path = Path(options["output"])
            try:
                path.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
            except OSError as exc:
                raise CommandError(f"--output: cannot write {path}: {exc}") from None
            self.stdout.write(f"JSON result: {path}")


def render(report: SearchReport) -> str:
    """The report as the terminal shows it: the search, then in- and out-of-sample side by side."""
    s, metric = report.settings, report.settings.metric
    fixed = ", ".join(f"{n}={v}" for n, v in report.fixed.items())
    space = ", ".join(f"{n} {r}" for n, r in report.space.items()) or "nothing (all fixed)"
    lines = [
        f"Optimising {report.strategy} on {report.config.chain}, {report.config.bar} bars "
        f"{_when(report.period[0])} .. {_when(report.period[1])} UTC ({report.bars:,} bars)",
        f"Searching {space}" + (f"; fixed {fixed}" if fixed else ""),
        f"Method {s.method}"
        + (
            f", {_count(report.rejected, 'combination')} refused by the strategy"
            if report.rejected
            else ""
        )
        + f"; score: {metric} ({METRICS[metric].description}); "
        f"{_count(report.backtests, 'backtest')} on {_count(s.workers, 'worker')}",
        "",
    ]
    names = list(report.space) or list(report.fixed)
    if s.split == "holdout":
        fold = report.folds[0]
        lines.append(
            f"Hold-out: train {_span(fold.train_period)} ({len(fold.fold.train):,} bars, "
            f"{fold.evaluated} candidates), test {_span(fold.test_period)} "
            f"({len(fold.fold.test):,} bars)"
        )
        rows = [
            [str(rank), *_params_cells(c, names), *_side_by_side(c, metric)]
            for rank, c in enumerate(fold.best, start=1)
        ]
        if fold.baseline is not None:
            b = fold.baseline
            rows.append(["default", *_params_cells(b, names), *_side_by_side(b, metric)])
        header = ["rank", *names, *_side_headers(metric)]
        lines += text_table(header, rows)
        best = fold.best[0]
        lines += [
            "",
            f"Best in sample: {metric} {_num(best.train_score)} on the training window, "
            f"{_num(best.test_score)} on the unseen test window"
            + (
                f" (defaults: {_num(fold.baseline.test_score)})"
                if fold.baseline is not None
                else ""
            )
            + ".",
        ]
    else:
        header = ["fold", "train", "test", *names, *_side_headers(metric)]
        rows = [
            [
                str(number),
                _span(f.train_period),
                _span(f.test_period),
                *_params_cells(f.best[0], names),
                *_side_by_side(f.best[0], metric),
            ]
            for number, f in enumerate(report.folds, start=1)
        ]
        lines.append(f"Walk-forward: {len(report.folds)} folds, each re-optimised on its window")
        lines += text_table(header, rows)
        scored = sum(f.best[0].test_score is not None for f in report.folds)
        baseline_return = report.baseline_out_of_sample_return_percent
        lines += [
            "",
            f"Out of sample: mean {metric} {_num(report.out_of_sample_score)} over {scored} of "
            f"{len(report.folds)} folds (defaults: {_num(report.baseline_out_of_sample_score)}); "
            f"compounded return {report.out_of_sample_return_percent:+.2f}%"
            + (f" (defaults: {baseline_return:+.2f}%)" if baseline_return is not None else ""),
        ]
    return "\n".join(lines)


def _side_headers(metric: str) -> list[str]:
    return [
        f"{metric} in",
        f"{metric} out",
        "return % in",
        "return % out",
        "trades in",
        "trades out",
    ]


def _side_by_side(c: Candidate, metric: str) -> list[str]:
    """In-sample and out-of-sample figures next to each other ("-": not run out of sample)."""
    test = c.test
    return [
        _num(c.train_score),
        _num(c.test_score),
        f"{c.train.return_percent:+.2f}",
        "-" if test is None else f"{test.return_percent:+.2f}",
        str(c.train.trades),
        "-" if test is None else str(test.trades),
    ]


def _params_cells(c: Candidate, names: Sequence[str]) -> list[str]:
    return [f"{c.params[n]:g}" for n in names]


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M}"


def _span(period: tuple[datetime, datetime]) -> str:
    return f"{_when(period[0])} .. {_when(period[1])}"

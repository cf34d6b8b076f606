"""Backtest a strategy over recorded candles with the paper bot's engine, fills, fees and gas."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from paper_trading.backtesting.report import result_document, summary_text, write_outputs
from paper_trading.backtesting.storage import StoreRecorder, save_run
from paper_trading.engine.backtest import OptionError, prepare
from paper_trading.engine.events import EventSink, QuietTicks, TickResult
from paper_trading.engine.metrics import PERIODS
from paper_trading.management.arguments import (
    add_backtest_arguments,
    backtest_config,
    strategy_errors,
)
from paper_trading.services.demo import DEMO_USERNAME


class _ProgressBar:
    """A sink that moves the progress bar one tick at a time."""

    def __init__(self, bar: tqdm) -> None:  # type: ignore[type-arg]
        self.bar = bar

    def publish(self, result: TickResult) -> None:
        self.bar.update()

    def publish_quiet(self, ticks: QuietTicks) -> None:
        self.bar.update(ticks.ticks)


class Command(BaseCommand):
    help = (
        "Backtest a strategy over recorded prices with the same engine, fills, fees and gas as "
        "paper trading; print a summary, and write a JSON result and an HTML report."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_backtest_arguments(parser)
        parser.add_argument(
            "--output", default="", help="folder for backtest.json and backtest.html"
        )
        parser.add_argument(
            "--save",
            action="store_true",
            help="store the run as a finished session of a new account (dashboard analytics)",
        )
        parser.add_argument("--user", default=DEMO_USERNAME, help="--save: owner of the account")
        parser.add_argument(
            "--breakdown",
            choices=sorted(PERIODS),
            default="month",
            help="results per calendar day, week or month (UTC) in the summary and report",
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        config = backtest_config(options)
        try:
            prepared = prepare(config)
        except OptionError as exc:
            raise CommandError(str(exc)) from None
        output = Path(options["output"]) if options["output"] else None
        if output is not None:
            try:  # before the run, so a bad folder does not cost a whole backtest
                output.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise CommandError(f"--output: cannot write there: {exc}") from None
        run_id = uuid.uuid4()
        recorder = StoreRecorder() if options["save"] else None
        sinks: list[EventSink] = [recorder] if recorder else []
        with (
            tqdm(
                total=prepared.ticks,
                unit="bar",
                disable=options["no_progress"],
                file=sys.stderr,
                mininterval=0.5,
            ) as bar,
            strategy_errors(),
        ):
            result = prepared.run(sinks=[*sinks, _ProgressBar(bar)], namespace=run_id)
        document = result_document(prepared, result, options["breakdown"])
        self.stdout.write(summary_text(document))
        if output is not None:
            try:
                json_path, html_path = write_outputs(document, output)
            except OSError as exc:
                raise CommandError(f"--output: cannot write there: {exc}") from None
            self.stdout.write(f"JSON result: {json_path}")
            self.stdout.write(f"HTML report: {html_path}")
        if recorder is not None:
            session = save_run(
                prepared, result, recorder, session_id=run_id, username=options["user"]
            )
            self.stdout.write(
                f"Saved as session {session.session_id} of account {session.account.name!r} "
                f"({session.account_id})"
            )

"""Backtest a strategy over recorded candles with the paper bot's engine, fills, fees and gas."""

from __future__ import annotations

import sys
import uuid
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from paper_trading.backtesting.report import result_document, summary_text, write_outputs
from paper_trading.backtesting.storage import StoreRecorder, save_run
from paper_trading.engine.backtest import BacktestConfig, OptionError, prepare
from paper_trading.engine.events import EventSink, TickResult
from paper_trading.engine.prices.replay import DEFAULT_DATA_DIR
from paper_trading.engine.strategies.catalog import parse_params
from paper_trading.management.arguments import utc_datetime
from paper_trading.services.demo import DEMO_USERNAME


class _ProgressBar:
    """A sink that moves the progress bar one tick at a time."""

    def __init__(self, bar: tqdm) -> None:  # type: ignore[type-arg]
        self.bar = bar

    def publish(self, result: TickResult) -> None:
        self.bar.update()


class Command(BaseCommand):
    help = (
        "Backtest a strategy over recorded prices with the same engine, fills, fees and gas as "
        "paper trading; print a summary, and write a JSON result and an HTML report."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--strategy",
            default="intel_slider",
            help="built-in name (intel_slider, ...), package.module.Class or path/file.py:Class",
        )
        parser.add_argument(
            "--param",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="a strategy parameter (repeatable)",
        )
        parser.add_argument("--intel", type=int, help="shorthand for intel_slider at level 1-10")
        parser.add_argument(
            "--tokens", default="", help="comma-separated symbols (default: all the data covers)"
        )
        parser.add_argument("--chain", default="base", help="chain slug or id (base, 8453, ...)")
        parser.add_argument(
            "--from", dest="period_start", type=utc_datetime, help="start (UTC date/time)"
        )
        parser.add_argument(
            "--to", dest="period_end", type=utc_datetime, help="end (UTC date/time)"
        )
        parser.add_argument(
            "--data", default="", help="folder of candle files (default: the shipped recording)"
        )
        parser.add_argument("--bar", default="1h", help="candle interval (1h, 15m, ...)")
        parser.add_argument("--initial-balance", default="10000", help="starting USD balance")
        parser.add_argument(
            "--fee-model",
            default="pool",
            help="pool (each pool's own fee tier), flat:<bps> or none",
        )
        parser.add_argument("--seed", type=int, default=0, help="simulator randomness seed")
        parser.add_argument(
            "--output", default="", help="folder for backtest.json and backtest.html"
        )
        parser.add_argument(
            "--save",
            action="store_true",
            help="store the run as a finished session of a new account (dashboard analytics)",
        )
        parser.add_argument("--user", default=DEMO_USERNAME, help="--save: owner of the account")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        config = self._config(options)
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
        with tqdm(
            total=prepared.ticks,
            unit="bar",
            disable=options["no_progress"],
            file=sys.stderr,
            mininterval=0.5,
        ) as bar:
            result = prepared.run(sinks=[*sinks, _ProgressBar(bar)], namespace=run_id)
        document = result_document(prepared, result)
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

    def _config(self, options: dict[str, Any]) -> BacktestConfig:
        try:
            params = parse_params(options["param"])
        except ValueError as exc:
            raise CommandError(f"--param: {exc}") from None
        strategy = options["strategy"]
        if options["intel"] is not None:
            if strategy != "intel_slider":
                raise CommandError("--intel: is shorthand for --strategy intel_slider")
            params.setdefault("level", str(options["intel"]))
        try:
            balance = Decimal(options["initial_balance"])
        except InvalidOperation:
            balance = Decimal("NaN")
        if not balance.is_finite():
            raise CommandError(f"--initial-balance: {options['initial_balance']!r} is not a number")
        return BacktestConfig(
            strategy=strategy,
            params=params,
            chain=options["chain"],
            tokens=tuple(s.strip().upper() for s in options["tokens"].split(",") if s.strip()),
            start=options["period_start"],
            end=options["period_end"],
            data_dir=Path(options["data"]) if options["data"] else DEFAULT_DATA_DIR,
            bar=options["bar"],
            initial_balance_usd=balance,
            fee_model=options["fee_model"],
            seed=options["seed"],
        )

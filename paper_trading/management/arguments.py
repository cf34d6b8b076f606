"""Arguments shared by the management commands, so `--from 2025-12-10` means one thing.

`backtest`, `optimize` and `gas_report` all run the engine over recorded candles and take the
same options for it (`add_backtest_arguments`), read into one `BacktestConfig`
(`backtest_config`), so an option added or fixed for one is there for all.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from paper_trading.engine.backtest import BacktestConfig
from paper_trading.engine.prices.replay import DEFAULT_DATA_DIR
from paper_trading.engine.strategies.catalog import parse_params
from paper_trading.engine.strategies.contract import StrategyContractError
from paper_trading.engine.strategies.intel_slider import MAX_LEVEL, MIN_LEVEL


def utc_datetime(value: str) -> datetime:
    """An ISO date or time, read as UTC unless it says otherwise."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date or time: {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def whole_number(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number from `low` (up to `high`), checked when the options are
    read, before any slow start-up."""
    span = f"from {low}" if high is None else f"from {low} to {high}"

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            number = low - 1
        if number < low or (high is not None and number > high):
            raise argparse.ArgumentTypeError(f"must be a whole number {span}, not {value!r}")
        return number

    return parse


#: `--intel`: an Intel slider level.
intel_level = whole_number(MIN_LEVEL, MAX_LEVEL)


def add_backtest_arguments(
    parser: CommandParser,
    *,
    strategy_default: str | None = "intel_slider",
    param_help: str = "a strategy parameter (repeatable)",
    intel: bool = True,
    chain_default: str = "base",
    seed_help: str = "simulator randomness seed",
) -> None:
    """The strategy, market, period and cost options of a run over recorded candles."""
    parser.add_argument(
        "--strategy",
        default=strategy_default,
        required=strategy_default is None,
        help="built-in name (intel_slider, ma_crossover, ...), package.module.Class or "
        "path/file.py:Class",
    )
    parser.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help=param_help
    )
    if intel:
        parser.add_argument(
            "--intel", type=intel_level, help="shorthand for intel_slider at level 1-10"
        )
    parser.add_argument(
        "--tokens", default="", help="comma-separated symbols (default: all the data covers)"
    )
    parser.add_argument("--chain", default=chain_default, help="chain slug or id (base, 8453, ...)")
    parser.add_argument(
        "--from", dest="period_start", type=utc_datetime, help="start (UTC date/time)"
    )
    parser.add_argument("--to", dest="period_end", type=utc_datetime, help="end (UTC date/time)")
    parser.add_argument(
        "--data", default="", help="folder of candle files (default: the shipped recording)"
    )
    parser.add_argument("--bar", default="1h", help="candle interval (1h, 15m, ...)")
    parser.add_argument("--initial-balance", default="10000", help="starting USD balance")
    parser.add_argument(
        "--fee-model", default="pool", help="pool (each pool's own fee tier), flat:<bps> or none"
    )
    parser.add_argument("--seed", type=int, default=0, help=seed_help)


@contextmanager
def strategy_errors() -> Iterator[None]:
    """A strategy that breaks its contract during a run (its `decide` raised or answered what
    the engine cannot act on) as an error naming `--strategy`, not a traceback."""
    try:
        yield
    except StrategyContractError as exc:
        raise CommandError(f"--strategy: {exc}") from exc


def refuse_two_levels(intel: int | None, params: dict[str, str]) -> None:
    """`--intel` and `--param level=` both set the Intel slider's level: one of them would be
    silently ignored, so giving both is an error."""
    if intel is not None and "level" in params:
        raise CommandError(
            f"--intel: --param level={params['level']} sets the level too; give one of them"
        )


def backtest_config(options: dict[str, Any]) -> BacktestConfig:
    """The options of `add_backtest_arguments` as a config; CommandError names a bad option."""
    try:
        params = parse_params(options["param"])
    except ValueError as exc:
        raise CommandError(f"--param: {exc}") from None
    strategy = options["strategy"]
    if options.get("intel") is not None:
        if strategy != "intel_slider":
            raise CommandError("--intel: is shorthand for --strategy intel_slider")
        refuse_two_levels(options["intel"], params)
        params["level"] = str(options["intel"])
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

"""Measure the gas strategies on a backtest's trades: gas paid, delay and reverts side by side."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from paper_trading.engine.backtest import OptionError, prepare
from paper_trading.engine.dex.gas import GasModel
from paper_trading.engine.dex.simulator import DexSimulator
from paper_trading.engine.tx.comparison import (
    BASELINE,
    StrategyFigures,
    compare,
    swaps_from_backtest,
)
from paper_trading.engine.tx.fee_path import ModelledFeePath
from paper_trading.engine.tx.gas_strategies import WAIT_DEADLINE_BLOCKS, WAIT_DISCOUNT_PERCENT
from paper_trading.management.arguments import (
    add_backtest_arguments,
    backtest_config,
    strategy_errors,
)
from paper_trading.management.tables import text_table

#: The transaction manager's gas savings over legacy pricing, as the design notes claim them.
CLAIMED_SAVINGS_PERCENT = Decimal("23.1")


class Command(BaseCommand):
    help = (
        "Backtest a strategy, then replay its trades under every gas strategy (legacy, slow, "
        "standard, fast, wait_for_cheaper) over the same EIP-1559 fee path and prices, and "
        "print gas paid, inclusion delay and revert rate side by side."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_backtest_arguments(
            parser,
            chain_default="ethereum",
            seed_help="seed of the fee path, prices and simulator",
        )
        parser.add_argument("--output", default="", help="write the figures as JSON here")

    def handle(self, *args: Any, **options: Any) -> None:
        config = backtest_config(options)
        try:
            prepared = prepare(config)
        except OptionError as exc:
            raise CommandError(str(exc)) from None
        output = Path(options["output"]) if options["output"] else None
        if output is not None and not output.parent.is_dir():  # before the runs, not after
            raise CommandError(f"--output: {output.parent} is not a folder")
        with strategy_errors():
            result = prepared.run()
        swaps = swaps_from_backtest(prepared, result)
        if not swaps:
            raise CommandError(
                f"--strategy: {prepared.strategy.name} made no trades in the period, so there is "
                "nothing to compare (try another strategy or a longer --from/--to)"
            )
        chain, seed = prepared.chain, config.seed
        simulator = DexSimulator(chain, seed=seed, pool_overrides=prepared.pool_overrides)
        figures = compare(swaps, simulator, ModelledFeePath(GasModel(chain, seed)), seed=seed)
        ticks = prepared.timeline[prepared.strategy.warmup_bars :]
        heading = (
            f"Gas strategies on {chain.name}: {len(swaps):,} swaps from {prepared.strategy.name} "
            f"({config.bar} bars {ticks[0]:%Y-%m-%d %H:%M} .. {ticks[-1]:%Y-%m-%d %H:%M} UTC), "
            f"modelled EIP-1559 fee path, seed {seed}"
        )
        self.stdout.write("\n".join([heading, "", *render(figures)]))
        if output is not None:
            document = {
                "chain": chain.slug,
                "strategy": prepared.strategy.name,
                "params": dict(config.params),
                "bar": config.bar,
                "period": [ticks[0].isoformat(), ticks[-1].isoformat()],
                "seed": seed,
                "swaps": len(swaps),
                "backtest_trades": len(result.trades),
                "claimed_savings_percent": str(CLAIMED_SAVINGS_PERCENT),
                "wait_for_cheaper": {
                    "discount_percent": WAIT_DISCOUNT_PERCENT,
                    "deadline_blocks": WAIT_DEADLINE_BLOCKS,
                },
                "strategies": [f.to_dict() for f in figures],
            }
            try:
                output.write_text(json.dumps(document, indent=2) + "\n")
            except OSError as exc:
                raise CommandError(f"--output: cannot write {output}: {exc}") from None
            self.stdout.write(f"JSON result: {output}")


def render(figures: list[StrategyFigures]) -> list[str]:
    """The side-by-side table, then the claimed savings next to the measured ones."""
    header = [
        "strategy",
        "txs",
        "included",
        "reverted",
        "dropped",
        "gas USD",
        "gas/included",
        "delay blocks mean/p95",
        "delay s mean/p95",
        f"vs {BASELINE}",
    ]
    rows = [
        [
            f.strategy,
            f"{f.transactions:,}",
            f"{f.included:,} ({f.included_rate:.1f}%)",
            f"{f.reverted:,} ({f.reverted_rate:.1f}%)",
            f"{f.dropped:,} ({f.dropped_rate:.1f}%)",
            f"${f.gas_usd:,.2f}",
            _optional(f.gas_per_included_usd, "${:,.4f}"),
            f"{_optional(f.mean_delay_blocks, '{:.2f}')} / {_optional(f.p95_delay_blocks, '{}')}",
            f"{_optional(f.mean_delay_seconds, '{:.1f}')} / "
            f"{_optional(f.p95_delay_seconds, '{:.0f}')}",
            _optional(f.savings_percent, "{:+.1f}%"),
        ]
        for f in figures
    ]
    measured = [f for f in figures if f.strategy != BASELINE and f.savings_percent is not None]
    lines = text_table(header, rows)
    lines += [
        "",
        "Savings = gas per included swap (reverts' burned gas included) against legacy; "
        f"wait_for_cheaper holds for a base fee {WAIT_DISCOUNT_PERCENT}% under the one at "
        f"decision, up to {WAIT_DEADLINE_BLOCKS} blocks.",
    ]
    if measured:
        best = max(measured, key=lambda f: f.savings_percent or Decimal(0))
        lines.append(
            f"Claimed: {CLAIMED_SAVINGS_PERCENT}% savings over legacy. Measured: best "
            f"{best.strategy} {best.savings_percent:+.1f}% ("
            + ", ".join(f"{f.strategy} {f.savings_percent:+.1f}%" for f in measured)
            + ")."
        )
    return lines


def _optional(value: object, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)

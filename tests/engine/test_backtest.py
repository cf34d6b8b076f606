"""Backtests on small price paths whose trades, P&L, fees and gas are worked out by hand.

The paths are under 50 bars, so the simulator sees no volatility and every swap lands at the
bar's price; the pool is Ethereum's ARB/USDC Uniswap V2 pool ($2M TVL: reserves of $1M each
side, re-centred at the price), so each fill is the constant-product formula

    out = floor(in * (1e6 - fee_pips) * reserve_out / (reserve_in * 1e6 + in * (1e6 - fee_pips)))

in base units (USDC 6 decimals, ARB 18).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import ClassVar

import pytest

from paper_trading.engine import money
from paper_trading.engine.backtest import BacktestConfig, OptionError, prepare
from paper_trading.engine.events import TradeStatus
from paper_trading.engine.prices.history_files import write_candles
from paper_trading.engine.strategies.base import (
    Action,
    Decision,
    MarketView,
    Parameter,
    Strategy,
)

D = Decimal
T0 = datetime(2026, 1, 5, tzinfo=UTC)
H = timedelta(hours=1)
ETH_USD = D(2000)
#: ARB's closes, one per hour; bought at bar 2 ($1.00), sold at bar 5 ($1.08).
ARB_PATH = ["1.00", "1.00", "1.02", "1.05", "1.08", "1.08"]


class BuyThenSell(Strategy):
    """Buys `size_usd` at bar `buy_bar` and sells everything at bar `sell_bar` (1-based)."""

    name = "buy_then_sell"
    parameters: ClassVar[Mapping[str, Parameter]] = {
        "buy_bar": Parameter(2, 1, 100),
        "sell_bar": Parameter(5, 1, 100),
        "size_usd": Parameter(1000, 10, 100_000),
    }

    def __init__(self, buy_bar: int, sell_bar: int, size_usd: int) -> None:
        self.buy_bar, self.sell_bar, self.size_usd = buy_bar, sell_bar, D(size_usd)

    def decide(self, view: MarketView) -> Decision:
        bar = len(view.history)
        action = {self.buy_bar: Action.BUY, self.sell_bar: Action.SELL}.get(bar, Action.HOLD)
        size = self.size_usd if action is Action.BUY else D(0)
        fraction = D(1) if action is Action.SELL else D(0)
        return Decision(action, view.symbol, size, fraction, D(90), D(10), D(50), f"bar {bar}")


STRATEGY = f"{__name__}.BuyThenSell"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    hours = [T0 + timedelta(hours=i + 1) for i in range(len(ARB_PATH))]
    write_candles(tmp_path, "ARB", "1h", list(zip(hours, map(D, ARB_PATH), strict=True)))
    write_candles(tmp_path, "ETH", "1h", [(h, ETH_USD) for h in hours])
    return tmp_path


def _config(data: Path, **changes: object) -> BacktestConfig:
    fields: dict[str, object] = {
        "strategy": STRATEGY,
        "chain": "ethereum",
        "tokens": ("ARB",),
        "data_dir": data,
    }
    return BacktestConfig(**{**fields, **changes})  # type: ignore[arg-type]


def _gas_usd(units: int, gwei: Decimal) -> Decimal:
    """Gas units x price per unit, in ETH, at the ETH price."""
    return money.usd(units * gwei / D(10) ** 9 * ETH_USD)


def test_a_round_trip_books_the_hand_computed_fills_fees_gas_and_pnl(data: Path) -> None:
    result = prepare(_config(data)).run()

    buy, sell = result.trades
    # Buy $1,000 at $1.00: reserves 1,000,000 USDC / 1,000,000 ARB, fee 0.3%.
    # out = 1000e6 * 997000 * 1e24 // (1e12 * 1e6 + 1000e6 * 997000) base units.
    assert (buy.side, buy.status, buy.created_at) == ("BUY", TradeStatus.EXECUTED, T0 + 2 * H)
    assert buy.amount_in == D(1000)
    assert buy.amount_out == D("996.006981039903216493")
    assert buy.fee_usd == D("3.00000000")  # 0.3% of $1,000
    assert buy.slippage_bps == 0  # no volatility: the swap lands at the quoted price
    # Gas: the swap's units at the modelled gas price, plus the one-off USDC approval.
    assert buy.approval_gas_usd > 0
    assert buy.gas_usd == _gas_usd(buy.gas_units, buy.gas_price_gwei) + buy.approval_gas_usd

    # Sell it all at $1.08: reserves 1,000,000 USDC / 925,925.925... ARB (1e6 / 1.08).
    assert (sell.side, sell.reason, sell.created_at) == ("SELL", "strategy", T0 + 5 * H)
    assert sell.amount_in == buy.amount_out
    assert sell.amount_out == D("1071.311537")
    # The fee is 0.3% of the ARB sold (2.988020943119709650 ARB) at $1.08.
    assert sell.fee_usd == D("3.22706262")
    assert sell.approval_gas_usd > 0  # ARB's approval, paid once on the first sale
    assert sell.gas_usd == _gas_usd(sell.gas_units, sell.gas_price_gwei) + sell.approval_gas_usd
    # Realized = proceeds + sale fee - cost basis (the $1,000 less the buy fee).
    assert sell.realized_pnl_usd == D("1071.311537") + D("3.22706262") - D(997)
    assert sell.realized_pnl_usd == D("77.53859962")
    gas = buy.gas_usd + sell.gas_usd
    assert sell.net_pnl_usd == D("77.53859962") - D("3.22706262") - D(3) - gas

    p = result.performance
    assert (p.total_trades, p.closed_trades, p.winning_trades) == (2, 1, 1)
    assert p.fees_usd == D("6.22706262")
    assert p.gas_usd == gas
    assert result.portfolio.total_value_usd == D(10_000) - D(1000) + D("1071.311537") - gas
    assert result.portfolio.positions_value_usd == 0

    # One equity point per bar; a position only during bars 2-4, valued at each close.
    values = [e.value_usd for e in result.equity]
    held = D("996.006981039903216493")
    cash_while_held = D(10_000) - D(1000) - buy.gas_usd
    assert values[0] == D(10_000)
    assert values[1:4] == [cash_while_held + money.usd(held * D(px)) for px in ARB_PATH[1:4]]
    assert values[4] == result.portfolio.total_value_usd == values[5]
    assert result.exposure_percent == money.ratio(
        sum(
            (money.usd(held * D(px)) / v for px, v in zip(ARB_PATH[1:4], values[1:4], strict=True)),
            D(0),
        )
        * 100
        / 6
    )
    (arb,) = result.per_token
    assert (arb.key, arb.trades, arb.closes, arb.wins) == ("ARB", 2, 1, 1)
    assert arb.fees_usd == p.fees_usd
    assert arb.realized_pnl_usd == D("77.53859962")


@pytest.mark.parametrize(
    ("fee_model", "fee_usd", "amount_out"),
    [
        # No fee: out = 1000e6 * 1e24 // (1e12 + 1000e6) base units.
        ("none", D(0), D("999.000999000999000999")),
        # 1%: out = 1000e6 * 990000 * 1e24 // (1e12 * 1e6 + 1000e6 * 990000).
        ("flat:100", D(10), D("989.020869339354039500")),
        ("pool", D(3), D("996.006981039903216493")),
    ],
)
def test_the_fee_model_sets_every_pool_fee(
    data: Path, fee_model: str, fee_usd: Decimal, amount_out: Decimal
) -> None:
    buy = prepare(_config(data, fee_model=fee_model)).run().trades[0]
    assert buy.fee_usd == fee_usd
    assert buy.amount_out == amount_out


def test_a_smaller_balance_and_another_seed_are_used(data: Path) -> None:
    result = prepare(_config(data, initial_balance_usd=D(5000), seed=7)).run()
    assert result.equity[0].value_usd == D(5000)
    assert result.portfolio.initial_balance_usd == D(5000)


@pytest.mark.parametrize(
    ("changes", "option", "words"),
    [
        ({"chain": "solana"}, "--chain", "unknown chain"),
        ({"strategy": "no_such"}, "--strategy", "unknown strategy"),
        ({"params": {"buy_bar": "x"}}, "--param", "not a number"),
        ({"params": {"nope": "1"}}, "--param", "no parameter nope"),
        ({"tokens": ("DOGE",)}, "--tokens", "unknown token"),
        ({"tokens": ("USDC",)}, "--tokens", "not tradable"),
        ({"tokens": ("UNI",)}, "--tokens", "no recorded 1h prices for UNI"),
        ({"fee_model": "flat:abc"}, "--fee-model", "flat:<bps>"),
        ({"fee_model": "flat:20000"}, "--fee-model", "under 10000"),
        ({"fee_model": "flat:0.001"}, "--fee-model", "finer"),
        ({"initial_balance_usd": D(0)}, "--initial-balance", "positive"),
        ({"bar": "7x"}, "--bar", "unsupported candle interval"),
        ({"bar": "15m"}, "--data", "no recorded price files"),
        ({"start": T0 + 3 * H, "end": T0 + H}, "--to", "not after --from"),
        ({"start": datetime(2030, 1, 1, tzinfo=UTC)}, "--from/--to", "has 0 1h bars"),
    ],
)
def test_bad_options_are_named(
    data: Path, changes: dict[str, object], option: str, words: str
) -> None:
    with pytest.raises(OptionError, match=words) as caught:
        prepare(_config(data, **changes))
    assert caught.value.option == option


def test_a_missing_data_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="is not a folder") as caught:
        prepare(_config(tmp_path / "nowhere"))
    assert caught.value.option == "--data"

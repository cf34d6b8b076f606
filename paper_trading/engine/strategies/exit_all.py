"""Sell everything and buy nothing: "close all positions" as a strategy.

A position can only be sold on its own chain, as in a wallet, so an account that holds tokens on
one chain and wants to trade on another first runs this there (`run_paper_bot --chain ethereum
--strategy exit_all --max-ticks 1`, or `bot/start` with `"strategy": "exit_all"`). Each held
token is sold whole at the next tick, through the same pools, fees and gas as any other swap.
"""

from __future__ import annotations

from paper_trading.engine import money
from paper_trading.engine.strategies.base import Action, Decision, MarketView, Strategy


class ExitAll(Strategy):
    """Sells every position whole at the first tick; holds otherwise."""

    name = "exit_all"

    def decide(self, view: MarketView) -> Decision:
        if view.position is None or view.position.quantity <= 0:
            return Decision(
                Action.HOLD,
                view.symbol,
                money.ZERO,
                money.ZERO,
                money.ratio(100),
                money.ZERO,
                money.ZERO,
                f"Closing all positions: no {view.symbol} held, nothing to sell: HOLD.",
            )
        return Decision(
            Action.SELL,
            view.symbol,
            money.ZERO,
            money.ONE,
            money.ratio(100),
            money.ZERO,
            money.ZERO,
            f"Closing all positions: selling all {view.position.quantity.normalize():f} "
            f"{view.symbol} (entered at ${view.position.average_entry_price_usd:,.4f}, "
            f"{view.position.unrealized_pnl_percent:+.2f}% now).",
        )

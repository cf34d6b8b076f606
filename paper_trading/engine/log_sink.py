"""Tagged log lines for people watching a bot in a terminal."""

from __future__ import annotations

import logging

from paper_trading.engine.events import (
    BreakerTripped,
    MetricsComputed,
    PositionChanged,
    PriceFeedChanged,
    PricesObserved,
    ThoughtLogged,
    TickResult,
    TradeExecuted,
    TradeStatus,
)


class LogSink:
    def __init__(self, logger: logging.Logger, source_label: str) -> None:
        self.logger = logger
        #: "REPLAY" or "LIVE": said on every price line so nobody mistakes one for the other.
        self.source_label = source_label

    def publish(self, result: TickResult) -> None:
        log = self.logger
        for event in result.events:
            if isinstance(event, PricesObserved):
                prices = ", ".join(f"{s} ${p:,.4f}" for s, (_, p) in sorted(event.prices.items()))
                log.debug(
                    "[PRICE] %s %s tick %d: %s",
                    self.source_label,
                    result.timestamp,
                    result.tick_number,
                    prices,
                )
            elif isinstance(event, PriceFeedChanged):
                if event.problem:
                    log.warning("[PRICE] %s", event.problem)
                else:
                    log.info("[PRICE] prices available again; trading resumes")
            elif isinstance(event, ThoughtLogged):
                t = event.thought
                level = logging.DEBUG if t.decision_type == "HOLD" else logging.INFO
                log.log(
                    level,
                    "[DECISION] %s %s %s (confidence %s, risk %s): %s",
                    result.timestamp,
                    t.decision_type,
                    t.symbol or "-",
                    t.confidence,
                    t.risk_score,
                    t.reasoning,
                )
            elif isinstance(event, TradeExecuted):
                tr = event.trade
                if tr.status is TradeStatus.REVERTED:
                    log.warning(
                        "[TRADE] %s %s %s REVERTED (%s); gas $%s paid",
                        result.timestamp,
                        tr.side,
                        tr.symbol,
                        tr.revert_reason,
                        tr.gas_usd,
                    )
                else:
                    log.info(
                        "[TRADE] %s %s %s %s -> %s %s @ $%s fee $%s impact %s bps gas $%s",
                        result.timestamp,
                        tr.side,
                        tr.amount_in,
                        tr.token_in,
                        tr.amount_out,
                        tr.token_out,
                        tr.execution_price_usd,
                        tr.fee_usd,
                        tr.price_impact_bps,
                        tr.gas_usd,
                    )
            elif isinstance(event, PositionChanged):
                p = event.position
                log.debug(
                    "[POSITION] %s %s qty %s value $%s unrealized $%s%s",
                    result.timestamp,
                    p.symbol,
                    p.quantity,
                    p.current_value_usd,
                    p.unrealized_pnl_usd,
                    "" if p.is_open else " (closed)",
                )
            elif isinstance(event, BreakerTripped):
                log.warning("[CIRCUIT BREAKER] %s: %s", event.code, event.message)
            elif isinstance(event, MetricsComputed):
                m = event.metrics
                log.info(
                    "[PERFORMANCE] value $%s P&L $%s (%s%%) trades %d win rate %s%% "
                    "max drawdown %s%% fees $%s gas $%s",
                    f"{m.portfolio_value_usd:,.2f}",
                    f"{m.total_pnl_usd:,.2f}",
                    f"{m.return_percent:.2f}",
                    m.total_trades,
                    f"{m.win_rate_percent:.2f}",
                    f"{m.max_drawdown_percent:.2f}",
                    f"{m.fees_usd:,.2f}",
                    f"{m.gas_usd:,.4f}",
                )

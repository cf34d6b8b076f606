"""Portfolio, key figures and performance of one account, from stored rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from paper_trading.models import (
    PaperPerformanceMetrics,
    PaperPosition,
    PaperTrade,
    PaperTradingAccount,
    PaperTradingSession,
)

ZERO = Decimal(0)


@dataclass(frozen=True)
class Portfolio:
    account: PaperTradingAccount
    positions: list[PaperPosition]
    positions_value_usd: Decimal
    unrealized_pnl_usd: Decimal

    @property
    def total_value_usd(self) -> Decimal:
        cash: Decimal = self.account.current_balance_usd
        return cash + self.positions_value_usd


def portfolio(account: PaperTradingAccount) -> Portfolio:
    positions = list(account.positions.filter(is_open=True).order_by("token_symbol"))
    return Portfolio(
        account=account,
        positions=positions,
        positions_value_usd=sum((p.current_value_usd for p in positions), ZERO),
        unrealized_pnl_usd=sum((p.unrealized_pnl_usd for p in positions), ZERO),
    )


def market_now(account: PaperTradingAccount) -> datetime:
    """The account's clock: its last tick (simulated time on replay), else the wall clock."""
    last = (
        PaperTradingSession.objects.filter(account=account)
        .exclude(last_tick_at=None)
        .order_by("-last_tick_at")
        .values_list("last_tick_at", flat=True)
        .first()
    )
    return last or timezone.now()


@dataclass(frozen=True)
class WindowStats:
    start: datetime
    end: datetime
    trades: int
    reverted: int
    volume_usd: Decimal
    fees_usd: Decimal
    gas_usd: Decimal


def last_24h(account: PaperTradingAccount) -> WindowStats:
    end = market_now(account)
    start = end - timedelta(hours=24)
    rows = list(
        PaperTrade.objects.filter(
            account=account, created_at__gt=start, created_at__lte=end
        ).values_list("status", "amount_in_usd", "swap_fee_usd", "gas_cost_usd")
    )
    return WindowStats(
        start=start,
        end=end,
        trades=len(rows),
        reverted=sum(1 for r in rows if r[0] == PaperTrade.Status.REVERTED),
        volume_usd=sum((r[1] for r in rows), ZERO),
        fees_usd=sum((r[2] for r in rows), ZERO),
        gas_usd=sum((r[3] for r in rows), ZERO),
    )


def latest_metrics(account: PaperTradingAccount) -> PaperPerformanceMetrics | None:
    return account.metrics.order_by("-computed_at").first()

"""Series and breakdowns for charts and exports."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from paper_trading.engine import money
from paper_trading.models import TRADE_DETAIL_FIELDS, PaperTrade, PaperTradingAccount

ZERO = Decimal(0)


@dataclass(frozen=True)
class EquityPoint:
    at: datetime
    value_usd: Decimal
    drawdown_percent: Decimal


def equity_curve(account: PaperTradingAccount) -> list[EquityPoint]:
    """Portfolio value at each metrics snapshot, with the drawdown from the running peak."""
    points: list[EquityPoint] = []
    peak = ZERO
    for at, value in account.metrics.order_by("computed_at").values_list(
        "computed_at", "portfolio_value_usd"
    ):
        peak = max(peak, value)
        drawdown = money.ratio((peak - value) / peak * 100) if peak else ZERO
        points.append(EquityPoint(at, value, drawdown))
    return points


@dataclass
class TokenResult:
    token: str
    trades: int = 0
    reverted: int = 0
    realized_pnl_usd: Decimal = ZERO
    net_pnl_usd: Decimal = ZERO
    fees_usd: Decimal = ZERO
    gas_usd: Decimal = ZERO
    volume_usd: Decimal = ZERO
    #: Closing trades (executed sells) and how many of them had a positive net P&L.
    closes: int = 0
    wins: int = 0


def per_token(account: PaperTradingAccount) -> list[TokenResult]:
    results: dict[str, TokenResult] = defaultdict(lambda: TokenResult(""))
    rows = PaperTrade.objects.filter(account=account).values_list(
        "token_symbol",
        "status",
        "side",
        "realized_pnl_usd",
        "net_pnl_usd",
        "swap_fee_usd",
        "gas_cost_usd",
        "amount_in_usd",
    )
    for symbol, status, side, realized, net, fee, gas, volume in rows:
        r = results[symbol]
        r.token = symbol
        r.trades += 1
        r.gas_usd += gas
        if status != PaperTrade.Status.EXECUTED:
            # A dropped swap cost nothing; a reverted one burned its gas.
            r.reverted += status == PaperTrade.Status.REVERTED
            continue
        r.realized_pnl_usd += realized
        r.fees_usd += fee
        r.volume_usd += volume
        if side == PaperTrade.Side.SELL:
            r.closes += 1
            r.wins += net > 0
    for r in results.values():
        # The ledger's definition: price P&L less every swap fee and every gas bill.
        r.net_pnl_usd = r.realized_pnl_usd - r.fees_usd - r.gas_usd
    return sorted(results.values(), key=lambda r: r.token)


@dataclass
class GasStrategyResult:
    """What one gas strategy cost: the analytics page's gas-per-strategy table."""

    strategy: str
    trades: int = 0
    gas_usd: Decimal = ZERO
    reverted: int = 0
    dropped: int = 0
    sandwiched: int = 0
    mev_cost_usd: Decimal = ZERO
    delay_blocks: int = 0

    @property
    def mean_inclusion_delay_blocks(self) -> Decimal:
        return money.ratio(Decimal(self.delay_blocks) / self.trades) if self.trades else ZERO

    @property
    def revert_rate_percent(self) -> Decimal:
        return self._rate(self.reverted)

    @property
    def drop_rate_percent(self) -> Decimal:
        return self._rate(self.dropped)

    def _rate(self, count: int) -> Decimal:
        return money.ratio(Decimal(count) * 100 / self.trades) if self.trades else ZERO


def per_gas_strategy(account: PaperTradingAccount) -> list[GasStrategyResult]:
    results: dict[str, GasStrategyResult] = {}
    rows = PaperTrade.objects.filter(account=account).values_list(
        "gas_strategy",
        "status",
        "gas_cost_usd",
        "inclusion_delay_blocks",
        "sandwiched",
        "mev_cost_usd",
    )
    for strategy, status, gas, delay, sandwiched, mev in rows:
        r = results.setdefault(strategy, GasStrategyResult(strategy))
        r.trades += 1
        r.gas_usd += gas
        r.delay_blocks += delay
        r.reverted += status == PaperTrade.Status.REVERTED
        r.dropped += status == PaperTrade.Status.DROPPED
        r.sandwiched += sandwiched
        r.mev_cost_usd += mev
    return sorted(results.values(), key=lambda r: r.strategy)


EXPORT_COLUMNS = [
    "trade_id",
    "created_at",
    "session_id",
    "chain_id",
    "token_symbol",
    *TRADE_DETAIL_FIELDS,
    "decision_id",
]


def export_rows(account: PaperTradingAccount) -> Iterator[list[object]]:
    yield list(EXPORT_COLUMNS)
    queryset = PaperTrade.objects.filter(account=account).order_by("created_at", "trade_id")
    for row in queryset.values_list(*EXPORT_COLUMNS).iterator(chunk_size=2000):
        yield list(row)

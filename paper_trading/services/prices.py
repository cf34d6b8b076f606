"""Prices for the app: CoinGecko behind the machine-wide cache, the `auto` choice, and history.

There is no fallback to invented prices anywhere: when live prices cannot be had, `auto` picks
the recorded replay for the whole session (and says so), and a live session pauses instead.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings
from django.db import transaction

from paper_trading.engine import money
from paper_trading.engine.chains import CHAINS, Chain, Token, get_chain
from paper_trading.engine.prices.cache import CachedPriceSource
from paper_trading.engine.prices.coingecko import CoinGeckoClient, CoinGeckoConfig, CoinGeckoSource
from paper_trading.engine.prices.feed import PriceUnavailableError
from paper_trading.models import (
    PaperPosition,
    PaperTradingAccount,
    PaperTradingSession,
    PriceHistory,
)
from paper_trading.price_store import DjangoSharedStore

logger = logging.getLogger("paper_trading.prices")

LIVE = PaperTradingSession.PriceSource.LIVE
REPLAY = PaperTradingSession.PriceSource.REPLAY
ACTIVE = (PaperTradingSession.Status.RUNNING, PaperTradingSession.Status.PAUSED)


def tracked_tokens() -> list[Token]:
    """Every priced token of every chain, once per CoinGecko id: one call prices them all."""
    seen: dict[str, Token] = {}
    for chain in CHAINS.values():
        for token in chain.tradable_tokens:
            seen.setdefault(token.coingecko_id, token)
    return list(seen.values())


def live_source() -> CachedPriceSource:
    config = CoinGeckoConfig.from_env(os.environ)
    return CachedPriceSource(
        CoinGeckoSource(CoinGeckoClient(config), tracked_tokens()),
        DjangoSharedStore(),
        ttl_seconds=settings.PRICE_CACHE_TTL_SECONDS,
        calls_per_minute=settings.COINGECKO_CALLS_PER_MINUTE,
        base_backoff_seconds=settings.PRICE_BACKOFF_BASE_SECONDS,
        max_backoff_seconds=settings.PRICE_BACKOFF_MAX_SECONDS,
    )


@dataclass(frozen=True)
class SourceChoice:
    source: str
    #: Why, for the log and the session: shown to the user at start.
    note: str


def choose_price_source(requested: str) -> SourceChoice:
    """Resolve `auto` once, at session start: live if CoinGecko answers now, else replay."""
    if requested != "auto":
        return SourceChoice(requested, f"{requested.upper()}: chosen when the bot was started")
    source = live_source()
    try:
        snapshot = source.fetch(source.symbols_available(), datetime.now(UTC))
    except PriceUnavailableError as exc:
        reason = str(exc.__cause__ or exc).removeprefix("price feed unavailable: ")
    else:
        if snapshot.prices:
            return SourceChoice(LIVE, "LIVE: prices from CoinGecko")
        reason = "CoinGecko returned no prices"
    return SourceChoice(
        REPLAY,
        f"REPLAY: live prices are unavailable ({reason}); replaying recorded real prices "
        "instead. This session stays on replay.",
    )


class DatabasePriceHistory:
    """Warm-up history for live sessions: the prices the app recorded before."""

    def __init__(self, chain: Chain, source: str = "coingecko") -> None:
        self.chain = chain
        self.source = source
        self._symbols: dict[str, str] = {}
        for token in chain.tradable_tokens:
            self._symbols.setdefault(token.price_symbol, token.symbol)

    def history(self, symbol: str, until: datetime, limit: int) -> list[tuple[datetime, Decimal]]:
        token = self._symbols.get(symbol)
        if token is None:
            return []
        rows = (
            PriceHistory.objects.filter(
                chain_id=self.chain.chain_id,
                token_symbol=token,
                source=self.source,
                timestamp__lte=until,
            )
            .order_by("-timestamp")
            .values_list("timestamp", "price_usd")[:limit]
        )
        return list(reversed(rows))


@dataclass
class RevaluationReport:
    updated: int = 0
    #: "ACCOUNT TOKEN: reason" for each position that could not be revalued.
    failed: list[str] = field(default_factory=list)
    #: Why nothing was revalued at all ("" when prices came).
    problem: str = ""


def update_all_position_prices(now: datetime | None = None) -> RevaluationReport:
    """Revalue every open live position from one bulk price fetch.

    Positions of accounts whose live bot is running are left to that bot (it revalues every tick);
    replay positions keep their replay prices. One position's failure does not stop the others.
    """
    report = RevaluationReport()
    now = now or datetime.now(UTC)
    busy = PaperTradingSession.objects.filter(status__in=ACTIVE, price_source=LIVE).values(
        "account_id"
    )
    positions = list(
        PaperPosition.objects.filter(is_open=True, session__price_source=LIVE)
        .exclude(account_id__in=busy)
        .select_related("account")
    )
    if not positions:
        return report
    source = live_source()
    try:
        snapshot = source.fetch(source.symbols_available(), now)
    except PriceUnavailableError as exc:
        report.problem = str(exc)
        logger.warning("[POSITION UPDATER] not revaluing: %s", exc)
        return report
    accounts: set[PaperTradingAccount] = set()
    for position in positions:
        try:
            token = get_chain(position.chain_id).token(position.token_symbol)
            quote = snapshot.prices.get(token.price_symbol)
            if quote is None:
                reason = snapshot.unavailable.get(token.price_symbol, "no price")
                raise PriceUnavailableError(reason)
            _revalue(position, quote.price_usd)
            accounts.add(position.account)
            report.updated += 1
        except Exception as exc:  # isolate: one bad position must not stop the rest
            report.failed.append(f"{position.account.name} {position.token_symbol}: {exc}")
    for account in accounts:
        _refresh_account_pnl(account)
    logger.info(
        "[POSITION UPDATER] revalued %d positions, %d failed", report.updated, len(report.failed)
    )
    return report


def _revalue(position: PaperPosition, price_usd: Decimal) -> None:
    position.current_price_usd = price_usd
    position.current_value_usd = money.usd(money.mul(position.quantity, price_usd))
    position.unrealized_pnl_usd = position.current_value_usd - position.cost_basis_usd
    position.peak_price_usd = max(position.peak_price_usd, price_usd)
    position.save(
        update_fields=[
            "current_price_usd",
            "current_value_usd",
            "unrealized_pnl_usd",
            "peak_price_usd",
            "updated_at",
        ]
    )


def _refresh_account_pnl(account: PaperTradingAccount) -> None:
    with transaction.atomic():
        fresh = PaperTradingAccount.objects.select_for_update().get(pk=account.pk)
        value = sum((p.current_value_usd for p in fresh.positions.filter(is_open=True)), Decimal(0))
        fresh.total_pnl_usd = fresh.current_balance_usd + value - fresh.initial_balance_usd
        fresh.save(update_fields=["total_pnl_usd", "updated_at"])

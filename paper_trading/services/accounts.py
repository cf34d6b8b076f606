"""Accounts and their strategy configuration."""

from __future__ import annotations

from decimal import Decimal

from django.contrib.auth.models import User
from django.db import transaction

from paper_trading.engine import money
from paper_trading.engine.config import TradingConfig
from paper_trading.models import PaperStrategyConfiguration, PaperTradingAccount

DEFAULT_INITIAL_BALANCE = Decimal(10_000)


@transaction.atomic
def create_account(
    user: User, name: str, initial_balance_usd: Decimal = DEFAULT_INITIAL_BALANCE
) -> PaperTradingAccount:
    balance = money.usd(initial_balance_usd)
    if balance <= 0:
        raise ValueError("initial_balance_usd must be positive")
    account = PaperTradingAccount.objects.create(
        user=user, name=name, initial_balance_usd=balance, current_balance_usd=balance
    )
    PaperStrategyConfiguration.objects.create(account=account)
    return account


def trading_config(account: PaperTradingAccount) -> TradingConfig:
    """The engine's view of the account's configuration, read fresh (called every tick)."""
    row, _ = PaperStrategyConfiguration.objects.get_or_create(account=account)
    return TradingConfig(
        max_position_size_percent=row.max_position_size_percent,
        stop_loss_percent=row.stop_loss_percent,
        take_profit_percent=row.take_profit_percent,
        trailing_stop_percent=row.trailing_stop_percent
        if row.trailing_stop_enabled
        else Decimal(0),
        max_hold_hours=row.max_hold_hours,
        max_daily_trades=row.max_daily_trades,
        confidence_threshold=row.confidence_threshold,
        slippage_tolerance_percent=row.slippage_tolerance_percent,
        min_trade_usd=row.min_trade_usd,
        max_portfolio_loss_percent=row.max_portfolio_loss_percent,
        daily_loss_limit_percent=row.daily_loss_limit_percent,
        max_consecutive_failures=row.max_consecutive_failures,
        min_balance_usd=row.min_balance_usd,
        allowed_tokens=tuple(str(s).upper() for s in row.allowed_tokens or ()),
        gas_strategy=row.gas_strategy,
        private_routing=row.private_routing,
    )


@transaction.atomic
def reset_account(account: PaperTradingAccount) -> PaperTradingAccount:
    """Start the account over: its history goes, its balance returns to the initial one."""
    if account.sessions.filter(status="RUNNING").exists():
        raise ValueError("stop the running bot before resetting the account")
    account.trades.all().delete()
    account.thoughts.all().delete()
    account.metrics.all().delete()
    account.positions.all().delete()
    account.sessions.all().delete()
    account.current_balance_usd = account.initial_balance_usd
    account.realized_pnl_usd = Decimal(0)
    account.total_fees_usd = Decimal(0)
    account.total_gas_usd = Decimal(0)
    account.total_pnl_usd = Decimal(0)
    account.save()
    return account

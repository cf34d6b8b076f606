"""Admin pages: every trade shows its fee, price impact, gas and revert status at a glance."""

from __future__ import annotations

from django.contrib import admin

from paper_trading.models import (
    PaperAIThoughtLog,
    PaperPerformanceMetrics,
    PaperPosition,
    PaperStrategyConfiguration,
    PaperTrade,
    PaperTradingAccount,
    PaperTradingSession,
    PriceHistory,
)


@admin.register(PaperTradingAccount)
class PaperTradingAccountAdmin(admin.ModelAdmin[PaperTradingAccount]):
    list_display = (
        "name",
        "user",
        "initial_balance_usd",
        "current_balance_usd",
        "realized_pnl_usd",
        "total_fees_usd",
        "total_gas_usd",
        "total_pnl_usd",
        "is_active",
    )
    list_filter = ("is_active",)
    search_fields = ("name", "user__username")


@admin.register(PaperTradingSession)
class PaperTradingSessionAdmin(admin.ModelAdmin[PaperTradingSession]):
    list_display = (
        "__str__",
        "account",
        "status",
        "price_source",
        "chain_id",
        "intel_level",
        "total_ticks",
        "total_trades",
        "failed_trades",
        "last_tick_at",
        "started_at",
    )
    list_filter = ("status", "price_source", "chain_id", "intel_level")
    readonly_fields = ("engine_state", "tripped_breakers")


@admin.register(PaperPosition)
class PaperPositionAdmin(admin.ModelAdmin[PaperPosition]):
    list_display = (
        "token_symbol",
        "account",
        "chain_id",
        "quantity",
        "average_entry_price_usd",
        "current_price_usd",
        "current_value_usd",
        "unrealized_pnl_usd",
        "realized_pnl_usd",
        "is_open",
        "opened_at",
    )
    list_filter = ("is_open", "chain_id", "token_symbol")


@admin.register(PaperTrade)
class PaperTradeAdmin(admin.ModelAdmin[PaperTrade]):
    list_display = (
        "created_at",
        "account",
        "side",
        "token_symbol",
        "status",
        "reason",
        "amount_in",
        "amount_out",
        "execution_price_usd",
        "swap_fee_usd",
        "price_impact_bps",
        "slippage_bps",
        "gas_cost_usd",
        "net_pnl_usd",
    )
    list_filter = ("status", "side", "reason", "token_symbol", "chain_id")
    search_fields = ("token_symbol", "revert_reason")
    raw_id_fields = ("decision", "position", "session")


@admin.register(PaperAIThoughtLog)
class PaperAIThoughtLogAdmin(admin.ModelAdmin[PaperAIThoughtLog]):
    list_display = (
        "created_at",
        "account",
        "token_symbol",
        "decision_type",
        "confidence_level",
        "risk_assessment",
        "opportunity_score",
        "short_reasoning",
    )
    list_filter = ("decision_type", "token_symbol", "strategy_name")
    search_fields = ("reasoning",)

    @admin.display(description="reasoning")
    def short_reasoning(self, obj: PaperAIThoughtLog) -> str:
        return obj.reasoning if len(obj.reasoning) <= 120 else obj.reasoning[:117] + "..."


@admin.register(PaperPerformanceMetrics)
class PaperPerformanceMetricsAdmin(admin.ModelAdmin[PaperPerformanceMetrics]):
    list_display = (
        "computed_at",
        "account",
        "portfolio_value_usd",
        "total_pnl_usd",
        "win_rate",
        "sharpe_ratio",
        "max_drawdown_percent",
        "profit_factor",
        "total_trades",
    )
    list_filter = ("account",)


@admin.register(PaperStrategyConfiguration)
class PaperStrategyConfigurationAdmin(admin.ModelAdmin[PaperStrategyConfiguration]):
    list_display = (
        "account",
        "max_position_size_percent",
        "stop_loss_percent",
        "take_profit_percent",
        "trailing_stop_enabled",
        "max_hold_hours",
        "max_daily_trades",
        "confidence_threshold",
    )


@admin.register(PriceHistory)
class PriceHistoryAdmin(admin.ModelAdmin[PriceHistory]):
    list_display = ("timestamp", "token_symbol", "chain_id", "source", "price_usd")
    list_filter = ("source", "chain_id", "token_symbol")


# Sign-in records. Keys are stored only as hashes; nonces and wallets are written by sign-in.
from paper_trading.models import ApiToken, SiweNonce, WalletIdentity  # noqa: E402


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin[ApiToken]):
    list_display = ("name", "user", "prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix", "user__username")
    readonly_fields = ("token_id", "prefix", "key_hash", "created_at", "last_used_at")
    raw_id_fields = ("user",)


@admin.register(WalletIdentity)
class WalletIdentityAdmin(admin.ModelAdmin[WalletIdentity]):
    list_display = ("address", "user", "last_login_chain_id", "created_at")
    search_fields = ("address", "user__username")
    readonly_fields = ("address", "created_at", "last_login_chain_id")
    raw_id_fields = ("user",)


@admin.register(SiweNonce)
class SiweNonceAdmin(admin.ModelAdmin[SiweNonce]):
    list_display = ("nonce", "created_at", "expires_at", "used_at")
    readonly_fields = ("nonce", "created_at", "expires_at", "used_at")

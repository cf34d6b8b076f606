"""Request and response shapes of the trading API. Money is a decimal string, never a float."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from paper_trading.engine import money
from paper_trading.engine.chains import CHAINS, get_chain
from paper_trading.engine.schedule import MAX_SPEED, MIN_SPEED, SPEED_RANGE_TEXT
from paper_trading.engine.strategies.catalog import BUILTIN, StrategyChoiceError, resolve_strategy
from paper_trading.engine.strategies.intel_slider import IntelSliderEngine
from paper_trading.engine.tx.lifecycle import TxState
from paper_trading.models import (
    TRADE_DETAIL_FIELDS,
    PaperAIThoughtLog,
    PaperPosition,
    PaperStrategyConfiguration,
    PaperTrade,
    PaperTradingAccount,
    PaperTradingSession,
)
from paper_trading.selectors import portfolio as portfolio_selectors


def _usd(**kwargs: Any) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=30, decimal_places=8, **kwargs)


def _ratio(**kwargs: Any) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=20, decimal_places=4, **kwargs)


ALL_TOKENS = sorted({t.symbol for c in CHAINS.values() for t in c.tradable_tokens})


class AccountSerializer(serializers.ModelSerializer[PaperTradingAccount]):
    class Meta:
        model = PaperTradingAccount
        fields = [
            "account_id",
            "name",
            "initial_balance_usd",
            "current_balance_usd",
            "realized_pnl_usd",
            "total_fees_usd",
            "total_gas_usd",
            "total_pnl_usd",
            "is_active",
            "created_at",
        ]
        read_only_fields = fields


class AccountCreateSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(min_length=1, max_length=100)
    initial_balance_usd = _usd(
        min_value=Decimal(100), max_value=money.MAX_INITIAL_BALANCE_USD, default=Decimal(10_000)
    )


class PositionSerializer(serializers.ModelSerializer[PaperPosition]):
    class Meta:
        model = PaperPosition
        fields = [
            "position_id",
            "session",
            "token_symbol",
            "token_address",
            "chain_id",
            "quantity",
            "average_entry_price_usd",
            "cost_basis_usd",
            "entry_costs_usd",
            "current_price_usd",
            "current_value_usd",
            "unrealized_pnl_usd",
            "realized_pnl_usd",
            "peak_price_usd",
            "is_open",
            "opened_at",
            "closed_at",
            "updated_at",
        ]
        read_only_fields = fields


class TransactionEventSerializer(serializers.Serializer[Any]):
    """One state change of a trade's paper transaction; fees are in gwei per gas."""

    state = serializers.ChoiceField(choices=[s.value for s in TxState])
    attempt = serializers.IntegerField(min_value=0, help_text="0, then +1 per replacement.")
    block = serializers.IntegerField()
    at = serializers.DateTimeField()
    max_fee_gwei = serializers.DecimalField(max_digits=40, decimal_places=9)
    max_priority_fee_gwei = serializers.DecimalField(max_digits=40, decimal_places=9)
    base_fee_gwei = serializers.DecimalField(max_digits=40, decimal_places=9)
    reason = serializers.CharField()


class TradeSerializer(serializers.ModelSerializer[PaperTrade]):
    transactions = TransactionEventSerializer(
        many=True,
        read_only=True,
        help_text="The transaction's state changes; empty for the simulator gas strategy.",
    )

    class Meta:
        model = PaperTrade
        fields = [
            "trade_id",
            "created_at",
            "session",
            "position",
            "decision",
            "chain_id",
            "token_symbol",
            "token_address",
            *TRADE_DETAIL_FIELDS,
            "transactions",
        ]
        read_only_fields = fields


class TradePageSerializer(serializers.Serializer[Any]):
    """One cursor page of trades: follow `next` (or `previous`) as given."""

    next = serializers.URLField(allow_null=True, help_text="The next page, or null at the end.")
    previous = serializers.URLField(allow_null=True, help_text="The previous page, or null.")
    results = TradeSerializer(many=True)


class ThoughtSerializer(serializers.ModelSerializer[PaperAIThoughtLog]):
    class Meta:
        model = PaperAIThoughtLog
        fields = [
            "thought_id",
            "created_at",
            "session",
            "token_symbol",
            "decision_type",
            "confidence_level",
            "risk_assessment",
            "opportunity_score",
            "reasoning",
            "market_data",
            "strategy_name",
        ]
        read_only_fields = fields


class SessionSerializer(serializers.ModelSerializer[PaperTradingSession]):
    class Meta:
        model = PaperTradingSession
        fields = [
            "session_id",
            "account",
            "name",
            "status",
            "status_reason",
            "intel_level",
            "strategy_name",
            "strategy_params",
            "chain_id",
            "price_source",
            "price_source_note",
            "bar_interval",
            "tick_interval_seconds",
            "speed",
            "started_at",
            "ended_at",
            "last_tick_at",
            "heartbeat_at",
            "total_ticks",
            "total_trades",
            "successful_trades",
            "failed_trades",
            "total_thoughts",
            "tripped_breakers",
            "starting_balance_usd",
            "ending_value_usd",
            "stop_requested",
            "stop_reason",
        ]
        read_only_fields = fields


class ConfigurationSerializer(serializers.ModelSerializer[PaperStrategyConfiguration]):
    allowed_tokens = serializers.ListField(
        child=serializers.ChoiceField(choices=ALL_TOKENS), required=False, max_length=50
    )

    class Meta:
        model = PaperStrategyConfiguration
        exclude = ["config_id", "account"]
        read_only_fields = ["updated_at"]


# -- query parameters ---------------------------------------------------------------------


class AccountQuerySerializer(serializers.Serializer[Any]):
    account = serializers.UUIDField(required=False, help_text="Defaults to your first account.")


class ThoughtQuerySerializer(AccountQuerySerializer):
    limit = serializers.IntegerField(min_value=1, max_value=500, default=50)
    since = serializers.DateTimeField(required=False)
    decision_type = serializers.ChoiceField(
        choices=PaperAIThoughtLog.DecisionType.choices, required=False
    )
    token = serializers.CharField(max_length=20, required=False)


class TradeQuerySerializer(AccountQuerySerializer):
    status = serializers.ChoiceField(choices=PaperTrade.Status.choices, required=False)
    token = serializers.CharField(max_length=20, required=False)
    side = serializers.ChoiceField(choices=PaperTrade.Side.choices, required=False)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("since") and attrs.get("until") and attrs["since"] > attrs["until"]:
            raise serializers.ValidationError({"until": ["must not be before since"]})
        return attrs


class RecentQuerySerializer(AccountQuerySerializer):
    limit = serializers.IntegerField(min_value=1, max_value=200, default=20)


class PriceQuerySerializer(serializers.Serializer[Any]):
    chain = serializers.CharField(default="base", help_text="Chain slug or id.")

    def validate_chain(self, value: str) -> int:
        try:
            return get_chain(value).chain_id
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None


# -- bot control ----------------------------------------------------------------------------


@extend_schema_field(
    {
        "oneOf": [
            {"type": "number", "minimum": int(MIN_SPEED), "maximum": int(MAX_SPEED)},
            {"type": "string", "enum": ["max"]},
        ],
        "description": 'Replay clock multiplier (1 = real time), or "max" for as fast as possible.',
    }
)
class SpeedField(serializers.Field[Decimal | None, str, str | None, Any]):
    """A replay clock multiplier in the range bots accept, or "max" for as fast as possible."""

    def to_internal_value(self, data: Any) -> Decimal | None:
        if isinstance(data, str) and data.strip().lower() == "max":
            return None
        try:
            value = Decimal(str(data))
        except ArithmeticError:
            raise serializers.ValidationError(f"must be {SPEED_RANGE_TEXT}") from None
        if not value.is_finite() or not MIN_SPEED <= value <= MAX_SPEED:
            raise serializers.ValidationError(f"must be {SPEED_RANGE_TEXT}")
        return value

    def to_representation(self, value: Decimal | None) -> str | None:
        return "max" if value is None else str(value)


class BotStartSerializer(AccountQuerySerializer):
    intel_level = serializers.IntegerField(min_value=1, max_value=10, default=5)
    chain = serializers.CharField(default="base")
    prices = serializers.ChoiceField(choices=["auto", "live", "replay"], default="auto")
    speed = SpeedField(default=Decimal(3600), help_text='Replay clock multiplier or "max".')
    runtime_minutes = serializers.FloatField(min_value=0.1, max_value=60 * 24 * 30, required=False)
    strategy_config = ConfigurationSerializer(required=False, partial=True)
    strategy = serializers.ChoiceField(
        choices=sorted(BUILTIN),
        default=IntelSliderEngine.name,
        # Loading a module or file would run arbitrary code; that stays on the command line.
        help_text="A built-in strategy; your own module or file runs with run_paper_bot.",
    )
    strategy_params = serializers.DictField(
        child=serializers.JSONField(),
        default=dict,
        help_text="The strategy's parameters by name (intel_slider's level defaults to "
        "intel_level); unset ones take their defaults.",
    )

    def validate_chain(self, value: str) -> int:
        try:
            return get_chain(value).chain_id
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Resolve the strategy choice now, so a bad parameter is a 400 naming its field."""
        try:
            choice = resolve_strategy(
                attrs["strategy"], attrs["strategy_params"], attrs["intel_level"]
            )
        except StrategyChoiceError as exc:
            raise serializers.ValidationError({exc.field: [exc.message]}) from None
        return {**attrs, "strategy_params": choice.params, "intel_level": choice.intel_level}


class BotStopSerializer(AccountQuerySerializer):
    reason = serializers.CharField(max_length=200, default="stopped from the API")


class BotStatusSerializer(serializers.Serializer[Any]):
    account = serializers.UUIDField()
    running = serializers.BooleanField()
    active = SessionSerializer(allow_null=True)
    recent = SessionSerializer(many=True)


# -- figures ------------------------------------------------------------------------------


class PortfolioSerializer(serializers.Serializer[Any]):
    account = AccountSerializer()
    cash_usd = _usd()
    positions_value_usd = _usd()
    total_value_usd = _usd()
    unrealized_pnl_usd = _usd()
    realized_pnl_usd = _usd()
    fees_usd = _usd()
    gas_usd = _usd()
    total_pnl_usd = _usd()
    positions = PositionSerializer(many=True)


def portfolio_data(account: PaperTradingAccount) -> dict[str, Any]:
    """The account's portfolio exactly as ``GET portfolio/`` returns it."""
    book = portfolio_selectors.portfolio(account)
    a = book.account
    return dict(
        PortfolioSerializer(
            {
                "account": a,
                "cash_usd": a.current_balance_usd,
                "positions_value_usd": book.positions_value_usd,
                "total_value_usd": book.total_value_usd,
                "unrealized_pnl_usd": book.unrealized_pnl_usd,
                "realized_pnl_usd": a.realized_pnl_usd,
                "fees_usd": a.total_fees_usd,
                "gas_usd": a.total_gas_usd,
                "total_pnl_usd": book.total_value_usd - a.initial_balance_usd,
                "positions": book.positions,
            }
        ).data
    )


class WindowSerializer(serializers.Serializer[Any]):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    trades = serializers.IntegerField()
    reverted = serializers.IntegerField()
    volume_usd = _usd()
    fees_usd = _usd()
    gas_usd = _usd()


class MetricsSerializer(serializers.Serializer[Any]):
    account = serializers.UUIDField()
    portfolio_value_usd = _usd()
    cash_usd = _usd()
    total_pnl_usd = _usd()
    return_percent = _ratio()
    realized_pnl_usd = _usd()
    unrealized_pnl_usd = _usd()
    open_positions = serializers.IntegerField()
    total_trades = serializers.IntegerField()
    win_rate_percent = _ratio(allow_null=True)
    last_24h = WindowSerializer()


class PerformanceSerializer(serializers.Serializer[Any]):
    account = serializers.UUIDField()
    computed_at = serializers.DateTimeField(allow_null=True)
    sharpe_ratio = _ratio(allow_null=True)
    sortino_ratio = _ratio(allow_null=True)
    max_drawdown_percent = _ratio(allow_null=True)
    profit_factor = _ratio(allow_null=True)
    win_rate_percent = _ratio(allow_null=True)
    closed_trades = serializers.IntegerField()
    winning_trades = serializers.IntegerField()
    losing_trades = serializers.IntegerField()
    best_trade_usd = _usd(allow_null=True)
    worst_trade_usd = _usd(allow_null=True)
    total_fees_usd = _usd()
    total_gas_usd = _usd()
    total_trades = serializers.IntegerField()
    reverted_trades = serializers.IntegerField()


class PriceSerializer(serializers.Serializer[Any]):
    token_symbol = serializers.CharField()
    chain_id = serializers.IntegerField()
    price_usd = serializers.DecimalField(max_digits=40, decimal_places=18)
    price_source = serializers.CharField()
    observed_at = serializers.DateTimeField()
    age_seconds = serializers.FloatField()
    change_24h_percent = _ratio(allow_null=True)


class EquityPointSerializer(serializers.Serializer[Any]):
    at = serializers.DateTimeField()
    value_usd = _usd()
    drawdown_percent = _ratio()


class TokenResultSerializer(serializers.Serializer[Any]):
    token = serializers.CharField()
    trades = serializers.IntegerField()
    reverted = serializers.IntegerField()
    closes = serializers.IntegerField()
    wins = serializers.IntegerField()
    realized_pnl_usd = _usd()
    net_pnl_usd = _usd()
    fees_usd = _usd()
    gas_usd = _usd()
    volume_usd = _usd()


class GasStrategyResultSerializer(serializers.Serializer[Any]):
    """One row of the analytics page's gas-per-strategy table, with the counts behind its rates."""

    strategy = serializers.CharField()
    trades = serializers.IntegerField()
    gas_usd = _usd()
    mean_inclusion_delay_blocks = _ratio()
    reverted = serializers.IntegerField()
    revert_rate_percent = _ratio()
    dropped = serializers.IntegerField()
    drop_rate_percent = _ratio()
    sandwiched = serializers.IntegerField()
    mev_cost_usd = _usd()


class AnalyticsSerializer(serializers.Serializer[Any]):
    account = serializers.UUIDField()
    equity = EquityPointSerializer(many=True)
    per_token = TokenResultSerializer(many=True)
    per_gas_strategy = GasStrategyResultSerializer(many=True)

"""The paper-trading ledger as stored: accounts, sessions, positions, trades, thoughts, metrics.

Money columns are `ExactDecimalField`s with the engine's precision (see `engine.money`), so
what the engine computed is what the database returns, to the last digit.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from paper_trading.engine import money
from paper_trading.engine.chains import CHAINS, DEFAULT_CHAIN_ID
from paper_trading.engine.config import GAS_STRATEGIES, SIMULATOR_GAS_STRATEGY
from paper_trading.fields import ExactDecimalField

CHAIN_CHOICES = [(c.chain_id, c.name) for c in CHAINS.values()]
GAS_STRATEGY_CHOICES = [(name, name.replace("_", " ")) for name in GAS_STRATEGIES]


def usd_field(**kwargs: Any) -> ExactDecimalField:
    kwargs.setdefault("default", Decimal(0))
    return ExactDecimalField(
        max_digits=money.USD_MAX_DIGITS, decimal_places=money.USD_PLACES, **kwargs
    )


def qty_field(**kwargs: Any) -> ExactDecimalField:
    kwargs.setdefault("default", Decimal(0))
    return ExactDecimalField(
        max_digits=money.QTY_MAX_DIGITS, decimal_places=money.QTY_PLACES, **kwargs
    )


def price_field(**kwargs: Any) -> ExactDecimalField:
    kwargs.setdefault("default", Decimal(0))
    return ExactDecimalField(
        max_digits=money.PRICE_MAX_DIGITS, decimal_places=money.PRICE_PLACES, **kwargs
    )


def ratio_field(**kwargs: Any) -> models.DecimalField:  # type: ignore[type-arg]
    kwargs.setdefault("default", Decimal(0))
    return models.DecimalField(max_digits=20, decimal_places=money.RATIO_PLACES, **kwargs)


class PaperTradingAccount(models.Model):
    account_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="paper_accounts"
    )
    name = models.CharField(max_length=100)
    initial_balance_usd = usd_field(default=Decimal(10_000))
    #: Cash (the USD stablecoin) not in positions.
    current_balance_usd = usd_field(default=Decimal(10_000))
    realized_pnl_usd = usd_field()
    total_fees_usd = usd_field()
    total_gas_usd = usd_field()
    #: Net result: cash + positions at market value - initial balance.
    total_pnl_usd = usd_field()
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "name"], name="unique_account_name_per_user")
        ]
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.user})"


class PaperTradingSession(models.Model):
    class Status(models.TextChoices):
        RUNNING = "RUNNING"
        PAUSED = "PAUSED"
        STOPPED = "STOPPED"
        COMPLETED = "COMPLETED"
        FAILED = "FAILED"

    class PriceSource(models.TextChoices):
        REPLAY = "replay", "Replay of recorded prices"
        SYNTHETIC = "synthetic", "Synthetic (tests only)"
        LIVE = "live", "Live"

    session_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(
        PaperTradingAccount, on_delete=models.CASCADE, related_name="sessions"
    )
    name = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    #: Why the session is in its status: a tripped breaker, a feed outage, the stop reason.
    status_reason = models.TextField(blank=True)
    intel_level = models.PositiveSmallIntegerField(
        default=5, validators=[MinValueValidator(1), MaxValueValidator(10)]
    )
    #: What `catalog.build_strategy` takes: a built-in's name, package.module.Class or
    #: path/file.py:Class, and every declared parameter's value (defaults filled in).
    strategy_name = models.CharField(max_length=200, default="intel_slider")
    strategy_params = models.JSONField(default=dict, blank=True)
    chain_id = models.PositiveIntegerField(choices=CHAIN_CHOICES, default=DEFAULT_CHAIN_ID)
    price_source = models.CharField(max_length=10, choices=PriceSource.choices)
    #: Why this price source: e.g. "REPLAY: live prices are unavailable (...)". Shown at start.
    price_source_note = models.TextField(blank=True)
    #: Replay: the candle interval ("1h", "15m"). Live/synthetic: seconds between ticks.
    bar_interval = models.CharField(max_length=10, default="1h")
    #: Replay: a folder of candle files (empty: the shipped recording) and the period to replay.
    data_dir = models.CharField(max_length=500, blank=True)
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    tick_interval_seconds = models.PositiveIntegerField(default=3600)
    #: Replay clock multiplier; empty means as fast as possible.
    speed = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    seed = models.BigIntegerField(default=0)
    started_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    #: Market time of the last committed tick (simulated time on replay).
    last_tick_at = models.DateTimeField(null=True, blank=True)
    #: Wall time of the last committed tick: a RUNNING session with an old heartbeat is dead.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker_host = models.CharField(max_length=255, blank=True)
    worker_pid = models.PositiveIntegerField(null=True, blank=True)
    starting_balance_usd = usd_field()
    ending_value_usd = usd_field(null=True, blank=True)
    total_ticks = models.PositiveIntegerField(default=0)
    total_trades = models.PositiveIntegerField(default=0)
    successful_trades = models.PositiveIntegerField(default=0)
    failed_trades = models.PositiveIntegerField(default=0)
    total_thoughts = models.PositiveIntegerField(default=0)
    tripped_breakers = models.JSONField(default=list, blank=True)

    class Runner(models.TextChoices):
        FOREGROUND = "foreground", "run_paper_bot in a terminal"
        EMBEDDED = "embedded", "a thread of the web server"
        CELERY = "celery", "a Celery worker"

    runner = models.CharField(max_length=12, choices=Runner.choices, default=Runner.FOREGROUND)
    #: How often a dead runner's session was picked up again.
    resume_count = models.PositiveSmallIntegerField(default=0)
    #: Set by a stop request (API, another process); the bot stops after its current tick.
    stop_requested = models.BooleanField(default=False)
    stop_reason = models.CharField(max_length=200, blank=True)
    #: When the retention clean-up deleted this session's thoughts and metrics (trades stay).
    pruned_at = models.DateTimeField(null=True, blank=True)
    #: The engine's run counters (daily limits, failure streak), saved with every tick.
    engine_state = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["account", "status"])]
        constraints = [
            # At most one bot per account, whatever the number of processes or machines.
            models.UniqueConstraint(
                fields=["account"],
                condition=models.Q(status__in=["RUNNING", "PAUSED"]),
                name="one_active_session_per_account",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name or self.session_id} [{self.status}]"


class PaperPosition(models.Model):
    position_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(
        PaperTradingAccount, on_delete=models.CASCADE, related_name="positions"
    )
    session = models.ForeignKey(
        PaperTradingSession,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="positions",
    )
    token_symbol = models.CharField(max_length=20)
    token_address = models.CharField(max_length=42)
    chain_id = models.PositiveIntegerField(choices=CHAIN_CHOICES)
    quantity = qty_field()
    #: What the swaps put into the token, net of swap fees (the ledger's cost basis).
    cost_basis_usd = usd_field()
    #: Fees and gas paid to open what is still held.
    entry_costs_usd = usd_field()
    average_entry_price_usd = price_field()
    current_price_usd = price_field()
    current_value_usd = usd_field()
    unrealized_pnl_usd = usd_field()
    realized_pnl_usd = usd_field()
    peak_price_usd = price_field()
    is_open = models.BooleanField(default=True)
    opened_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-opened_at"]
        indexes = [models.Index(fields=["account", "is_open"])]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "chain_id", "token_symbol"],
                condition=models.Q(is_open=True),
                name="one_open_position_per_token",
            )
        ]

    def __str__(self) -> str:
        return f"{self.quantity} {self.token_symbol}"


class PaperAIThoughtLog(models.Model):
    class DecisionType(models.TextChoices):
        BUY = "BUY"
        SELL = "SELL"
        HOLD = "HOLD"
        BLOCKED = "BLOCKED"

    thought_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(
        PaperTradingAccount, on_delete=models.CASCADE, related_name="thoughts"
    )
    session = models.ForeignKey(
        PaperTradingSession, on_delete=models.CASCADE, related_name="thoughts", null=True
    )
    token_symbol = models.CharField(max_length=20, blank=True)
    decision_type = models.CharField(max_length=10, choices=DecisionType.choices)
    confidence_level = ratio_field(help_text="0-100")
    risk_assessment = ratio_field(help_text="Risk score 0-100, higher is riskier")
    opportunity_score = ratio_field(help_text="0-100")
    reasoning = models.TextField()
    market_data = models.JSONField(default=dict, blank=True)
    strategy_name = models.CharField(max_length=200, blank=True)
    #: Market time of the tick that produced it.
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["account", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.decision_type} {self.token_symbol}"


class PaperTrade(models.Model):
    class Side(models.TextChoices):
        BUY = "BUY"
        SELL = "SELL"

    class Status(models.TextChoices):
        EXECUTED = "EXECUTED"
        REVERTED = "REVERTED"
        DROPPED = "DROPPED"

    trade_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(
        PaperTradingAccount, on_delete=models.CASCADE, related_name="trades"
    )
    session = models.ForeignKey(
        PaperTradingSession, on_delete=models.CASCADE, related_name="trades", null=True
    )
    position = models.ForeignKey(
        PaperPosition, on_delete=models.SET_NULL, null=True, blank=True, related_name="trades"
    )
    decision = models.ForeignKey(
        PaperAIThoughtLog, on_delete=models.SET_NULL, null=True, blank=True, related_name="trades"
    )
    chain_id = models.PositiveIntegerField(choices=CHAIN_CHOICES)
    token_symbol = models.CharField(max_length=20)
    token_address = models.CharField(max_length=42)
    side = models.CharField(max_length=4, choices=Side.choices)
    status = models.CharField(max_length=10, choices=Status.choices)
    reason = models.CharField(max_length=40, default="strategy")
    token_in = models.CharField(max_length=20)
    token_out = models.CharField(max_length=20)
    amount_in = qty_field()
    amount_out = qty_field()
    amount_in_usd = usd_field()
    amount_out_usd = usd_field()
    mid_price_usd = price_field()
    execution_price_usd = price_field()
    pool_kind = models.CharField(max_length=4)
    fee_pips = models.PositiveIntegerField()
    swap_fee_usd = usd_field()
    swap_fee_bps = ratio_field()
    price_impact_bps = ratio_field()
    slippage_bps = ratio_field()
    slippage_tolerance_bps = ratio_field()
    min_amount_out = qty_field()
    gas_units = models.PositiveIntegerField()
    gas_price_gwei = price_field()
    gas_cost_native = qty_field()
    l1_fee_native = qty_field()
    approval_gas_usd = usd_field()
    #: All gas for this trade in USD, approval included.
    gas_cost_usd = usd_field()
    gas_source = models.CharField(max_length=10, default="default")
    realized_pnl_usd = usd_field()
    net_pnl_usd = usd_field()
    #: Why it reverted or was dropped.
    revert_reason = models.TextField(blank=True)
    gas_strategy = models.CharField(
        max_length=20, choices=GAS_STRATEGY_CHOICES, default=SIMULATOR_GAS_STRATEGY
    )
    tx_attempts = models.PositiveIntegerField(default=1)
    inclusion_delay_blocks = models.PositiveIntegerField(default=0)
    sandwiched = models.BooleanField(default=False)
    #: What a sandwich took from the trader against the unsandwiched fill.
    mev_cost_usd = usd_field()
    #: Private routing's fee; already part of gas_cost_usd.
    private_routing_fee_usd = usd_field()
    #: The paper transaction's state changes (TransactionChanged.to_json), first to last.
    transactions = models.JSONField(default=list, blank=True)
    #: Market time of execution.
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["account", "-created_at"]),
            models.Index(fields=["account", "token_symbol"]),
        ]

    def __str__(self) -> str:
        return f"{self.side} {self.token_symbol} [{self.status}]"

    @property
    def reverted(self) -> bool:
        return self.status == self.Status.REVERTED


#: A trade's swap, its costs and its outcome, in the order the API and the CSV export show them.
TRADE_DETAIL_FIELDS = (
    "side",
    "status",
    "reason",
    "token_in",
    "token_out",
    "amount_in",
    "amount_out",
    "amount_in_usd",
    "amount_out_usd",
    "mid_price_usd",
    "execution_price_usd",
    "pool_kind",
    "fee_pips",
    "swap_fee_usd",
    "swap_fee_bps",
    "price_impact_bps",
    "slippage_bps",
    "slippage_tolerance_bps",
    "min_amount_out",
    "gas_units",
    "gas_price_gwei",
    "gas_cost_native",
    "l1_fee_native",
    "approval_gas_usd",
    "gas_cost_usd",
    "gas_source",
    "realized_pnl_usd",
    "net_pnl_usd",
    "revert_reason",
    "gas_strategy",
    "tx_attempts",
    "inclusion_delay_blocks",
    "sandwiched",
    "mev_cost_usd",
    "private_routing_fee_usd",
)


class PaperPerformanceMetrics(models.Model):
    metric_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(
        PaperTradingAccount, on_delete=models.CASCADE, related_name="metrics"
    )
    session = models.ForeignKey(
        PaperTradingSession, on_delete=models.CASCADE, related_name="metrics", null=True
    )
    computed_at = models.DateTimeField()
    portfolio_value_usd = usd_field()
    total_pnl_usd = usd_field()
    return_percent = ratio_field()
    realized_pnl_usd = usd_field()
    unrealized_pnl_usd = usd_field()
    total_fees_usd = usd_field()
    total_gas_usd = usd_field()
    total_trades = models.PositiveIntegerField(default=0)
    reverted_trades = models.PositiveIntegerField(default=0)
    closed_trades = models.PositiveIntegerField(default=0)
    winning_trades = models.PositiveIntegerField(default=0)
    losing_trades = models.PositiveIntegerField(default=0)
    win_rate = ratio_field(help_text="Percent of closing trades with positive net P&L")
    profit_factor = ratio_field(null=True, blank=True)
    sharpe_ratio = ratio_field(null=True, blank=True)
    sortino_ratio = ratio_field(null=True, blank=True)
    max_drawdown_percent = ratio_field()
    best_trade_usd = usd_field(null=True, blank=True)
    worst_trade_usd = usd_field(null=True, blank=True)

    class Meta:
        ordering = ["-computed_at"]
        verbose_name_plural = "paper performance metrics"

    def __str__(self) -> str:
        return f"{self.computed_at:%Y-%m-%d %H:%M} {self.total_pnl_usd}"


def _percent(max_value: int = 100) -> list[Any]:
    return [MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(max_value))]


class PaperStrategyConfiguration(models.Model):
    """One per account; a change reaches a running bot at its next tick."""

    config_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.OneToOneField(
        PaperTradingAccount, on_delete=models.CASCADE, related_name="strategy_config"
    )
    name = models.CharField(max_length=100, default="Default")
    max_position_size_percent = models.DecimalField(
        max_digits=6, decimal_places=2, default=Decimal(25), validators=_percent()
    )
    stop_loss_percent = models.DecimalField(
        max_digits=6, decimal_places=2, default=Decimal(5), validators=_percent()
    )
    take_profit_percent = models.DecimalField(
        max_digits=7, decimal_places=2, default=Decimal(10), validators=_percent(1000)
    )
    trailing_stop_enabled = models.BooleanField(default=False)
    trailing_stop_percent = models.DecimalField(
        max_digits=6, decimal_places=2, default=Decimal(3), validators=_percent()
    )
    max_hold_hours = models.DecimalField(
        max_digits=8, decimal_places=2, default=Decimal(24), validators=_percent(24 * 365)
    )
    max_daily_trades = models.PositiveIntegerField(
        default=50, validators=[MinValueValidator(1), MaxValueValidator(10_000)]
    )
    confidence_threshold = models.DecimalField(
        max_digits=5, decimal_places=2, default=Decimal(40), validators=_percent()
    )
    slippage_tolerance_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal("0.5"),
        validators=[MinValueValidator(Decimal("0.01")), MaxValueValidator(Decimal(50))],
    )
    min_trade_usd = usd_field(default=Decimal(10), validators=[MinValueValidator(Decimal(0))])
    max_portfolio_loss_percent = models.DecimalField(
        max_digits=6, decimal_places=2, default=Decimal(30), validators=_percent()
    )
    daily_loss_limit_percent = models.DecimalField(
        max_digits=6, decimal_places=2, default=Decimal(10), validators=_percent()
    )
    max_consecutive_failures = models.PositiveIntegerField(
        default=5, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    min_balance_usd = usd_field(default=Decimal(100), validators=[MinValueValidator(Decimal(0))])
    #: Token symbols the bot may trade; empty means all tradable tokens of the chain.
    allowed_tokens = models.JSONField(default=list, blank=True)
    #: How swaps are priced for gas; "simulator" skips the transaction manager.
    gas_strategy = models.CharField(
        max_length=20, choices=GAS_STRATEGY_CHOICES, default=SIMULATOR_GAS_STRATEGY
    )
    #: Route swaps privately on public-mempool chains: no sandwich, at a fee.
    private_routing = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "strategy configuration"

    def __str__(self) -> str:
        return f"{self.name} ({self.account})"


class PriceHistory(models.Model):
    """Every price the bot observed, so histories survive restarts and can be charted."""

    token_symbol = models.CharField(max_length=20)
    token_address = models.CharField(max_length=42)
    chain_id = models.PositiveIntegerField(choices=CHAIN_CHOICES)
    source = models.CharField(max_length=20)
    timestamp = models.DateTimeField()
    price_usd = price_field()

    class Meta:
        ordering = ["-timestamp"]
        verbose_name_plural = "price history"
        indexes = [models.Index(fields=["token_address", "timestamp"])]
        constraints = [
            models.UniqueConstraint(
                fields=["chain_id", "token_address", "source", "timestamp"],
                name="unique_price_point",
            )
        ]

    def __str__(self) -> str:
        return f"{self.token_symbol} {self.price_usd} @ {self.timestamp}"


class ApiToken(models.Model):
    """A personal token for scripts; only its hash is stored, the key is shown once."""

    token_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    #: The first characters of the key, so a user can tell tokens apart.
    prefix = models.CharField(max_length=16)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}...)"


class SiweNonce(models.Model):
    """A Sign-In with Ethereum nonce: issued by the server, good once, for a few minutes."""

    nonce = models.CharField(max_length=64, primary_key=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.nonce


class WalletIdentity(models.Model):
    """The Ethereum address a user signs in with."""

    address = models.CharField(max_length=42, unique=True, help_text="EIP-55 checksummed")
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="wallet"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_login_chain_id = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "wallet identities"

    def __str__(self) -> str:
        return self.address

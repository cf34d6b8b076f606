"""The messages a websocket client receives, built from the engine's tick records.

Every message is ``{"type": str, "data": {...}, "timestamp": str}``; ``timestamp`` is the wall
time the message was made (ISO 8601, UTC). Market times (simulated on replay) are in ``data``.

Payloads go through the REST API's serializers wherever the API shows the same object (a
thought, a trade, a position, a session, the portfolio), so a client parses both with the same
code, down to the number of decimal places. Everything is plain JSON data (str, int, float,
bool, None, list, dict): money and ratios are decimal strings, ids are strings, times are
ISO 8601. That is also what channels-redis needs, since it packs messages with msgpack.

Types:

* ``thought_log_created``: one decision the bot logged (as ``GET thoughts/``).
* ``transaction_update``: one state change of a swap's paper transaction (submitted, pending,
  replaced, included, reverted, dropped), as an item of a trade's ``transactions`` in
  ``GET trades/`` plus ``trade_id``, ``symbol``, ``account_id`` and ``session_id``; sent before
  the ``trade_executed`` it leads to.
* ``trade_executed``: one swap, executed, reverted or dropped (as ``GET trades/``).
* ``position_updated``: a position opened, changed or closed (as ``GET positions/``).
* ``portfolio_update``: every tick: cash, positions value, total value, P&L, fees, gas, tick
  number and market time (the portfolio's field names, without the nested account/positions).
* ``performance_update``: when the engine computes metrics (the performance endpoint's names
  plus value and P&L figures).
* ``bot_status``: a session started, paused or resumed by the price feed, stopped, completed or
  failed (``event``), with the session as ``GET bot/status/`` shows it.
* ``alert``: a circuit breaker tripped, the price feed went down, a session ended.
* ``snapshot``: the reply to ``{"action": "snapshot"}`` (portfolio, bot status, the latest
  thoughts and trades), so a client never starts blank.
* ``error``: a client message the server could not act on; ``pong``: the reply to ``ping``.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone
from rest_framework import serializers

from paper_trading.api.serializers import (
    BotStatusSerializer,
    PerformanceSerializer,
    PositionSerializer,
    SessionSerializer,
    ThoughtSerializer,
    TradeSerializer,
    TransactionEventSerializer,
    portfolio_data,
)
from paper_trading.engine.events import (
    BreakerTripped,
    MetricsComputed,
    PerformanceSnapshot,
    PositionChanged,
    PositionSnapshot,
    PriceFeedChanged,
    ThoughtLogged,
    ThoughtRecord,
    TickResult,
    TradeExecuted,
    TradeRecord,
    TransactionChanged,
)
from paper_trading.models import (
    PaperTradingAccount,
    PaperTradingSession,
)
from paper_trading.selectors import trading
from paper_trading.store import position_row, thought_row, trade_row

Message = dict[str, Any]

THOUGHT_LOG_CREATED = "thought_log_created"
TRADE_EXECUTED = "trade_executed"
TRANSACTION_UPDATE = "transaction_update"
POSITION_UPDATED = "position_updated"
PORTFOLIO_UPDATE = "portfolio_update"
PERFORMANCE_UPDATE = "performance_update"
BOT_STATUS = "bot_status"
ALERT = "alert"
SNAPSHOT = "snapshot"
ERROR = "error"
PONG = "pong"

#: `bot_status` events.
STARTED = "started"
RESTARTED = "restarted"
PAUSED = "paused"
RESUMED = "resumed"
STOPPED = "stopped"
COMPLETED = "completed"
FAILED = "failed"

#: `alert` kinds and severities.
BREAKER_TRIPPED = "breaker_tripped"
PRICE_FEED_DOWN = "price_feed_down"
SESSION_ENDED = "session_ended"
INFO = "info"
WARNING = "warning"
CRITICAL = "error"

#: How many thoughts and trades a snapshot carries.
SNAPSHOT_ROWS = 20
_ACTIVE = (PaperTradingSession.Status.RUNNING, PaperTradingSession.Status.PAUSED)
_DATETIME = serializers.DateTimeField()


def _usd(**kwargs: Any) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=30, decimal_places=8, **kwargs)


def _ratio(**kwargs: Any) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=20, decimal_places=4, **kwargs)


def iso(value: datetime) -> str:
    """A datetime the way the API writes it (UTC as ``Z``)."""
    return str(_DATETIME.to_representation(value))


def plain(value: Any) -> Any:
    """The value as plain JSON data: what msgpack (channels-redis) and json both accept."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    pk = getattr(value, "pk", None)  # DRF's PKOnlyObject, a model instance
    if pk is not None:
        return plain(pk)
    raise TypeError(f"cannot put a {type(value).__name__} in a realtime message")


def envelope(kind: str, data: Mapping[str, Any], at: datetime | None = None) -> Message:
    return {"type": kind, "data": plain(data), "timestamp": iso(at or timezone.now())}


# -- per tick -------------------------------------------------------------------------------


def thought_message(
    thought: ThoughtRecord, *, account_id: uuid.UUID, session_id: uuid.UUID
) -> Message:
    row = thought_row(thought, account_id, session_id)
    return envelope(THOUGHT_LOG_CREATED, ThoughtSerializer(row).data)


def trade_message(trade: TradeRecord, *, account_id: uuid.UUID, session_id: uuid.UUID) -> Message:
    row = trade_row(trade, account_id, session_id)
    return envelope(TRADE_EXECUTED, TradeSerializer(row).data)


def transaction_message(
    event: TransactionChanged, *, account_id: uuid.UUID, session_id: uuid.UUID
) -> Message:
    data = {
        "trade_id": event.trade_id,
        "symbol": event.symbol,
        "account_id": account_id,
        "session_id": session_id,
        **TransactionEventSerializer(event.to_json()).data,
    }
    return envelope(TRANSACTION_UPDATE, data)


def position_message(
    position: PositionSnapshot,
    *,
    account_id: uuid.UUID,
    session_id: uuid.UUID,
    updated_at: datetime | None = None,
) -> Message:
    row = position_row(position, account_id, session_id, updated_at or timezone.now())
    return envelope(POSITION_UPDATED, PositionSerializer(row).data)


class PortfolioUpdateSerializer(serializers.Serializer[Any]):
    """The API portfolio's figures (same names), for one tick, plus where the tick was."""

    account = serializers.UUIDField()
    session = serializers.UUIDField()
    tick_number = serializers.IntegerField()
    market_time = serializers.DateTimeField()
    initial_balance_usd = _usd()
    cash_usd = _usd()
    positions_value_usd = _usd()
    total_value_usd = _usd()
    unrealized_pnl_usd = _usd()
    realized_pnl_usd = _usd()
    fees_usd = _usd()
    gas_usd = _usd()
    total_pnl_usd = _usd()


def portfolio_message(
    result: TickResult, *, account_id: uuid.UUID, session_id: uuid.UUID
) -> Message:
    p = result.portfolio
    data = PortfolioUpdateSerializer(
        {
            "account": account_id,
            "session": session_id,
            "tick_number": result.tick_number,
            "market_time": result.timestamp,
            "initial_balance_usd": p.initial_balance_usd,
            "cash_usd": p.cash_usd,
            "positions_value_usd": p.positions_value_usd,
            "total_value_usd": p.total_value_usd,
            "unrealized_pnl_usd": p.unrealized_pnl_usd,
            "realized_pnl_usd": p.realized_pnl_usd,
            "fees_usd": p.fees_usd,
            "gas_usd": p.gas_usd,
            "total_pnl_usd": p.total_pnl_usd,
        }
    ).data
    return envelope(PORTFOLIO_UPDATE, data)


class PerformanceUpdateSerializer(PerformanceSerializer):
    """The performance endpoint's fields, plus the value and P&L figures computed with them."""

    session = serializers.UUIDField()
    portfolio_value_usd = _usd()
    total_pnl_usd = _usd()
    return_percent = _ratio()
    realized_pnl_usd = _usd()
    unrealized_pnl_usd = _usd()


def performance_message(
    metrics: PerformanceSnapshot, *, account_id: uuid.UUID, session_id: uuid.UUID
) -> Message:
    m = metrics
    data = PerformanceUpdateSerializer(
        {
            "account": account_id,
            "session": session_id,
            "computed_at": m.computed_at,
            "sharpe_ratio": m.sharpe_ratio,
            "sortino_ratio": m.sortino_ratio,
            "max_drawdown_percent": m.max_drawdown_percent,
            "profit_factor": m.profit_factor,
            "win_rate_percent": m.win_rate_percent,
            "closed_trades": m.closed_trades,
            "winning_trades": m.winning_trades,
            "losing_trades": m.losing_trades,
            "best_trade_usd": m.best_trade_usd,
            "worst_trade_usd": m.worst_trade_usd,
            "total_fees_usd": m.fees_usd,
            "total_gas_usd": m.gas_usd,
            "total_trades": m.total_trades,
            "reverted_trades": m.reverted_trades,
            "portfolio_value_usd": m.portfolio_value_usd,
            "total_pnl_usd": m.total_pnl_usd,
            "return_percent": m.return_percent,
            "realized_pnl_usd": m.realized_pnl_usd,
            "unrealized_pnl_usd": m.unrealized_pnl_usd,
        }
    ).data
    return envelope(PERFORMANCE_UPDATE, data)


def alert_message(
    kind: str,
    message: str,
    *,
    account_id: uuid.UUID,
    session_id: uuid.UUID | None,
    severity: str = WARNING,
    code: str = "",
    tick_number: int | None = None,
    market_time: datetime | None = None,
) -> Message:
    """`kind`: breaker_tripped, price_feed_down or session_ended; `code` narrows it down."""
    return envelope(
        ALERT,
        {
            "kind": kind,
            "code": code or kind,
            "severity": severity,
            "message": message,
            "account": account_id,
            "session": session_id,
            "tick_number": tick_number,
            "market_time": market_time,
        },
    )


def tick_messages(
    result: TickResult,
    *,
    account_id: uuid.UUID,
    session_id: uuid.UUID,
    session: PaperTradingSession | None = None,
) -> list[Message]:
    """A tick's messages in delivery order: thoughts, transaction updates, trades, positions, the
    portfolio, then metrics, alerts and feed pauses/resumes. `session` (as stored after the
    tick) is needed only for a `bot_status` when the price feed paused or resumed the bot."""
    a, s = account_id, session_id
    out: list[Message] = []
    out += [
        thought_message(e.thought, account_id=a, session_id=s)
        for e in result.of_type(ThoughtLogged)
    ]
    out += [
        transaction_message(e, account_id=a, session_id=s)
        for e in result.of_type(TransactionChanged)
    ]
    out += [
        trade_message(e.trade, account_id=a, session_id=s) for e in result.of_type(TradeExecuted)
    ]
    out += [
        position_message(e.position, account_id=a, session_id=s)
        for e in result.of_type(PositionChanged)
    ]
    out.append(portfolio_message(result, account_id=a, session_id=s))
    out += [
        performance_message(e.metrics, account_id=a, session_id=s)
        for e in result.of_type(MetricsComputed)
    ]
    tick, at = result.tick_number, result.timestamp
    for breaker in result.of_type(BreakerTripped):
        out.append(
            alert_message(
                BREAKER_TRIPPED,
                breaker.message,
                code=breaker.code,
                account_id=a,
                session_id=s,
                tick_number=tick,
                market_time=at,
            )
        )
    for change in result.of_type(PriceFeedChanged):
        if change.problem:
            out.append(
                alert_message(
                    PRICE_FEED_DOWN,
                    change.problem,
                    account_id=a,
                    session_id=s,
                    tick_number=tick,
                    market_time=at,
                )
            )
        if session is not None:
            out.append(bot_status_message(session, PAUSED if change.problem else RESUMED))
    return out


# -- sessions -------------------------------------------------------------------------------


def bot_status_message(session: PaperTradingSession, event: str) -> Message:
    """`event`: started, restarted (an interrupted session carries on), paused, resumed,
    stopped, completed or failed."""
    return envelope(
        BOT_STATUS,
        {
            "event": event,
            "account": session.account_id,
            "running": session.status in _ACTIVE,
            "session": SessionSerializer(session).data,
        },
    )


_END_ALERTS = {
    PaperTradingSession.Status.FAILED: CRITICAL,
    PaperTradingSession.Status.STOPPED: WARNING,
    PaperTradingSession.Status.COMPLETED: INFO,
}


def session_end_alert(session: PaperTradingSession) -> Message | None:
    """An alert for a session that has ended (failed, stopped, completed), else None."""
    severity = _END_ALERTS.get(PaperTradingSession.Status(session.status))
    if severity is None:
        return None
    status = str(session.status)
    why = session.status_reason or status.lower()
    return alert_message(
        SESSION_ENDED,
        f"session {session.name or session.session_id} {status.lower()}: {why}",
        account_id=session.account_id,
        session_id=session.session_id,
        severity=severity,
        code=f"session_{status.lower()}",
        tick_number=session.total_ticks,
        market_time=session.last_tick_at,
    )


# -- client requests (these read the database) -----------------------------------------------


def bot_status_data(account: PaperTradingAccount) -> dict[str, Any]:
    """The account's sessions exactly as ``GET bot/status/`` returns them."""
    sessions = list(account.sessions.order_by("-started_at")[:10])
    active = next((x for x in sessions if x.status in _ACTIVE), None)
    return dict(
        BotStatusSerializer(
            {
                "account": account.account_id,
                "running": active is not None,
                "active": active,
                "recent": sessions,
            }
        ).data
    )


def snapshot_message(account: PaperTradingAccount, rows: int = SNAPSHOT_ROWS) -> Message:
    """Everything a client needs to draw the account before the next tick arrives."""
    return envelope(
        SNAPSHOT,
        {
            "account": account.account_id,
            "portfolio": portfolio_data(account),
            "bot_status": bot_status_data(account),
            "thoughts": ThoughtSerializer(trading.thoughts(account)[:rows], many=True).data,
            "trades": TradeSerializer(trading.trades(account)[:rows], many=True).data,
        },
    )


def error_message(code: str, message: str) -> Message:
    return envelope(ERROR, {"code": code, "message": message})


def pong_message() -> Message:
    return envelope(PONG, {})
